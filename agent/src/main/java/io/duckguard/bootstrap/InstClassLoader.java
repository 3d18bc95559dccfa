package io.duckguard.bootstrap;

import java.io.ByteArrayInputStream;
import java.io.Closeable;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.net.MalformedURLException;
import java.net.URL;
import java.security.CodeSource;
import java.security.ProtectionDomain;
import java.security.cert.Certificate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Enumeration;
import java.util.List;
import java.util.TreeSet;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;

/**
 * duckguard's own class loader: defines the classes hidden under {@code inst/} in duckguard-agent.jar (the runtime,
 * the installer and advice, relocated Byte Buddy/HdrHistogram/picocli, zstd-jni), like the OpenTelemetry agent's
 * {@code AgentClassLoader}. Hidden classes are stored as {@code inst/<binary/name>.classdata}, so the host's class
 * loaders can never define them even though the jar is on the system class path and the bootstrap search path.
 *
 * <p>Delegation: parent first, the parent being the platform class loader (java.sql, java.management, ... are
 * visible; the host's class path is not, so the host's own library versions cannot leak in). The platform loader
 * delegates to the bootstrap loader, which finds {@code io.duckguard.bootstrap.*} once the agent has appended the
 * jar to the bootstrap search path, so the runtime and the advice share the one {@link DuckGuardHooks}. When the
 * jar was not appended (the CLI, tests), classes of the bootstrap package fall back to the loader that defined this
 * class, which sees the jar's top level.
 *
 * <p>Resources follow the same mapping ({@code x/y/Z.class -> inst/x/y/Z.classdata}, anything else
 * {@code -> inst/<name>}): Byte Buddy's {@code ClassFileLocator} reads advice class files that way and zstd-jni
 * extracts its native library that way. Multi-release entries ({@code inst/META-INF/versions/N/...}) are honoured
 * as a multi-release jar would be: the highest {@code N <= Runtime.version().feature()} that has the entry wins.
 *
 * <p>Concurrency: registered as parallel capable; {@link ClassLoader#loadClass(String, boolean)} locks per class
 * name. The one {@link JarFile} is shared and {@code ZipFile} reads are thread-safe. The jar stays open for the
 * life of the loader (for the agent: the life of the JVM); {@link #close()} exists for tests and the CLI.
 */
public final class InstClassLoader extends ClassLoader implements Closeable {
    static {
        registerAsParallelCapable();
    }

    private static final String INST = "inst/";
    private static final String BOOTSTRAP_PACKAGE = "io.duckguard.bootstrap.";

    private final JarFile jar;
    private final URL jarUrl;
    private final ProtectionDomain protectionDomain;
    /** Entry prefixes to try, most specific first: inst/META-INF/versions/N/ (N descending, N <= this JVM), inst/. */
    private final List<String> prefixes;

    /**
     * @param jar the agent jar, kept open and owned by this loader from now on
     */
    public InstClassLoader(JarFile jar) {
        this(jar, ClassLoader.getPlatformClassLoader());
    }

    InstClassLoader(JarFile jar, ClassLoader parent) {
        super("duckguard", parent);
        this.jar = jar;
        try {
            this.jarUrl = new File(jar.getName()).toURI().toURL();
        } catch (MalformedURLException e) {
            throw new IllegalArgumentException("bad jar path " + jar.getName(), e);
        }
        this.protectionDomain = new ProtectionDomain(new CodeSource(jarUrl, (Certificate[]) null), null, this, null);
        this.prefixes = versionPrefixes(jar);
    }

    private static List<String> versionPrefixes(JarFile jar) {
        int current = Runtime.version().feature();
        String versions = INST + "META-INF/versions/";
        TreeSet<Integer> found = new TreeSet<>(Collections.reverseOrder());
        for (Enumeration<JarEntry> e = jar.entries(); e.hasMoreElements(); ) {
            String name = e.nextElement().getName();
            if (!name.startsWith(versions)) continue;
            int slash = name.indexOf('/', versions.length());
            if (slash < 0) continue;
            try {
                int v = Integer.parseInt(name.substring(versions.length(), slash));
                if (v >= 9 && v <= current) found.add(v);
            } catch (NumberFormatException ignored) {
                // not a version directory
            }
        }
        List<String> prefixes = new ArrayList<>(found.size() + 1);
        for (int v : found) prefixes.add(versions + v + "/");
        prefixes.add(INST);
        return List.copyOf(prefixes);
    }

