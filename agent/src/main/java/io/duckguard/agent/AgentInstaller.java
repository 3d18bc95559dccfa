package io.duckguard.agent;

import static net.bytebuddy.matcher.ElementMatchers.isPublic;
import static net.bytebuddy.matcher.ElementMatchers.isStatic;
import static net.bytebuddy.matcher.ElementMatchers.nameStartsWith;
import static net.bytebuddy.matcher.ElementMatchers.named;
import static net.bytebuddy.matcher.ElementMatchers.not;
import static net.bytebuddy.matcher.ElementMatchers.takesArgument;
import static net.bytebuddy.matcher.ElementMatchers.takesArguments;
import static net.bytebuddy.matcher.ElementMatchers.takesNoArguments;

import io.duckguard.bootstrap.DuckGuardHooks;
import io.duckguard.runtime.DuckGuardRuntime;
import java.lang.instrument.Instrumentation;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import net.bytebuddy.agent.builder.AgentBuilder;
import net.bytebuddy.agent.builder.ResettableClassFileTransformer;
import net.bytebuddy.asm.Advice;
import net.bytebuddy.asm.AsmVisitorWrapper;
import net.bytebuddy.description.method.MethodDescription;
import net.bytebuddy.description.type.TypeDescription;
import net.bytebuddy.dynamic.DynamicType;
import net.bytebuddy.dynamic.loading.ClassInjector;
import net.bytebuddy.matcher.ElementMatcher;
import net.bytebuddy.utility.JavaModule;

/**
 * The hidden half of the agent (loaded from {@code inst/} by {@code InstClassLoader}, called reflectively by
 * {@code AgentEntry}): starts the runtime and, if it protects anything, weaves {@link DuckDbAdvice} into DuckDB's
 * JDBC classes.
 *
 * <p>What is instrumented (all by class and method name; classes are never loaded to be matched, and nothing outside
 * {@code org.duckdb.} is even looked at):
 * <ul>
 *   <li>{@code DuckDBConnection}: static {@code newConnection(String, boolean, ...)} (connection opened),
 *       {@code duplicate()} (duplicated), {@code commit()}, {@code rollback()}, {@code setAutoCommit(boolean)}
 *       (calls that may commit), {@code close()} (closed);</li>
 *   <li>{@code DuckDBPreparedStatement}: {@code execute()}, {@code query()}, {@code executeBatch()},
 *       {@code executeLargeBatch()} (every JDBC execution path funnels into these);</li>
 *   <li>{@code DuckDBAppender}: {@code flush()} (also reached from {@code endRow()}), {@code close()};
 *       {@code DuckDBSingleValueAppender}: {@code flush()}, {@code close()}.</li>
 * </ul>
 * Retransformation without class format changes means the same transformation works at premain (classes not loaded
 * yet) and at agentmain (already loaded classes are retransformed in place), and can be undone.
 *
 * <p>Concurrency: {@link #install} and {@link #instrument} are synchronized; the transformation itself runs on
 * whatever thread loads or retransforms a DuckDB class, and only touches the thread-safe counters below.
 */
public final class AgentInstaller {
    static final String CONNECTION = "org.duckdb.DuckDBConnection";
    static final String PREPARED_STATEMENT = "org.duckdb.DuckDBPreparedStatement";
    static final String APPENDER = "org.duckdb.DuckDBAppender";
    static final String SINGLE_VALUE_APPENDER = "org.duckdb.DuckDBSingleValueAppender";

    /** Error lines printed at most; after that errors are only counted (one more line says so). */
    private static final int MAX_ERROR_LINES = 10;

    private static final AtomicLong TRANSFORMATION_ERRORS = new AtomicLong();
    private static final Set<String> TRANSFORMED = ConcurrentHashMap.newKeySet();

    /** The installed transformer, null while nothing is installed. Guarded by AgentInstaller.class. */
    private static ResettableClassFileTransformer installed;

    private AgentInstaller() {}

