package io.duckguard.agent;

import io.duckguard.bootstrap.DuckGuardHooks;
import net.bytebuddy.asm.Advice;

/**
 * The advice woven into {@code org.duckdb} classes. Every method here is inlined (Byte Buddy copies its byte code into
 * the DuckDB method), so the rules are strict:
 * <ul>
 *   <li>reference nothing but {@link DuckGuardHooks} and JDK types: the inlined code runs in DuckDB's class loader,
 *       which can resolve only the bootstrap package (appended to the bootstrap search path), never anything under
 *       {@code inst/};</li>
 *   <li>{@code suppress = Throwable.class} everywhere: whatever goes wrong in advice (even a
 *       {@code NoClassDefFoundError}) is swallowed and the DuckDB method behaves as if uninstrumented;</li>
 *   <li>never write arguments, return values or thrown exceptions (all bindings are read-only);</li>
 *   <li>exit advice runs on return and on throw ({@code onThrowable}), so the per-thread call depth kept by
 *       {@link DuckGuardHooks#enter}/{@link DuckGuardHooks#exit} always unwinds.</li>
 * </ul>
 * Connections and statements are passed as {@code Object}: the runtime sees DuckDB classes only reflectively.
 *
 * <p>Concurrency: the advice runs on whatever host thread calls DuckDB; all state lives in {@link DuckGuardHooks}
 * (thread-local call depth, a volatile listener).
 */
final class DuckDbAdvice {
    private DuckDbAdvice() {}

    /**
     * {@code static DuckDBConnection.newConnection(String url, boolean readOnly, ...)}, both overloads. Note: in
     * duckdb_jdbc 1.5.6.0 and 2.0.0.1 the 3-argument overload delegates to the 4-argument one (the driver itself
     * calls the 4-argument one), so a direct call of the 3-argument overload reports the same connection twice.
     */
    static final class NewConnection {
        private NewConnection() {}

        @Advice.OnMethodExit(onThrowable = Throwable.class, suppress = Throwable.class)
        static void exit(@Advice.Argument(0) String url, @Advice.Argument(1) boolean readOnly,
                         @Advice.Return Object connection) {
            DuckGuardHooks.connectionOpened(connection, url, readOnly);
        }
    }

    /** {@code public DuckDBConnection DuckDBConnection.duplicate()}. */
    static final class Duplicate {
        private Duplicate() {}

        @Advice.OnMethodExit(onThrowable = Throwable.class, suppress = Throwable.class)
        static void exit(@Advice.This Object original, @Advice.Return Object duplicate) {
            DuckGuardHooks.connectionDuplicated(original, duplicate);
        }
    }

    /** {@code DuckDBConnection.close()}. */
    static final class Close {
        private Close() {}

        @Advice.OnMethodExit(onThrowable = Throwable.class, suppress = Throwable.class)
        static void exit(@Advice.This Object connection) {
            DuckGuardHooks.connectionClosed(connection);
        }
    }

    /** Calls on the connection itself that may commit: {@code commit()}, {@code rollback()}, {@code setAutoCommit}. */
    static final class ConnectionCall {
        private ConnectionCall() {}

        @Advice.OnMethodEnter(suppress = Throwable.class)
        static boolean enter(@Advice.This Object connection) {
            return DuckGuardHooks.enter(connection);
        }

        @Advice.OnMethodExit(onThrowable = Throwable.class, suppress = Throwable.class)
        static void exit(@Advice.Enter boolean outermost, @Advice.This Object connection) {
            DuckGuardHooks.exit(outermost, connection);
        }
    }

    /**
     * Calls that own a {@code conn} field of type {@code DuckDBConnection}: {@code DuckDBPreparedStatement}
     * execution and {@code DuckDBAppender} flush/close. The field is read once, on enter, and kept in a local for the
     * exit: a statement whose execution fails closes itself and nulls its {@code conn} before the exception leaves,
     * yet {@code afterCall} must name the same connection as {@code beforeCall}.
     */
    static final class ConnFieldCall {
        private ConnFieldCall() {}

        @Advice.OnMethodEnter(suppress = Throwable.class)
        static boolean enter(@Advice.FieldValue("conn") Object connection,
                             @Advice.Local("duckguardConn") Object saved) {
            saved = connection;
            return DuckGuardHooks.enter(connection);
        }

        @Advice.OnMethodExit(onThrowable = Throwable.class, suppress = Throwable.class)
        static void exit(@Advice.Enter boolean outermost, @Advice.Local("duckguardConn") Object connection) {
            DuckGuardHooks.exit(outermost, connection);
        }
    }

    /** {@code DuckDBSingleValueAppender} flush/close: it keeps no reference to its connection. */
    static final class UnknownConnectionCall {
        private UnknownConnectionCall() {}

        @Advice.OnMethodEnter(suppress = Throwable.class)
        static boolean enter() {
            return DuckGuardHooks.enter(null);
        }

        @Advice.OnMethodExit(onThrowable = Throwable.class, suppress = Throwable.class)
        static void exit(@Advice.Enter boolean outermost) {
            DuckGuardHooks.exit(outermost, null);
        }
    }
}
