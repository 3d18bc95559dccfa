package io.duckguard.runtime.util;

import io.duckguard.bootstrap.DuckGuardHooks;

/** Every duckguard thread: named duckguard-ROLE, daemon, marked internal, uncaught exceptions logged. */
public final class Threads {
    private Threads() {}

    public static Thread start(String role, Runnable body) {
        Thread t = new Thread(() -> {
            DuckGuardHooks.markInternalThread();
            body.run();
        }, "duckguard-" + role);
        t.setDaemon(true);
        t.setUncaughtExceptionHandler((th, e) -> Log.error("thread " + th.getName() + " died", e));
        t.start();
        return t;
    }
}
