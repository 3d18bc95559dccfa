package io.duckguard.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.Closeable;
import java.io.File;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.jar.Attributes;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The distributable duckguard-agent.jar as the host sees it: only {@code io.duckguard.bootstrap} is loadable from
 * its top level; everything else hides under {@code inst/} and is reachable only through duckguard's own
 * {@code InstClassLoader}.
 */
class AgentJarLayoutTest {
    private static final String BOOTSTRAP_DIR = "io/duckguard/bootstrap/";
    private static final String AGENT_ENTRY = "io.duckguard.bootstrap.AgentEntry";
    private static File agentJar;

    @BeforeAll
    static void findJar() {
        Path p = Path.of(System.getProperty("duckguard.agent.jar", "../agent/target/duckguard-agent.jar"));
        if (System.getProperty("duckguard.noAgentDependency") != null) {
            assumeTrue(Files.isRegularFile(p), "agent not built (-Dduckguard.noAgentDependency)");
        }
        assertTrue(Files.isRegularFile(p), "build the agent first (mvn package): " + p.toAbsolutePath());
        agentJar = p.toFile();
    }

    @Test
    void manifestNamesTheEntryPoints() throws Exception {
        try (JarFile jar = new JarFile(agentJar)) {
            Attributes a = jar.getManifest().getMainAttributes();
            assertEquals(AGENT_ENTRY, a.getValue("Premain-Class"));
            assertEquals(AGENT_ENTRY, a.getValue("Agent-Class"));
            assertEquals(AGENT_ENTRY, a.getValue("Main-Class"));
            assertEquals("true", a.getValue("Can-Retransform-Classes"));
            assertEquals("true", a.getValue("Can-Redefine-Classes"));
            assertNull(a.getValue("Class-Path"), "the agent jar must not pull anything else onto the class path");
        }
    }

    @Test
    void onlyTheBootstrapPackageIsAtTopLevel() throws Exception {
        List<String> wrong = new ArrayList<>();
        List<String> bootstrap = new ArrayList<>();
        try (JarFile jar = new JarFile(agentJar)) {
            for (JarEntry e : jar.stream().toList()) {
                String n = e.getName();
                if (n.startsWith("inst/")) {
                    if (n.endsWith(".class")) wrong.add(n + " (loadable .class under inst/)");
                    if (n.contains("org/duckdb/")) wrong.add(n + " (DuckDB is never bundled)");
                    if (isUnrelocated(n)) wrong.add(n + " (not relocated)");
                    continue;
                }
                if (n.endsWith(".class")) {
                    if (n.startsWith(BOOTSTRAP_DIR) && n.indexOf('/', BOOTSTRAP_DIR.length()) < 0) bootstrap.add(n);
                    else wrong.add(n + " (loadable by the host)");
                } else if (!e.isDirectory() && !n.equals("META-INF/MANIFEST.MF")) {
                    wrong.add(n + " (top-level resource)");
                }
            }
            assertEquals(List.of(), wrong);
            assertNull(jar.getEntry("META-INF/services/java.sql.Driver"));
            assertNotNull(jar.getEntry("inst/com/github/luben/zstd/Zstd.classdata"), "zstd-jni keeps its names (JNI)");
            assertTrue(jar.stream().anyMatch(e -> e.getName().matches("inst/linux/amd64/libzstd-jni-.*\\.so")),
                    "zstd-jni's native library travels under inst/");
            assertNotNull(jar.getEntry("inst/io/duckguard/shaded/bytebuddy/ByteBuddy.classdata"));
            assertNotNull(jar.getEntry("inst/io/duckguard/runtime/DuckGuardRuntime.classdata"));
            assertNotNull(jar.getEntry("inst/io/duckguard/agent/AgentInstaller.classdata"));
        }
        assertTrue(bootstrap.contains(BOOTSTRAP_DIR + "DuckGuardHooks.class"), bootstrap::toString);
        assertTrue(bootstrap.contains(BOOTSTRAP_DIR + "AgentEntry.class"), bootstrap::toString);
        assertTrue(bootstrap.contains(BOOTSTRAP_DIR + "InstClassLoader.class"), bootstrap::toString);
    }

