package io.duckguard.runtime.util;

import io.duckguard.bootstrap.DuckGuardHooks;

/** Every duckguard thread: named duckguard-ROLE, daemon, marked internal, uncaught exceptions logged. */
public final class Threads {
    private Threads() {}

    public static Thread start(String role, Runnable body) {
        Thread t = create("duckguard-" + role, body);
        t.start();
        return t;
    }

    /**
     * Threads of a pool: duckguard-ROLE, or duckguard-ROLE-N when {@code numbered} (N counts from 1), with the same
     * properties as {@link #start}.
     */
    public static java.util.concurrent.ThreadFactory factory(String role, boolean numbered) {
        java.util.concurrent.atomic.AtomicInteger n = new java.util.concurrent.atomic.AtomicInteger();
        return r -> create("duckguard-" + role + (numbered ? "-" + n.incrementAndGet() : ""), r);
    }

    private static Thread create(String name, Runnable body) {
        Thread t = new Thread(() -> {
            DuckGuardHooks.markInternalThread();
            body.run();
        }, name);
        t.setDaemon(true);
        t.setUncaughtExceptionHandler((th, e) -> Log.error("thread " + th.getName() + " died", e));
        return t;
    }

    /** Waits for {@code t} to end; an interrupt ends the wait early and stays set on the calling thread. */
    public static void joinQuietly(Thread t) {
        try {
            t.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