    /**
     * Called reflectively by {@code AgentEntry.premain/agentmain} (possibly several times: {@code jcmd} commands
     * arrive as further agentmain calls; the runtime interprets them, and the instrumentation is installed once).
     */
    public static synchronized void install(String args, Instrumentation inst, boolean attachedLater) {
        DuckGuardRuntime.Start start = DuckGuardRuntime.start(args, attachedLater);
        // The runtime has already logged start.message() (one line, prefixed "duckguard").
        if (start.exitJvm()) {
            if (!attachedLater) {
                // required=true: refuse to run the application unprotected. Only before its main has started;
                // a running application (attach) is never killed by the agent.
                System.exit(1);
            }
            return;
        }
        if (!start.protecting()) return;
        instrument(inst);
    }

    /**
     * Installs the DuckDB instrumentation (idempotent) and retransforms DuckDB classes that are already loaded.
     * Separate from {@link #install} so that tests can instrument without starting the runtime.
     *
     * @return the installed transformer (the same one on repeated calls)
     */
    public static synchronized ResettableClassFileTransformer instrument(Instrumentation inst) {
        if (installed == null) {
            avoidUnsafe();
            installed = agentBuilder(inst).installOn(inst);
        }
        return installed;
    }

    /**
     * We never inject classes (no class format changes, no Nexus), yet constructing an {@code AgentBuilder} makes
     * Byte Buddy probe {@code sun.misc.Unsafe}, and Java 24+ prints a "terminally deprecated method" warning into
     * the host's stderr for that. Byte Buddy's own switches turn the probe off. After relocation these property
     * names are {@code io.duckguard.shaded.bytebuddy.*} (shade rewrites the string constants), so they affect only
     * duckguard's copy of Byte Buddy, never one the host uses. An explicit setting by the operator wins.
     */
    private static void avoidUnsafe() {
        String safe = ClassInjector.UsingUnsafe.SAFE_PROPERTY; // "net.bytebuddy.safe" before relocation
        String nexusDisabled = safe.substring(0, safe.length() - "safe".length()) + "nexus.disabled";
        if (System.getProperty(safe) == null) System.setProperty(safe, "true");
        if (System.getProperty(nexusDisabled) == null) System.setProperty(nexusDisabled, "true");
    }

    /** Removes the instrumentation again, restoring DuckDB's original byte code (tests). */
    static synchronized boolean uninstall(Instrumentation inst) {
        if (installed == null) return false;
        boolean reset = installed.reset(inst, AgentBuilder.RedefinitionStrategy.RETRANSFORMATION);
        installed = null;
        TRANSFORMED.clear();
        return reset;
    }

    /** Transformation errors since the JVM started (each was reported as one stderr line, up to a limit). */
    public static long transformationErrors() {
        return TRANSFORMATION_ERRORS.get();
    }

    /** Names of the DuckDB classes transformed so far (loaded after installation, or retransformed). */
    public static Set<String> transformedTypes() {
        return Set.copyOf(TRANSFORMED);
    }

