package io.duckguard.runtime.snapshot;

import io.duckguard.runtime.repository.Manifest;
import io.duckguard.runtime.util.Log;
import java.nio.channels.FileChannel;
import java.util.Arrays;
import java.util.Collections;
import java.util.Map;
import java.util.WeakHashMap;

/**
 * Which chunks an incremental snapshot need not read at all. A chunk is skipped when all of these hold:
 * <ul>
 *   <li>the previous snapshot was taken through the same channel (the same open file, so the same file's history)
 *       by this JVM, and it is the snapshot the caller names as previous;</li>
 *   <li>at most one checkpoint happened since (DuckDB's header iteration moved by 0 or 1): with two, a block freed by
 *       the first could be reused by the second;</li>
 *   <li>its DuckDB block was neither free, nor a metadata block, nor past the end in the previous snapshot's
 *       {@link DuckDbBlockMap}: DuckDB does not write such a block before the checkpoint after that one;</li>
 *   <li>its first 8 bytes, DuckDB's own block checksum, are those the previous snapshot saw. This costs one 8-byte
 *       read per block and catches a block DuckDB rewrote although its map did not list it (DuckDB frees a block
 *       still cached in memory only when it is evicted, after the header is written); it is not relied on alone,
 *       as the checksum is weak (shared/duckdb-facts.md section 7).</li>
 * </ul>
 * Every {@value #AUDIT_EVERY}th snapshot through a channel reads every chunk anyway and counts chunks the plan would
 * have skipped although they changed; if there is one, skipping stops for that channel and a warning says so.
 * Immutable; {@link #LAST_READ} is thread-safe.
 */
record SkipPlan(LastRead last, boolean audit) {
    /** One snapshot in this many through a channel reads every chunk and checks what the plan would have skipped. */
    static final int AUDIT_EVERY = 10;

    /** What the last snapshot through a channel left for the next one. */
    record LastRead(long epoch, byte[] fileSha, DuckDbBlockMap map, long[] blockChecksums, int sinceAudit, boolean trusted) {}

    /** Keyed by channel identity; an entry goes with its channel. */
    static final Map<FileChannel, LastRead> LAST_READ = Collections.synchronizedMap(new WeakHashMap<>());

    /** The plan for a snapshot after {@code previous}, or null: read every chunk. */
    static SkipPlan of(LastRead last, Manifest previous, DuckDbBlockMap now) {
        if (last == null || previous == null || now == null || !last.trusted()) return null;
        if (last.epoch() != previous.epoch() || !Arrays.equals(last.fileSha(), previous.fileSha256())) return null;
        long moved = now.iteration() - last.map().iteration();
        if (moved != 0 && moved != 1) return null;
        return new SkipPlan(last, last.sinceAudit() + 1 >= AUDIT_EVERY);
    }

    /** Whether chunk {@code i} (of {@code len} bytes) may be skipped, given its DuckDB checksum is unchanged. */
    boolean skippable(int i, int len) {
        long block = i - 1L; // chunk 0 is the header area; chunk i holds DuckDB block i - 1
        return i > 0 && len == Manifest.CHUNK && i < last.blockChecksums().length && !last.map().mayChange(block);
    }

    long blockChecksum(int i) {
        return last.blockChecksums()[i];
    }

    /** Records what the next snapshot through {@code db} may use, after snapshot {@code m} succeeded. */
    static void remember(FileChannel db, Manifest m, DuckDbBlockMap map, long[] blockChecksums, SkipPlan plan,
                         int caught, int missed) {
        if (map == null) {
            LAST_READ.remove(db);
            return;
        }
        LastRead before = LAST_READ.get(db);
        boolean trusted = before == null || before.trusted();
        if (missed > 0) {
            trusted = false;
            Log.warn("snapshot " + m.epoch() + ": " + missed + " DuckDB blocks changed outside DuckDB's free list and"
                    + " kept their checksum. This snapshot read every block and is right, and snapshots of this file now"
                    + " always do; but the up to " + (AUDIT_EVERY - 1) + " snapshots before it, since the last full read,"
                    + " may hold stale copies of those blocks: prefer restore points from snapshot " + m.epoch()
                    + " on, and report this with the DuckDB version");
        }
        if (caught > 0) {
            Log.info("snapshot " + m.epoch() + ": " + caught + " blocks outside DuckDB's free list had changed; read");
        }
        int sinceAudit = plan == null || plan.audit() ? 0 : plan.last().sinceAudit() + 1;
        LAST_READ.put(db, new LastRead(m.epoch(), m.fileSha256(), map, blockChecksums, sinceAudit, trusted));
    }
}
