package io.duckguard.runtime.util;

/**
 * Delays that crash tests switch on (system properties, off by default) to make a kill -9 land inside a long
 * operation instead of hoping to hit a millisecond window. They only sleep; they never change what is written.
 */
public final class FaultInjection {
    private static final long GC_STEP_MS = Long.getLong("duckguard.test.gc-step-delay-ms", 0);
    private static final long SNAPSHOT_CHUNK_MS = Long.getLong("duckguard.test.snapshot-chunk-delay-ms", 0);
    private static final long CHECKPOINT_MS = Long.getLong("duckguard.test.checkpoint-delay-ms", 0);
    private static final long RESTORE_CHUNK_MS = Long.getLong("duckguard.test.restore-chunk-delay-ms", 0);

    private FaultInjection() {}

    public static void gcStep() {
        sleep(GC_STEP_MS);
    }

    public static void snapshotChunk() {
        sleep(SNAPSHOT_CHUNK_MS);
    }

    public static void restoreChunk() {
        sleep(RESTORE_CHUNK_MS);
    }

    public static void checkpoint() {
        sleep(CHECKPOINT_MS);
    }

    private static void sleep(long ms) {
        if (ms <= 0) return;
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
