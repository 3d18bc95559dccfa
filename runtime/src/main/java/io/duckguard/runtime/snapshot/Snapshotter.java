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
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.ArrayDeque;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Takes snapshot n: reads the database file through the channel duckguard holds on it (never a new descriptor:
 * invariant 4), chunk by chunk on DuckDB's block grid, and stores only chunks the previous snapshot does not have.
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
        Map<String, BlockRef> known = new ConcurrentHashMap<>(); // read by workers, written by this thread
        if (previous != null) for (BlockRef b : previous.chunks()) known.put(Bytes.hex(b.id()), b);
        ObjectCodec codec = repo.codec();
        MessageDigest fileSha = Bytes.sha256();
        List<BlockRef> chunks = new ArrayList<>();
        long added = 0;
        int newChunks = 0;
        // Pipeline: this thread reads chunks in order (through the held channel) and appends sealed blocks to the
        // packs in order; WORKERS threads hash and seal in between. A bounded window keeps memory at a few MB.
        ExecutorService pool = workers();
        ArrayDeque<Future<Sealed>> window = new ArrayDeque<>();
        try (Packs.Writer packs = new Packs.Writer(repo)) {
            int count = 0;
            for (int i = 0; Manifest.chunkOffset(i) < size; i++) count++;
            for (int i = 0; i < count || !window.isEmpty(); ) {
                if (i < count && window.size() < WINDOW) {
                    long off = Manifest.chunkOffset(i);
                    int len = (int) Math.min(i == 0 ? Manifest.HEADER_BYTES : Manifest.CHUNK, size - off);
                    byte[] data = read(db, off, len);
                    io.duckguard.runtime.util.FaultInjection.snapshotChunk();
                    window.add(pool.submit(() -> seal(codec, packs.sealingKey(), data, known)));
                    i++;
                    continue;
                }
                Sealed sd = await(window.poll());
                BlockRef ref = known.get(sd.hexId);
                if (ref == null) {
                    // Not in the previous snapshot (a worker may also have sealed a duplicate within this one).
                    ref = packs.add(sd.id, sd.sealed, sd.plainLength);
                    known.put(sd.hexId, ref);
                    added += sd.sealed.length;
                    newChunks++;
                }
                chunks.add(ref);
                fileSha.update(sd.id);
            }
            if (db.size() != size || !Arrays.equals(headerSha(db), headerBefore)) {
                throw new ConcurrentCheckpointException("the database file changed while it was being read");
            }
            packs.finish();
        } finally {
            for (Future<Sealed> f : window) f.cancel(true);
        }
        Manifest m = new Manifest(epoch, System.currentTimeMillis(), size, fileSha.digest(), headerBefore, iteration,
                duckdbVersion, reason, chunks);
        Log.info(String.format("snapshot %d (%s): %d chunks, %d new, %.1f MB added, %d ms", epoch, reason,
                chunks.size(), newChunks, added / 1e6, (System.nanoTime() - t0) / 1_000_000));
        return m;
    }

    /** Worker threads shared by all snapshots and restores of this JVM (both cores; the reader is mostly I/O). */
    private static final int WORKERS = Math.max(2, Runtime.getRuntime().availableProcessors());
    private static final int WINDOW = 4 * WORKERS;
    private static volatile ExecutorService pool;

    public static ExecutorService workers() {
        ExecutorService p = pool;
        if (p == null) {
            synchronized (Snapshotter.class) {
                if (pool == null) {
                    java.util.concurrent.atomic.AtomicInteger n = new java.util.concurrent.atomic.AtomicInteger();
                    pool = Executors.newFixedThreadPool(WORKERS, r -> {
                        Thread t = new Thread(() -> {
                            io.duckguard.bootstrap.DuckGuardHooks.markInternalThread();
                            r.run();
                        }, "duckguard-blocks-" + n.incrementAndGet());
                        t.setDaemon(true);
                        t.setUncaughtExceptionHandler((th, e) -> Log.error("thread " + th.getName() + " died", e));
                        return t;
                    });
                }
                p = pool;
            }
        }
        return p;
    }

    /** A hashed chunk; sealed only if the previous snapshot lacks it. */
    private record Sealed(byte[] id, String hexId, byte[] sealed, int plainLength) {}

    private static Sealed seal(ObjectCodec codec, DataKey key, byte[] data, Map<String, BlockRef> known) {
        byte[] id = codec.contentId(data, 0, data.length);
        String hex = Bytes.hex(id);
        byte[] sealed = known.containsKey(hex) ? null : codec.seal(key, data, 0, data.length, "block:" + hex, 1);
        return new Sealed(id, hex, sealed, data.length);
    }

    static <T> T await(Future<T> f) throws IOException {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof IOException io) throw io;
            throw new IOException(e.getCause());
        }
    }

    private static byte[] read(FileChannel ch, long off, int len) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(len);
        readFully(ch, b, off);
        return b.array();
    }

    private static void readFully(FileChannel ch, ByteBuffer b, long off) throws IOException {
        long p = off;
        while (b.hasRemaining()) {
            int n = ch.read(b, p);
            if (n < 0) throw new ConcurrentCheckpointException("the database file shrank while it was being read");
            p += n;
        }
    }
}
