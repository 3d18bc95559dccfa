package io.duckguard.bootstrap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Supplier;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.jar.JarOutputStream;
import net.bytebuddy.ByteBuddy;
import net.bytebuddy.implementation.FixedValue;
import net.bytebuddy.matcher.ElementMatchers;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link InstClassLoader} over a small hand-made jar laid out like duckguard-agent.jar. */
class InstClassLoaderTest {
    private static final String SAMPLE = "io.duckguard.agent.testjar.HiddenSample";
    private static final String VERSIONED = "io.duckguard.agent.testjar.Versioned";

    @TempDir
    Path dir;
    private Path jarPath;
    private InstClassLoader loader;

    @BeforeEach
    void buildJar() throws IOException {
        jarPath = dir.resolve("agent.jar");
        try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(jarPath))) {
            put(out, "inst/" + SAMPLE.replace('.', '/') + ".classdata", classBytes(SAMPLE));
            // the same class also as a top-level .class: the loader must not care (it reads inst/ only)
            put(out, "io/duckguard/agent/testjar/Visible.class", classBytes(SAMPLE));
            // multi-release: base, a version this JVM has, and one from the future
            put(out, "inst/" + VERSIONED.replace('.', '/') + ".classdata", versioned("base"));
            put(out, "inst/META-INF/versions/11/" + VERSIONED.replace('.', '/') + ".classdata", versioned("11"));
            put(out, "inst/META-INF/versions/9999/" + VERSIONED.replace('.', '/') + ".classdata", versioned("9999"));
            put(out, "inst/data/hello.txt", "hello".getBytes(StandardCharsets.UTF_8));
            put(out, "inst/META-INF/versions/11/data/hello.txt", "hello 11".getBytes(StandardCharsets.UTF_8));
        }
        loader = new InstClassLoader(new JarFile(jarPath.toFile()));
    }

    @AfterEach
    void close() throws IOException {
        loader.close();
    }

    @Test
    void definesHiddenClassesWithTheJarAsCodeSource() throws Exception {
        Class<?> c = loader.loadClass(SAMPLE);
        assertSame(loader, c.getClassLoader());
        assertNotSame(Class.forName(SAMPLE), c, "its own copy, not the test class path's");
        assertEquals(jarPath.toUri().toURL(), c.getProtectionDomain().getCodeSource().getLocation());
        assertNotNull(c.getPackage());
        assertSame(c, loader.loadClass(SAMPLE));
    }

    @Test
    void bootstrapPackageResolvesToTheOneSharedCopy() throws Exception {
        // Not appended to the bootstrap path here, so the loader that defined InstClassLoader provides it.
        @SuppressWarnings("unchecked")
        Supplier<Class<?>> sample = (Supplier<Class<?>>) loader.loadClass(SAMPLE).getConstructor().newInstance();
        assertSame(DuckGuardHooks.class, sample.get());
        assertSame(DuckGuardHooks.class, loader.loadClass(DuckGuardHooks.class.getName()));
    }

    @Test
    void onlyInstEntriesAndPlatformClassesAreVisible() throws Exception {
        assertThrows(ClassNotFoundException.class, () -> loader.loadClass("io.duckguard.agent.testjar.Visible"));
        assertThrows(ClassNotFoundException.class, () -> loader.loadClass("org.junit.jupiter.api.Test"));
        assertSame(java.sql.Connection.class, loader.loadClass("java.sql.Connection"));
    }

    @Test
    void multiReleaseEntriesFollowTheRunningJavaVersion() throws Exception {
        Object v = loader.loadClass(VERSIONED).getConstructor().newInstance();
        assertEquals("11", v.toString());
        assertEquals("hello 11", read(loader.getResourceAsStream("data/hello.txt")));
    }

    @Test
    void resourcesMapClassFilesToClassdata() throws Exception {
        String name = SAMPLE.replace('.', '/') + ".class";
        assertArrayEquals(classBytes(SAMPLE), loader.getResourceAsStream(name).readAllBytes());
        URL url = loader.getResource(name);
        assertNotNull(url);
        assertEquals("jar:" + jarPath.toUri().toURL() + "!/inst/" + SAMPLE.replace('.', '/') + ".classdata",
                url.toString());
        try (InputStream in = url.openStream()) {
            assertArrayEquals(classBytes(SAMPLE), in.readAllBytes());
        }
        assertNull(loader.getResource("io/duckguard/agent/testjar/Visible.class"));
        assertNull(loader.getResourceAsStream("nothing/here.txt"));
        assertEquals(1, java.util.Collections.list(loader.getResources(name)).size());
    }

    @Test
    void parallelLoadsAgreeOnOneClass() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try {
            List<Callable<Class<?>>> tasks = new ArrayList<>();
            for (int i = 0; i < 32; i++) {
                String name = i % 2 == 0 ? SAMPLE : VERSIONED;
                tasks.add(() -> loader.loadClass(name));
            }
            Class<?> sample = null, versioned = null;
            for (Future<Class<?>> f : pool.invokeAll(tasks)) {
                Class<?> c = f.get();
                if (c.getName().equals(SAMPLE)) {
                    if (sample == null) sample = c;
                    assertSame(sample, c);
                } else {
                    if (versioned == null) versioned = c;
                    assertSame(versioned, c);
                }
            }
        } finally {
            pool.shutdownNow();
        }
    }

    private static byte[] versioned(String value) {
        return new ByteBuddy().subclass(Object.class).name(VERSIONED)
                .method(ElementMatchers.named("toString")).intercept(FixedValue.value(value))
                .make().getBytes();
    }

    private static byte[] classBytes(String className) throws IOException {
        try (InputStream in = InstClassLoaderTest.class.getClassLoader()
                .getResourceAsStream(className.replace('.', '/') + ".class")) {
            return in.readAllBytes();
        }
    }

    private static void put(JarOutputStream out, String name, byte[] bytes) throws IOException {
        out.putNextEntry(new JarEntry(name));
        out.write(bytes);
        out.closeEntry();
    }

    private static String read(InputStream in) throws IOException {
        try (in) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }
}
