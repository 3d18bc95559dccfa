package io.duckguard.bootstrap;

import java.io.File;
import java.lang.instrument.Instrumentation;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.net.JarURLConnection;
import java.net.URI;
import java.net.URL;
import java.nio.file.Path;
import java.security.CodeSource;
import java.util.jar.JarFile;

/**
 * The three ways into duckguard-agent.jar: {@code -javaagent} (premain), {@code jcmd <pid> JVMTI.agent_load}
 * (agentmain) and {@code java -jar} (main).
 *
 * <p>This class is on the host's class path (the JVM puts an agent jar there) and is loaded before the host's
 * {@code main}, so it must stay tiny: no Byte Buddy, no runtime classes, no lambdas, nothing that drags in more
 * classes than it needs. Everything heavy lives under {@code inst/} in the jar and is reached reflectively through
 * {@link InstClassLoader}.
 *
 * <p>It must not touch {@link DuckGuardHooks} or {@link HookListener} before the jar is appended to the bootstrap
 * search path: the first resolution would otherwise define them in the system class loader, and the advice inlined
 * into {@code org.duckdb} classes (which resolves them through the bootstrap loader) would see a second copy.
 *
 * <p>Concurrency: premain runs on the main thread before the host's main; agentmain runs on the attach listener
 * thread, possibly more than once (operators pass commands through {@code jcmd}). Both go through
 * {@link #start}, which is synchronized so that the jar is appended once and one {@link InstClassLoader}, hence one
 * runtime, serves every call.
 */
public final class AgentEntry {
    /** The hidden installer, inside inst/; loaded by name so that this class never links against it. */
    private static final String INSTALLER = "io.duckguard.agent.AgentInstaller";
    private static final String RUNTIME = "io.duckguard.runtime.DuckGuardRuntime";

    /** Created by the first premain/agentmain, reused by later agentmain calls. Guarded by AgentEntry.class. */
    private static InstClassLoader loader;

    private AgentEntry() {}

    public static void premain(String args, Instrumentation inst) {
        start(args, inst, false);
    }

    public static void agentmain(String args, Instrumentation inst) {
        start(args, inst, true);
    }

    /** {@code java -jar duckguard-agent.jar VERB ...}: the CLI; exits the JVM with the CLI's exit code. */
    public static void main(String[] args) {
        int code;
        try {
            InstClassLoader cl = new InstClassLoader(new JarFile(ownJar(), false));
            Thread.currentThread().setContextClassLoader(cl);
            Method cli = Class.forName(RUNTIME, true, cl).getMethod("cli", String[].class);
            code = (Integer) cli.invoke(null, (Object) args);
        } catch (Throwable t) {
            System.err.println("duckguard: cannot run the command line: " + describe(t));
            code = 70; // EX_SOFTWARE: an internal error, distinct from the CLI's own usage/failure codes
        }
        System.exit(code);
    }

    /**
     * Everything a failure here can do is print one line: the host application must keep running unprotected
     * rather than not at all. (The one deliberate exception, {@code required=true}, is decided by the runtime and
     * carried out by the installer.)
     */
    private static synchronized void start(String args, Instrumentation inst, boolean attachedLater) {
        ClassLoader previousContext = Thread.currentThread().getContextClassLoader();
        try {
            if (loader == null) {
                JarFile jar = new JarFile(ownJar(), false);
                // Makes io.duckguard.bootstrap.* (DuckGuardHooks in particular) resolvable from any class loader,
                // whichever loader defines org.duckdb in the host (class path, web app, plugin loader ...).
                inst.appendToBootstrapClassLoaderSearch(jar);
                loader = new InstClassLoader(jar);
            }
            // Threads the runtime starts now inherit this context loader (ServiceLoader & co. then find its
            // classes); the host thread gets its own back below.
            Thread.currentThread().setContextClassLoader(loader);
            Class<?> installer = Class.forName(INSTALLER, true, loader);
            Method install = installer.getMethod("install", String.class, Instrumentation.class, boolean.class);
            install.invoke(null, args, inst, attachedLater);
        } catch (Throwable t) {
            System.err.println("duckguard: agent not started, the application runs unprotected: " + describe(t));
        } finally {
            Thread.currentThread().setContextClassLoader(previousContext);
        }
    }

    /** The agent jar this class was loaded from. */
    static File ownJar() throws Exception {
        CodeSource cs = AgentEntry.class.getProtectionDomain().getCodeSource();
        if (cs != null && cs.getLocation() != null) {
            return Path.of(cs.getLocation().toURI()).toFile();
        }
        // Defined by the bootstrap loader (e.g. the jar is also on -Xbootclasspath/a): no code source, but the
        // class file's own URL names the jar.
        URL self = AgentEntry.class.getResource("AgentEntry.class");
        if (self != null && "jar".equals(self.getProtocol())) {
            URL jarUrl = ((JarURLConnection) self.openConnection()).getJarFileURL();
            return Path.of(URI.create(jarUrl.toString())).toFile();
        }
        throw new IllegalStateException("cannot locate duckguard-agent.jar (code source " + cs + ", class file " + self + ")");
    }

    private static String describe(Throwable t) {
        while (t instanceof InvocationTargetException && t.getCause() != null) {
            t = t.getCause();
        }
        return t.getMessage() == null ? t.toString() : t.getClass().getSimpleName() + ": " + t.getMessage();
    }
}
