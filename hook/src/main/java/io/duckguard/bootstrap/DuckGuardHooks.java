package io.duckguard.bootstrap;

import java.util.concurrent.atomic.AtomicLong;

/**
 * The only entry point that advice inlined into {@code org.duckdb} classes calls. It lives in the bootstrap package
 * (appended to the bootstrap class path) so that DuckDB's classes can see it whatever class loader loaded them.
 *
 * <p>Rules: never throw into the host (every call catches {@link Throwable} and counts it in {@link #adviceErrors()});
 * do nothing until a listener is installed; only the outermost call on a thread is reported (CallDepth: commit()
 * executes a "COMMIT" statement, executeBatch() calls execute() per item); and calls made by duckguard itself
 * (its own threads, or the runtime while it handles an event on an app thread) are never reported.
 */
public final class DuckGuardHooks {
    private static volatile HookListener listener;
    private static final AtomicLong ADVICE_ERRORS = new AtomicLong();

    /** Per thread: [0] = depth of instrumented calls in progress, [1] = 1 while the thread is duckguard's own. */
    private static final ThreadLocal<int[]> STATE = ThreadLocal.withInitial(() -> new int[2]);

    private DuckGuardHooks() {}

    /** Installed once by the runtime; {@code null} uninstalls (tests). */
    public static void install(HookListener l) {
        listener = l;
    }

    public static long adviceErrors() {
        return ADVICE_ERRORS.get();
    }

    /** Marks the current thread as duckguard's own for its whole life: nothing it does is reported. */
    public static void markInternalThread() {
        STATE.get()[1] = 1;
    }

    /** Runs {@code r} with the current thread marked internal (restores the previous marking afterwards). */
    public static void runInternal(Runnable r) {
        int[] s = STATE.get();
        int before = s[1];
        s[1] = 1;
        try {
            r.run();
        } finally {
            s[1] = before;
        }
    }

    // ---- called by advice ----

    public static void connectionOpened(Object connection, String url, boolean readOnly) {
        HookListener l = listener;
        if (l == null || connection == null) return;
        int[] s = STATE.get();
        if (s[1] != 0) return;
        s[1] = 1;
        try {
            l.connectionOpened(connection, url, readOnly);
        } catch (Throwable t) {
            ADVICE_ERRORS.incrementAndGet();
        } finally {
            s[1] = 0;
        }
    }

    public static void connectionDuplicated(Object original, Object duplicate) {
        HookListener l = listener;
        if (l == null || duplicate == null) return;
        int[] s = STATE.get();
        if (s[1] != 0) return;
        s[1] = 1;
        try {
            l.connectionDuplicated(original, duplicate);
        } catch (Throwable t) {
            ADVICE_ERRORS.incrementAndGet();
        } finally {
            s[1] = 0;
        }
    }

    /**
     * Method-enter advice. Returns true when this is the outermost instrumented call on the thread (pass the value
     * to {@link #exit}). Never throws.
     */
    public static boolean enter(Object connection) {
        try {
            int[] s = STATE.get();
            if (s[0]++ != 0 || s[1] != 0) return false;
            HookListener l = listener;
            if (l == null) return true;
            s[1] = 1;
            try {
                l.beforeCall(connection);
            } finally {
                s[1] = 0;
            }
            return true;
        } catch (Throwable t) {
            ADVICE_ERRORS.incrementAndGet();
            return false;
        }
    }

    /** Method-exit advice (also on throw). Never throws. */
    public static void exit(boolean outermost, Object connection) {
        try {
            int[] s = STATE.get();
            if (s[0] > 0) s[0]--;
            if (!outermost || s[1] != 0) return;
            HookListener l = listener;
            if (l == null) return;
            s[1] = 1;
            try {
                l.afterCall(connection);
            } finally {
                s[1] = 0;
            }
        } catch (Throwable t) {
            ADVICE_ERRORS.incrementAndGet();
        }
    }

    /** Exit advice of {@code DuckDBConnection.close()}. Never throws. */
    public static void connectionClosed(Object connection) {
        HookListener l = listener;
        if (l == null || connection == null) return;
        int[] s = STATE.get();
        if (s[1] != 0) return;
        s[1] = 1;
        try {
            l.connectionClosed(connection);
        } catch (Throwable t) {
            ADVICE_ERRORS.incrementAndGet();
        } finally {
            s[1] = 0;
        }
    }
}