    @Override
    protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
        synchronized (getClassLoadingLock(name)) {
            Class<?> c = findLoadedClass(name);
            if (c == null) {
                try {
                    c = getParent().loadClass(name);
                } catch (ClassNotFoundException notInParent) {
                    c = inBootstrapPackage(name) ? loadBootstrapPackageClass(name, notInParent) : findClass(name);
                }
            }
            if (resolve) resolveClass(c);
            return c;
        }
    }

    /** Exactly the package io.duckguard.bootstrap (not sub-packages): the only classes at the jar's top level. */
    private static boolean inBootstrapPackage(String className) {
        return className.startsWith(BOOTSTRAP_PACKAGE) && className.indexOf('.', BOOTSTRAP_PACKAGE.length()) < 0;
    }

    /**
     * The jar is not on the bootstrap search path (CLI, tests): use the copy that the loader which defined this
     * class sees (the jar's top level). Never define the bootstrap package here: there must be only one copy.
     */
    private static Class<?> loadBootstrapPackageClass(String name, ClassNotFoundException notInParent)
            throws ClassNotFoundException {
        ClassLoader own = InstClassLoader.class.getClassLoader();
        if (own == null) throw notInParent; // we are in the bootstrap loader, which already said no
        return own.loadClass(name);
    }

    @Override
    protected Class<?> findClass(String name) throws ClassNotFoundException {
        String path = name.replace('.', '/') + ".classdata";
        JarEntry entry = entry(path);
        if (entry == null) throw new ClassNotFoundException(name);
        byte[] bytes;
        try (InputStream in = jar.getInputStream(entry)) {
            bytes = in.readAllBytes();
        } catch (IOException e) {
            throw new ClassNotFoundException(name + " (cannot read " + entry.getName() + " from " + jar.getName() + ")", e);
        }
        definePackageFor(name);
        return defineClass(name, bytes, 0, bytes.length, protectionDomain);
    }

    private void definePackageFor(String className) {
        int dot = className.lastIndexOf('.');
        if (dot < 0) return;
        String pkg = className.substring(0, dot);
        if (getDefinedPackage(pkg) != null) return;
        try {
            definePackage(pkg, null, null, null, null, null, null, null);
        } catch (IllegalArgumentException racedWithAnotherThread) {
            // defined concurrently by another thread loading a class of the same package: fine
        }
    }

    /** The entry for a path below inst/ (no leading inst/), honouring multi-release versions; null if absent. */
    private JarEntry entry(String path) {
        for (String prefix : prefixes) {
            JarEntry e = jar.getJarEntry(prefix + path);
            if (e != null && !e.isDirectory()) return e;
        }
        return null;
    }

    /** Where a resource name lives in the jar: hidden under inst/, or top level for the bootstrap package. */
    private JarEntry resourceEntry(String name) {
        if (name.startsWith("/")) name = name.substring(1);
        if (name.endsWith(".class")) {
            JarEntry hidden = entry(name.substring(0, name.length() - ".class".length()) + ".classdata");
            if (hidden != null) return hidden;
            if (inBootstrapPackage(name.substring(0, name.length() - ".class".length()).replace('/', '.'))) {
                return jar.getJarEntry(name);
            }
            return null;
        }
        return entry(name);
    }

    @Override
    protected URL findResource(String name) {
        JarEntry e = resourceEntry(name);
        if (e == null) return null;
        try {
            return new URL("jar:" + jarUrl + "!/" + e.getName());
        } catch (MalformedURLException ex) {
            return null;
        }
    }

    @Override
    protected Enumeration<URL> findResources(String name) {
        URL url = findResource(name);
        return url == null ? Collections.emptyEnumeration() : Collections.enumeration(List.of(url));
    }

    /**
     * Reads straight from the open jar (no {@code jar:} URL connection, whose JDK-wide cache would open the file a
     * second time). Parent first, like {@link #getResource}.
     */
    @Override
    public InputStream getResourceAsStream(String name) {
        InputStream fromParent = getParent().getResourceAsStream(name);
        if (fromParent != null) return fromParent;
        JarEntry e = resourceEntry(name);
        if (e == null) return null;
        try (InputStream in = jar.getInputStream(e)) {
            // Copied so that the caller's stream does not depend on the jar staying open.
            return new ByteArrayInputStream(in.readAllBytes());
        } catch (IOException ex) {
            return null;
        }
    }

    /** The jar this loader reads. */
    public URL jarUrl() {
        return jarUrl;
    }

    /** Closes the jar; classes not loaded yet can no longer be loaded. The agent never calls this. */
    @Override
    public void close() throws IOException {
        jar.close();
    }

    @Override
    public String toString() {
        return "InstClassLoader[" + jar.getName() + "]";
    }
}