    static AgentBuilder agentBuilder(Instrumentation inst) {
        AsmVisitorWrapper connection = new AsmVisitorWrapper.Compound(List.of(
                Advice.to(DuckDbAdvice.NewConnection.class).on(isStatic()
                        .and(named("newConnection"))
                        .and(takesArgument(0, String.class))
                        .and(takesArgument(1, boolean.class))),
                Advice.to(DuckDbAdvice.Duplicate.class).on(named("duplicate").and(isPublic()).and(takesNoArguments())),
                Advice.to(DuckDbAdvice.ConnectionCall.class).on(noArg("commit")
                        .or(noArg("rollback"))
                        .or(named("setAutoCommit").and(takesArguments(boolean.class)))),
                Advice.to(DuckDbAdvice.Close.class).on(noArg("close"))));
        AsmVisitorWrapper statement = Advice.to(DuckDbAdvice.ConnFieldCall.class).on(noArg("execute")
                .or(noArg("query"))
                .or(noArg("executeBatch"))
                .or(noArg("executeLargeBatch")));
        AsmVisitorWrapper appender = Advice.to(DuckDbAdvice.ConnFieldCall.class).on(noArg("flush").or(noArg("close")));
        AsmVisitorWrapper singleValueAppender =
                Advice.to(DuckDbAdvice.UnknownConnectionCall.class).on(noArg("flush").or(noArg("close")));

        return new AgentBuilder.Default()
                // Retransformable both ways: no new fields/methods, so already loaded classes can be changed.
                .disableClassFormatChanges()
                .with(AgentBuilder.RedefinitionStrategy.RETRANSFORMATION)
                // Retransforming a loaded class can load further DuckDB classes on this thread while Byte Buddy's
                // circularity lock is held (they are then not transformed at load); look again until nothing new.
                .with(AgentBuilder.RedefinitionStrategy.DiscoveryStrategy.Reiterating.INSTANCE)
                .with(new RetransformReporter())
                // Describe types from their class files only. The default (HYBRID) reflects on an already loaded
                // DuckDBConnection, and getDeclaredMethods() then loads DuckDBAppender & co. inside the transformer,
                // where they escape instrumentation (seen on agentmain).
                .with(AgentBuilder.DescriptionStrategy.Default.POOL_ONLY)
                .with(new Reporter())
                // Replaces Byte Buddy's default ignore rule: look at nothing but DuckDB (cheap name test first).
                .ignore(not(nameStartsWith("org.duckdb.")))
                // The inlined advice calls DuckGuardHooks; a DuckDB jar on the host's module path must read its
                // module (the bootstrap loader's unnamed module). A no-op for DuckDB on the class path.
                .assureReadEdgeTo(inst, JavaModule.ofType(DuckGuardHooks.class))
                .type(named(CONNECTION)).transform(visit(connection))
                .type(named(PREPARED_STATEMENT)).transform(visit(statement))
                .type(named(APPENDER)).transform(visit(appender))
                .type(named(SINGLE_VALUE_APPENDER)).transform(visit(singleValueAppender));
    }

    private static ElementMatcher.Junction<MethodDescription> noArg(String name) {
        return named(name).and(takesNoArguments());
    }

    private static AgentBuilder.Transformer visit(AsmVisitorWrapper wrapper) {
        return (builder, type, classLoader, module, protectionDomain) -> builder.visit(wrapper);
    }

    private static void print(String message) {
        if (message == null || message.isBlank()) return;
        System.err.println(message.startsWith("duckguard") ? message : "duckguard: " + message);
    }

    private static void reportError(String what) {
        long n = TRANSFORMATION_ERRORS.incrementAndGet();
        if (n <= MAX_ERROR_LINES) {
            System.err.println("duckguard: " + what + " (this class stays uninstrumented)");
        } else if (n == MAX_ERROR_LINES + 1) {
            System.err.println("duckguard: more instrumentation errors; no longer printed");
        }
    }

    private static String describe(Throwable t) {
        return t.getMessage() == null ? t.toString() : t.getClass().getSimpleName() + ": " + t.getMessage();
    }

    /** Counts transformed classes and reports transformation errors: one line each, no stack traces. */
    private static final class Reporter extends AgentBuilder.Listener.Adapter {
        @Override
        public void onTransformation(TypeDescription type, ClassLoader classLoader, JavaModule module,
                                     boolean loaded, DynamicType dynamicType) {
            TRANSFORMED.add(type.getName());
        }

        @Override
        public void onError(String typeName, ClassLoader classLoader, JavaModule module, boolean loaded,
                            Throwable throwable) {
            reportError("cannot instrument " + typeName + ": " + describe(throwable));
        }
    }

    /** Reports classes that the JVM refused to retransform (agentmain only), likewise. */
    private static final class RetransformReporter extends AgentBuilder.RedefinitionStrategy.Listener.Adapter {
        @Override
        public Iterable<? extends List<Class<?>>> onError(int index, List<Class<?>> batch, Throwable throwable,
                                                          List<Class<?>> types) {
            reportError("cannot retransform " + batch + ": " + describe(throwable));
            return List.of(); // no retry
        }
    }
}
