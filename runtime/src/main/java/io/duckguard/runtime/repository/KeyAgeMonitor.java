package io.duckguard.runtime.repository;

import io.duckguard.runtime.util.Log;
import io.duckguard.runtime.util.Threads;
import java.time.Duration;

/** Warns in the log, at start and then twice a day, while the repository's current master key is older than keys.max-age. */
public final class KeyAgeMonitor {
    private static final Duration EVERY = Duration.ofHours(12);

    private KeyAgeMonitor() {}

    /** Checks once: logs and returns the warning, or returns null when the key is young enough (or on a read error). */
    public static String check(Repository repo, Duration maxAge) {
        try {
            String w = repo.keyStatus().warning(maxAge, repo.root().toString());
            if (w != null) Log.warn(w);
            return w;
        } catch (RuntimeException e) {
            Log.debug("key age check failed: " + e);
            return null;
        }
    }

    /** Starts the check thread (duckguard-key-age) for an encrypted repository. */
    public static void start(Repository repo, Duration maxAge) {
        if (!repo.codec().encrypted()) return;
        Threads.start("key-age", () -> {
            while (true) {
                check(repo, maxAge);
                try {
                    Thread.sleep(EVERY.toMillis());
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
    }
}
