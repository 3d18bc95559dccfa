package io.duckguard.runtime.crypto;

import io.duckguard.runtime.util.Threads;
import java.security.SecureRandom;

/**
 * Gets AES-GCM fast before a restore (or the CLI's snapshot, verify --read-data) needs it: loads {@link NativeAesGcm}
 * where this process allows it, or else gets the JDK's decryption compiled. A restore usually runs in a fresh JVM (the
 * CLI), where the JDK's GCM runs as plain Java at 60-300 MB/s until C2 has compiled {@code GHASH.update} and
 * {@code GCTR.update} with their intrinsics (~3 GB/s per core here). That takes thousands of calls: with 256 KiB
 * blocks alone, ~2 s of a cold 1 GB restore went by first (measured). So: many calls on tiny objects (cheap even
 * interpreted), mixed with a 160 KiB one that keeps the large-input branches in the profile (the JDK splits
 * inputs over 64 KiB; a warm-up on small objects alone got compiled code that was thrown away at the first real
 * block), until that 160 KiB object decrypts at compiled speed two rounds in a row, or a deadline passes.
 *
 * <p>Once per JVM, on thread {@code duckguard-warm-up}: {@link #start} as early as possible (the CLI does it before
 * opening the repository, so it overlaps the start-up on the other core); {@link #await} blocks until it is done.
 * In a JVM that has already encrypted or decrypted a lot (the agent) the probe is fast at once and it ends in
 * about a millisecond.
 */
public final class AesGcmWarmUp {
    private static final long DEADLINE_NANOS = 800_000_000L;
    private static Thread thread;
    private static volatile boolean stopped;

    private AesGcmWarmUp() {}

    /** Starts the warm-up unless it ran or runs already. Any thread. */
    public static synchronized void start() {
        if (thread == null) thread = Threads.start("warm-up", AesGcmWarmUp::run);
    }

    /**
     * Ends the warm-up early: the restore found it does not need it (a small snapshot), and it would only take CPU
     * from the restore's own work (DuckDB's replay). Any thread; the warm-up stops within one round, for the rest of
     * this JVM (a CLI runs one restore; a host JVM has compiled GCM already).
     */
    public static void stop() {
        stopped = true;
    }

    /** Starts it if needed and waits for it to finish. */
    public static void await() {
        Thread t;
        synchronized (AesGcmWarmUp.class) {
            start();
            t = thread;
        }
        Threads.joinQuietly(t);
    }

    private static void run() {
        if (NativeAesGcm.load()) return; // fast from the first object: nothing to compile
        DataKey key = DataKey.generate("warm-up");
        ObjectCodec codec = new ObjectCodec((id, n) -> key, key, null, 0);
        String name = "block:" + "0".repeat(64); // a real block's name: the same associated-data length
        byte[] big = new byte[160 << 10];
        new SecureRandom().nextBytes(big);
        byte[] sealedBig = codec.seal(key, big, 0, big.length, name, 0);
        byte[] sealedTiny = codec.seal(key, big, 0, 64, name, 0);
        byte[] dst = new byte[big.length];
        byte[] scratch = new byte[sealedBig.length];
        long deadline = System.nanoTime() + DEADLINE_NANOS;
        int fastRounds = 0;
        try {
            while (fastRounds < 2 && System.nanoTime() < deadline && !stopped) {
                for (int i = 0; i < 100; i++) codec.openInto(sealedTiny, 0, sealedTiny.length, name, dst, scratch);
                long t0 = System.nanoTime();
                codec.openInto(sealedBig, 0, sealedBig.length, name, dst, scratch);
                fastRounds = System.nanoTime() - t0 < 125_000 ? fastRounds + 1 : 0; // 160 KiB in < 125 us: > 1.3 GB/s
            }
        } catch (CorruptObjectException e) {
            throw new IllegalStateException("the warm-up's own object failed to open", e);
        }
    }
}
