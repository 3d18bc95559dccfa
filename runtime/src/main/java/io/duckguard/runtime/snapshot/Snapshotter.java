package io.duckguard.runtime.snapshot;

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
        Map<String, BlockRef> known = new HashMap<>();
        if (previous != null) for (BlockRef b : previous.chunks()) known.put(Bytes.hex(b.id()), b);
        ObjectCodec codec = repo.codec();
        MessageDigest fileSha = Bytes.sha256();
        List<BlockRef> chunks = new ArrayList<>();
        long added = 0;
        int newChunks = 0;
        try (Packs.Writer packs = new Packs.Writer(repo)) {
            ByteBuffer buf = ByteBuffer.allocate(Manifest.CHUNK);
            for (int i = 0; Manifest.chunkOffset(i) < size; i++) {
                long off = Manifest.chunkOffset(i);
                int len = (int) Math.min(i == 0 ? Manifest.HEADER_BYTES : Manifest.CHUNK, size - off);
                buf.clear().limit(len);
                readFully(db, buf, off);
                io.duckguard.runtime.util.FaultInjection.snapshotChunk();
                byte[] data = buf.array();
                fileSha.update(data, 0, len);
                byte[] id = codec.contentId(data, 0, len);
                BlockRef ref = known.get(Bytes.hex(id));
                if (ref == null) {
                    String name = "block:" + Bytes.hex(id);
                    byte[] sealed = codec.seal(data, 0, len, name);
                    ref = packs.add(id, sealed, len);
                    known.put(Bytes.hex(id), ref);
                    added += sealed.length;
                    newChunks++;
                }
                chunks.add(ref);
            }
            if (db.size() != size || !Arrays.equals(headerSha(db), headerBefore)) {
                throw new ConcurrentCheckpointException("the database file changed while it was being read");
            }
            packs.finish();
        }
        Manifest m = new Manifest(epoch, System.currentTimeMillis(), size, fileSha.digest(), headerBefore, iteration,
                duckdbVersion, reason, chunks);
        Log.info(String.format("snapshot %d (%s): %d chunks, %d new, %.1f MB added, %d ms", epoch, reason,
                chunks.size(), newChunks, added / 1e6, (System.nanoTime() - t0) / 1_000_000));
        return m;
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
