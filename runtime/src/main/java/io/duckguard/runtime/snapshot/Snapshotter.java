package io.duckguard.runtime.snapshot;

import io.duckguard.runtime.crypto.DataKey;
import io.duckguard.runtime.crypto.ObjectCodec;
import io.duckguard.runtime.repository.BlockRef;
import io.duckguard.runtime.repository.Manifest;
import io.duckguard.runtime.repository.Packs;
import io.duckguard.runtime.repository.Repository;
import io.duckguard.runtime.util.Bytes;
import io.duckguard.runtime.util.Log;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Takes snapshot n: reads the database file through the channel duckguard holds on it (never a new descriptor:
 * invariant 4), chunk by chunk on DuckDB's block grid, and stores only chunks the previous snapshot does not have.
 * Chunks that DuckDB cannot have written since the previous snapshot through the same channel are not even read
 * ({@link SkipPlan}, from the file's {@link DuckDbBlockMap}).
 * The file must not change meanwhile: between checkpoints DuckDB writes only to the WAL (with the agent's
 * settings), and the caller never overlaps a checkpoint it drives. A checkpoint it did not drive is caught by
 * comparing the header area before and after: then {@link ConcurrentCheckpointException}.
 */
public final class Snapshotter {
    private Snapshotter() {}

    /** The database file changed while it was being read: a checkpoint happened meanwhile. Take it again. */
    public static final class ConcurrentCheckpointException extends IOException {
        public ConcurrentCheckpointException(String m) {
            super(m);
        }
    }

    /** SHA-256 of the header area (main header + both database headers): changes with every checkpoint. */
    public static byte[] headerSha(FileChannel db) throws IOException {
        byte[] h = read(db, 0, (int) Math.min(Manifest.HEADER_BYTES, db.size()));
        return Bytes.sha256(h, 0, h.length);
    }

    /** The active database header's iteration (the higher of the two headers at 4096 and 8192). */
    public static long headerIteration(FileChannel db) throws IOException {
        if (db.size() < Manifest.HEADER_BYTES) return -1;
        byte[] h = read(db, 4096, 8192);
        return Math.max(Bytes.getLongLE(h, 8), Bytes.getLongLE(h, 4096 + 8));
    }

    public static Manifest snapshot(Repository repo, FileChannel db, long epoch, Manifest previous,
                                    String duckdbVersion, String reason) throws IOException {
        long t0 = System.nanoTime();
        byte[] headerBefore = headerSha(db);
        long iteration = headerIteration(db);
        long size = db.size();
        DuckDbBlockMap map = blockMap(db, epoch);
        SkipPlan plan = SkipPlan.of(SkipPlan.LAST_READ.get(db), previous, map);
        Map<String, BlockRef> known = new ConcurrentHashMap<>(); // read by workers, written by this thread
        if (previous != null) for (BlockRef b : previous.chunks()) known.put(Bytes.hex(b.id()), b);
        ObjectCodec codec = repo.codec();
        // A first snapshot records no change fingerprints: the next one skips unchanged blocks by DuckDB's block map
        // without them, and the first snapshot that reads every block again (an audit, or one without a skip plan)
        // hashes those blocks once and records theirs. The full snapshot of 1 GB then costs 1.7 instead of 2.0
        // core-seconds here (NH is a third of the cost of the content id, paid on every block).
        ChangeFingerprint fingerprint = previous == null ? null : fingerprintOf(codec);
        int count = 0;
        for (int i = 0; Manifest.chunkOffset(i) < size; i++) count++;
        BlockRef[] refs = new BlockRef[count];
        byte[][] fingerprints = new byte[count][];
        long[] blockChecksums = new long[count];
        java.util.concurrent.atomic.AtomicInteger notRead = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.atomic.AtomicInteger caught = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.atomic.AtomicInteger missed = new java.util.concurrent.atomic.AtomicInteger();
        long added = 0;
        int newChunks = 0;
        // Pipeline: WORKERS threads take chunk indexes in turn, keep the previous snapshot's block where the skip plan
        // allows (after reading only DuckDB's 8-byte block checksum), else read the chunk (positional reads on the
        // held channel) and keep the previous snapshot's block where the fingerprint says it is unchanged; the
        // rest they hash and seal and queue for this thread, the only writer of packs. Nothing waits on order, and
        // only changed chunks hold memory (at most QUEUE of them).
        ExecutorService pool = workers();
        java.util.concurrent.atomic.AtomicInteger next = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.BlockingQueue<Chunk> changed = new java.util.concurrent.ArrayBlockingQueue<>(QUEUE);
        List<Future<?>> workers = new ArrayList<>();
        try (Packs.Writer packs = new Packs.Writer(repo)) {
            int n = count;
            // Chunks past the previous snapshot's end are new for certain: take them first, so that their sealing
            // and pack writes overlap the fingerprinting of the rest instead of trailing it.
            int grown = previous == null ? 0 : Math.max(0, n - previous.chunks().size());
            for (int w = 0; w < WORKERS; w++) {
                workers.add(pool.submit(() -> {
                    for (int s = next.getAndIncrement(); s < n; s = next.getAndIncrement()) {
                        int i = s < grown ? n - grown + s : s - grown;
                        long off = Manifest.chunkOffset(i);
                        int len = (int) Math.min(i == 0 ? Manifest.HEADER_BYTES : Manifest.CHUNK, size - off);
                        BlockRef before = previous != null && i < previous.chunks().size() ? previous.chunks().get(i) : null;
                        boolean skippable = plan != null && plan.skippable(i, len);
                        if (skippable && !plan.audit()) {
                            long sum = blockChecksum(db, off);
                            blockChecksums[i] = sum;
                            if (sum == plan.blockChecksum(i)) {
                                refs[i] = before;
                                fingerprints[i] = previous.fingerprint(i);
                                notRead.incrementAndGet();
                                CHUNKS_NOT_READ.increment();
                                continue;
                            }
                            caught.incrementAndGet(); // outside DuckDB's map, yet changed: read it
                            CHUNKS_CAUGHT_BY_CHECKSUM.increment();
                        }
                        Chunk c = chunk(i, db, off, len, codec, fingerprint, packs.sealingKey(), known, before,
                                before == null ? null : previous.fingerprint(i));
                        if (i > 0) blockChecksums[i] = c.blockChecksum;
                        if (skippable && plan.audit() && c.unchanged == null && c.blockChecksum == plan.blockChecksum(i)
                                && !Arrays.equals(c.id, before.id())) {
                            missed.incrementAndGet();
                        }
                        fingerprints[i] = c.fingerprint;
                        if (c.unchanged != null) refs[i] = c.unchanged;
                        else changed.put(c);
                    }
                    return null;
                }));
            }
            while (true) {
                Chunk c = changed.poll(10, java.util.concurrent.TimeUnit.MILLISECONDS);
                if (c == null) {
                    if (allDone(workers) && changed.isEmpty()) break;
                    continue;
                }
                BlockRef ref = known.get(c.hexId);
                if (ref == null) {
                    // Not in the previous snapshot (a worker may also have sealed a duplicate within this one).
                    ref = packs.add(c.id, c.sealed, c.plainLength);
                    known.put(c.hexId, ref);
                    added += c.sealed.length;
                    newChunks++;
                }
                refs[c.index] = ref;
            }
            for (Future<?> w : workers) io.duckguard.runtime.util.Futures.await(w); // a worker's failure surfaces here
            CopiedForward moved = copyForward(repo, db, size, refs, packs);
            added += moved.bytes();
            newChunks += moved.chunks();
            if (db.size() != size || !Arrays.equals(headerSha(db), headerBefore)) {
                throw new ConcurrentCheckpointException("the database file changed while it was being read");
            }
            packs.finish();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException("interrupted while taking snapshot " + epoch);
        } finally {
            for (Future<?> w : workers) w.cancel(true);
        }
        MessageDigest fileSha = Bytes.sha256();
        int unchanged = 0;
        for (int i = 0; i < count; i++) {
            fileSha.update(refs[i].id());
            if (previous != null && i < previous.chunks().size() && refs[i] == previous.chunks().get(i)) unchanged++;
        }
        List<BlockRef> chunks = Arrays.asList(refs);
        Manifest m = new Manifest(epoch, System.currentTimeMillis(), size, fileSha.digest(), headerBefore, iteration,
                duckdbVersion, reason, chunks, -1, Arrays.asList(fingerprints));
        SkipPlan.remember(db, m, map, blockChecksums, plan, caught.get(), missed.get());
        Log.info(String.format("snapshot %d (%s): %d chunks, %d unchanged (%d of them not read: DuckDB's block map), %d new,"
                        + " %.1f MB added, %d ms", epoch, reason, chunks.size(), unchanged, notRead.get(), newChunks,
                added / 1e6, (System.nanoTime() - t0) / 1_000_000));
        return m;
    }

    static final java.util.concurrent.atomic.LongAdder CHUNKS_NOT_READ = new java.util.concurrent.atomic.LongAdder();

    /** Chunks this JVM's snapshots skipped by {@link SkipPlan}: for tests and the benchmark. */
    public static long chunksNotRead() {
        return CHUNKS_NOT_READ.sum();
    }

    /** Chunks outside DuckDB's block map whose DuckDB checksum had changed (read after all): for tests. */
    static final java.util.concurrent.atomic.LongAdder CHUNKS_CAUGHT_BY_CHECKSUM = new java.util.concurrent.atomic.LongAdder();

    /** The file's block map, or null (logged) when it has none: then every chunk is read. */
    private static DuckDbBlockMap blockMap(FileChannel db, long epoch) throws IOException {
        try {
            return DuckDbBlockMap.read(db);
        } catch (DuckDbBlockMap.Unmapped e) {
            Log.debug("snapshot " + epoch + ": no DuckDB block map (" + e.getMessage() + "); reading every block");
            return null;
        }
    }

    private static final ThreadLocal<ByteBuffer> CHECKSUM_BUFFER = ThreadLocal.withInitial(() -> ByteBuffer.allocateDirect(8));

    /** DuckDB's checksum of the block at {@code off}: its first 8 bytes, read as {@link #chunk} reads them. */
    private static long blockChecksum(FileChannel db, long off) throws IOException {
        ByteBuffer b = CHECKSUM_BUFFER.get().clear();
        readFully(db, b, off);
        return b.getLong(0);
    }

    /** A pack this snapshot references less than this share of is sparse: its chunks are stored anew. */
    static final double SPARSE_PACK = 0.3;
    /** At most this much is copied forward per snapshot (plaintext), so a snapshot's cost stays bounded. */
    static final long COPY_FORWARD_MIN_BUDGET = 32L << 20;

    private record CopiedForward(int chunks, long bytes) {}

    /**
     * Garbage collection removes a pack only when no retained snapshot references any block in it, and never
     * rewrites one: a pack holding a few blocks that DuckDB has not rewritten since would be kept whole for ever, and
     * the repository would keep growing. So each snapshot stores anew (into its own new packs) the chunks it would
     * otherwise reference in a sparse pack: one this snapshot references less than {@value #SPARSE_PACK} of. Once the
     * snapshots before it expire, nothing references that pack and GC removes it. Sparsest packs first, within a
     * budget of max(32 MiB, 5% of the file) per snapshot. The chunks are read again through the held channel and must
     * still hash to their ids (else the file changed: a checkpoint ran meanwhile). Runs on the snapshot's thread.
     */
    private static CopiedForward copyForward(Repository repo, FileChannel db, long size, BlockRef[] refs, Packs.Writer packs)
            throws IOException {
        Map<String, Long> referenced = new java.util.HashMap<>();
        for (BlockRef r : refs) referenced.merge(r.pack(), (long) r.storedLength(), Long::sum);
        Map<String, Double> sparse = new java.util.HashMap<>();
        for (Map.Entry<String, Long> e : referenced.entrySet()) {
            if (packs.wrote(e.getKey())) continue;
            long packSize = Packs.size(repo, e.getKey());
            if (packSize > 0 && e.getValue() < SPARSE_PACK * packSize) sparse.put(e.getKey(), e.getValue() / (double) packSize);
        }
        if (sparse.isEmpty()) return new CopiedForward(0, 0);
        List<Integer> candidates = new ArrayList<>();
        for (int i = 0; i < refs.length; i++) if (sparse.containsKey(refs[i].pack())) candidates.add(i);
        candidates.sort(java.util.Comparator.comparingDouble(i -> sparse.get(refs[i].pack())));
        long budget = Math.max(COPY_FORWARD_MIN_BUDGET, size / 20);
        ObjectCodec codec = repo.codec();
        Map<String, BlockRef> stored = new java.util.HashMap<>(); // the same content at two offsets is stored once
        int chunks = 0;
        long bytes = 0, plain = 0;
        for (int i : candidates) {
            BlockRef old = refs[i];
            if (plain + old.plainLength() > budget) break;
            String hex = Bytes.hex(old.id());
            BlockRef again = stored.get(hex);
            if (again == null) {
                byte[] data = read(db, Manifest.chunkOffset(i), old.plainLength());
                if (!Arrays.equals(codec.contentId(data, 0, data.length), old.id())) {
                    throw new ConcurrentCheckpointException("the database file changed while it was being read");
                }
                byte[] sealed = codec.seal(packs.sealingKey(), data, 0, data.length, "block:" + hex, BLOCK_ZSTD_LEVEL);
                again = packs.add(old.id(), sealed, old.plainLength());
                stored.put(hex, again);
                bytes += sealed.length;
                plain += old.plainLength();
                chunks++;
            }
            refs[i] = again;
        }
        if (chunks > 0) {
            Log.info(String.format("snapshot: %d chunks of %d sparse packs stored anew (%.1f MB), so that those packs can go",
                    chunks, sparse.size(), bytes / 1e6));
        }
        return new CopiedForward(chunks, bytes);
    }

    /** The fingerprint function of a repository: derived once per codec (its key is 256 KiB of keystream). */
    private static ChangeFingerprint fingerprintOf(ObjectCodec codec) {
        synchronized (FINGERPRINTS) {
            return FINGERPRINTS.computeIfAbsent(codec, c -> new ChangeFingerprint(
                    c.deriveFromIdKey("duckguard snapshot change fingerprint v1"), Manifest.CHUNK));
        }
    }

    private static final Map<ObjectCodec, ChangeFingerprint> FINGERPRINTS = new java.util.WeakHashMap<>();

    /** Worker threads shared by all snapshots, restores and verifies of this JVM (both cores; reads are mostly I/O). */
    public static final int WORKERS = Math.max(2, Runtime.getRuntime().availableProcessors());
    /** Changed chunks sealed but not yet in a pack: bounds memory at ~QUEUE x 256 KiB. */
    private static final int QUEUE = 16 * WORKERS;
    private static volatile ExecutorService pool;

    public static ExecutorService workers() {
        ExecutorService p = pool;
        if (p == null) {
            synchronized (Snapshotter.class) {
                if (pool == null) {
                    pool = Executors.newFixedThreadPool(WORKERS, io.duckguard.runtime.util.Threads.factory("blocks", true));
                }
                p = pool;
            }
        }
        return p;
    }

    /**
     * One chunk's outcome: {@code unchanged} = the previous snapshot's chunk at this offset (fingerprints match);
     * otherwise its content id, and its sealed bytes unless a block with that id is known.
     */
    private record Chunk(int index, BlockRef unchanged, byte[] id, String hexId, byte[] sealed, int plainLength,
                         byte[] fingerprint, long blockChecksum) {}

    /**
     * Per worker thread: the buffer a chunk is read into. Direct, so a read is one copy (a heap buffer costs two:
     * NIO reads through a direct one) and the fingerprint reads it at full speed; only a changed chunk is copied
     * out to be hashed and sealed.
     */
    private static final ThreadLocal<ByteBuffer> READ_BUFFER = ThreadLocal.withInitial(() -> ByteBuffer.allocateDirect(Manifest.CHUNK));

    /**
     * zstd's fast level -1 for blocks: on the bench's DuckDB blocks it compressed exactly as well as level 1 (ratio
     * 1.317 on changed blocks, 1.095 over the file; DuckDB's own compression leaves little but zero runs) at 3.2x
     * the speed (5.5 vs 1.7 GB/s per core).
     */
    public static final int BLOCK_ZSTD_LEVEL = -1;

    private static final ThreadLocal<byte[]> COPY_BUFFER = ThreadLocal.withInitial(() -> new byte[Manifest.CHUNK]);

    /** Runs on a worker: read, fingerprint, and if changed hash and (if new) seal one chunk. */
    private static Chunk chunk(int index, FileChannel db, long off, int len, ObjectCodec codec, ChangeFingerprint fingerprint,
                               DataKey key, Map<String, BlockRef> known, BlockRef before, byte[] beforeFp)
            throws IOException {
        ByteBuffer buf = READ_BUFFER.get();
        if (buf.capacity() < len) buf = ByteBuffer.allocateDirect(len);
        buf.clear().limit(len);
        readFully(db, buf, off);
        io.duckguard.runtime.util.FaultInjection.snapshotChunk();
        byte[] fp = fingerprint == null ? null : fingerprint.of(buf, len);
        long blockChecksum = len >= 8 ? buf.getLong(0) : 0;
        if (fp != null && beforeFp != null && before.plainLength() == len && Arrays.equals(fp, beforeFp)) {
            return new Chunk(index, before, null, null, null, len, fp, blockChecksum);
        }
        byte[] data = COPY_BUFFER.get(); // the hash and the codec want an array; sealing copies what it keeps
        if (data.length < len) COPY_BUFFER.set(data = new byte[len]);
        buf.get(0, data, 0, len);
        byte[] id = codec.contentId(data, 0, len);
        String hex = Bytes.hex(id);
        byte[] sealed = known.containsKey(hex) ? null : codec.seal(key, data, 0, len, "block:" + hex, BLOCK_ZSTD_LEVEL);
        return new Chunk(index, null, id, hex, sealed, len, fp, blockChecksum);
    }

    private static boolean allDone(List<Future<?>> fs) {
        for (Future<?> f : fs) if (!f.isDone()) return false;
        return true;
    }

    private static byte[] read(FileChannel ch, long off, int len) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(len);
        readFully(ch, b, off);
        return b.array();
    }

    /** Fills {@code b} from {@code off} with positional reads (the held channel's position is never moved). */
    static void readFully(FileChannel ch, ByteBuffer b, long off) throws IOException {
        long p = off;
        while (b.hasRemaining()) {
            int n = ch.read(b, p);
            if (n < 0) throw new ConcurrentCheckpointException("the database file shrank while it was being read");
            p += n;
        }
    }
}