    /** Libraries that must live under io/duckguard/shaded/ (also inside META-INF/versions/N/). */
    private static boolean isUnrelocated(String name) {
        String n = name.substring("inst/".length()).replaceFirst("^META-INF/versions/[0-9]+/", "");
        return n.startsWith("net/bytebuddy/") || n.startsWith("org/HdrHistogram/") || n.startsWith("picocli/");
    }

    @Test
    void theHostCanLoadOnlyTheBootstrapPackage() throws Exception {
        try (URLClassLoader host = new URLClassLoader(new URL[] {agentJar.toURI().toURL()},
                ClassLoader.getPlatformClassLoader())) {
            for (String hidden : List.of("net.bytebuddy.ByteBuddy", "io.duckguard.shaded.bytebuddy.ByteBuddy",
                    "io.duckguard.runtime.DuckGuardRuntime", "io.duckguard.agent.AgentInstaller",
                    "com.github.luben.zstd.Zstd", "org.HdrHistogram.Histogram",
                    "io.duckguard.shaded.hdrhistogram.Histogram", "picocli.CommandLine", "org.duckdb.DuckDBDriver")) {
                assertThrows(ClassNotFoundException.class, () -> host.loadClass(hidden), hidden);
            }
            assertSame(host, host.loadClass("io.duckguard.bootstrap.DuckGuardHooks").getClassLoader());
            assertSame(host, host.loadClass(AGENT_ENTRY).getClassLoader());
            assertFalse(host.getResources("META-INF/services/java.sql.Driver").hasMoreElements());
        }
    }

    @Test
    void instClassLoaderReachesTheHiddenClasses() throws Exception {
        try (URLClassLoader host = new URLClassLoader(new URL[] {agentJar.toURI().toURL()},
                ClassLoader.getPlatformClassLoader())) {
            // The shipped InstClassLoader, from the jar's own top level (not a copy on this test's class path).
            Class<?> instType = host.loadClass("io.duckguard.bootstrap.InstClassLoader");
            ClassLoader inst = (ClassLoader) instType.getConstructor(JarFile.class).newInstance(new JarFile(agentJar));
            try {
                Class<?> runtime = inst.loadClass("io.duckguard.runtime.DuckGuardRuntime");
                assertSame(inst, runtime.getClassLoader());
                assertEquals(agentJar.toURI().toURL(), runtime.getProtectionDomain().getCodeSource().getLocation());
                runtime.getMethod("start", String.class, boolean.class);
                runtime.getMethod("cli", String[].class);

                assertSame(inst, inst.loadClass("io.duckguard.shaded.bytebuddy.ByteBuddy").getClassLoader());
                assertSame(inst, inst.loadClass("io.duckguard.agent.AgentInstaller").getClassLoader());
                // One copy of the hook API: hidden classes link to the top-level one.
                assertSame(host.loadClass("io.duckguard.bootstrap.DuckGuardHooks"),
                        inst.loadClass("io.duckguard.bootstrap.DuckGuardHooks"));
                // java.sql is visible (platform loader), the host's class path is not.
                assertSame(java.sql.Connection.class, inst.loadClass("java.sql.Connection"));
                assertThrows(ClassNotFoundException.class, () -> inst.loadClass(AgentJarLayoutTest.class.getName()));

                // Byte Buddy reads advice class files as resources: .class maps to the hidden .classdata.
                assertNotNull(inst.getResource("io/duckguard/agent/AgentInstaller.class"));
                try (var in = inst.getResourceAsStream("io/duckguard/agent/AgentInstaller.class")) {
                    assertNotNull(in);
                    byte[] head = in.readNBytes(4);
                    assertArrayEquals(new byte[] {(byte) 0xCA, (byte) 0xFE, (byte) 0xBA, (byte) 0xBE}, head);
                }

                // zstd-jni finds and loads its native library through the same mapping, under its original name.
                Class<?> zstd = inst.loadClass("com.github.luben.zstd.Zstd");
                Method compress = zstd.getMethod("compress", byte[].class);
                Method decompress = zstd.getMethod("decompress", byte[].class, int.class);
                byte[] data = "duckguard duckguard duckguard duckguard".getBytes();
                byte[] packed = (byte[]) compress.invoke(null, (Object) data);
                assertArrayEquals(data, (byte[]) decompress.invoke(null, packed, data.length));
            } finally {
                ((Closeable) inst).close();
            }
        }
    }
}
