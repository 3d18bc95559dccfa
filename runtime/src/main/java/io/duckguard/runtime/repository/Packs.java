package io.duckguard.runtime.repository;

import io.duckguard.runtime.crypto.CorruptObjectException;
import io.duckguard.runtime.crypto.DataKey;
import io.duckguard.runtime.crypto.ObjectCodec;
import io.duckguard.runtime.util.AtomicFiles;
import io.duckguard.runtime.util.Bytes;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Pack files hold sealed snapshot blocks back to back (like restic's packs), so a snapshot of thousands of blocks
 * costs a handful of fsyncs instead of one per block. Where each block is lives in the manifests, not in the pack.
 * Every pack has its own data key, {@code keys/p-<pack id>}, destroyed with the pack (crypto-shredding).
 */
public final class Packs {
    /** A pack is closed once it passes this size. */
    static final long TARGET_PACK_BYTES = 64L << 20;

    private Packs() {}

    /** The size of a stored pack in bytes, or -1 if it does not exist. */
    public static long size(Repository repo, String pack) {
        try {
            return Files.size(path(repo, pack));
        } catch (IOException e) {
            return -1;
        }
    }

    static Path path(Repository repo, String pack) {
        return repo.packsDir().resolve(pack.substring(0, 2)).resolve(pack);
    }

    /**
     * Reads, authenticates and checks one block: its content id must match what it decrypts to (what verify
     * --read-data adds to the restore path's checks).
     */
    public static byte[] readBlock(Repository repo, BlockRef ref) throws IOException, CorruptObjectException {
        try (Reader r = new Reader(repo)) {
            Reader.Buffers b = new Reader.Buffers();
            return Arrays.copyOf(b.plain, r.readAndCheckId(ref, b));
        }
    }

    /**
     * Reads blocks for a restore into the caller's buffers, keeping each pack open once. Thread-safe: any number of
     * threads may read at once (positional reads on shared channels); each passes its own buffers.
     *
     * <p>Unlike {@link #readBlock} it does not recompute the content id (HMAC-SHA256, a third of a restore's CPU).
     * AES-GCM already authenticates every block together with its object name, which carries that id, so a block
     * that decrypts is the block that was sealed under that id; a manifest pointing at another block fails there.
     * What remains, a block sealed under an id that is not its content's, is a writer bug that {@code verify
     * --read-data} and restore drills check for.
     */
    public static final class Reader implements AutoCloseable {
        private final Repository repo;
        private final Map<String, FileChannel> open = new ConcurrentHashMap<>();

        public Reader(Repository repo) {
            this.repo = repo;
        }

        /** Buffers one thread needs: {@code sealed} and {@code scratch} grow as needed. */
        public static final class Buffers {
            byte[] sealed = new byte[Manifest.CHUNK + 1024];
            byte[] scratch = new byte[Manifest.CHUNK + 1024];
            public final byte[] plain = new byte[Manifest.CHUNK];
        }

        /** Reads, authenticates and decrypts one block into {@code b.plain}; returns its length (= ref.plainLength). */
        public int read(BlockRef ref, Buffers b) throws IOException, CorruptObjectException {
            int n = ref.storedLength();
            if (b.sealed.length < n) b.sealed = new byte[n];
            if (b.scratch.length < n) b.scratch = new byte[n];
            if (ref.plainLength() > b.plain.length) {
                throw new CorruptObjectException(ref.objectName(), "chunk larger than a DuckDB block (" + ref.plainLength() + ")");
            }
            FileChannel ch = channel(ref);
            ByteBuffer buf = ByteBuffer.wrap(b.sealed, 0, n);
            long pos = ref.packOffset();
            while (buf.hasRemaining()) {
                int r = ch.read(buf, pos);
                if (r < 0) throw new CorruptObjectException(ref.objectName() + " in pack " + ref.pack(), "pack is truncated");
                pos += r;
            }
            int got = repo.codec().openInto(b.sealed, 0, n, ref.objectName(), b.plain, b.scratch);
            if (got != ref.plainLength()) {
                throw new CorruptObjectException(ref.objectName(), "decrypts to " + got + " bytes, its manifest entry says "
                        + ref.plainLength());
            }
            return got;
        }

        /** {@link #read}, then the content id recomputed from the plaintext and compared (verify --read-data). */
        public int readAndCheckId(BlockRef ref, Buffers b) throws IOException, CorruptObjectException {
            int n = read(ref, b);
            if (!Arrays.equals(repo.codec().contentId(b.plain, 0, n), ref.id())) {
                throw new CorruptObjectException(ref.objectName(), "content does not match its id");
            }
            return n;
        }

        private FileChannel channel(BlockRef ref) throws IOException, CorruptObjectException {
            FileChannel ch = open.get(ref.pack());
            if (ch != null) return ch;
            try {
                ch = FileChannel.open(path(repo, ref.pack()), StandardOpenOption.READ);
            } catch (NoSuchFileException e) {
                throw new CorruptObjectException(ref.objectName(), "pack " + ref.pack() + " is missing");
            }
            FileChannel raced = open.putIfAbsent(ref.pack(), ch);
            if (raced != null) {
                ch.close();
                return raced;
            }
            return ch;
        }

        @Override
        public void close() throws IOException {
            for (FileChannel ch : open.values()) ch.close();
            open.clear();
        }
    }

    private static java.util.concurrent.ExecutorService syncThread;

    /** One thread, {@code duckguard-pack-sync}, for the fsyncs of full packs of every writer in this JVM. */
    private static synchronized java.util.concurrent.ExecutorService syncThread() {
        if (syncThread == null) {
            syncThread = java.util.concurrent.Executors.newSingleThreadExecutor(
                    io.duckguard.runtime.util.Threads.factory("pack-sync", false));
        }
        return syncThread;
    }

    /** Whether pack writes may bypass the page cache (O_DIRECT); {@code -Dduckguard.pack-direct-io=false} turns it off. */
    static final boolean DIRECT_WRITES = !"false".equals(System.getProperty("duckguard.pack-direct-io"));
    /** O_DIRECT writes go out in pieces of this size (a multiple of any file system block size in use). */
    static final int STAGE_BYTES = 2 << 20;
    /**
     * The O_DIRECT staging buffer of each thread that writes packs (a database's snapshot thread, the CLI's main
     * thread), kept for the thread's life: allocated per snapshot, it would be direct memory in the host's budget
     * that only a GC gives back.
     */
    private static final ThreadLocal<ByteBuffer> STAGE = new ThreadLocal<>();

    /**
     * The file of one pack being written, by the single writer thread. With O_DIRECT (where the file system and JDK
     * allow it) bytes are gathered in an aligned buffer and written in {@link #STAGE_BYTES} pieces; the last piece is
     * padded to the block size and the file then cut to its real length. Why: a pack is written once and read only by
     * a restore or verify, so passing it through the page cache costs CPU for nothing (a copy and a page allocation
     * per 4 KiB; measured in a VM whose free memory returns to the host: 0.20 s for 116 MB instead of 0.04 s) and
     * evicts pages the application uses. Durability is unchanged: the pack is fsynced before it is renamed.
     */
    private static final class PackOutput {
        final FileChannel channel;
        private final ByteBuffer stage; // null: buffered writes
        private final int align;
        private long flushed; // bytes of the file written (a multiple of align while direct)

        PackOutput(FileChannel channel, ByteBuffer stage, int align) {
            this.channel = channel;
            this.stage = stage;
            this.align = align;
        }

        boolean direct() {
            return stage != null;
        }

        void append(byte[] bytes) throws IOException {
            if (stage == null) {
                ByteBuffer b = ByteBuffer.wrap(bytes);
                while (b.hasRemaining()) flushed += channel.write(b, flushed);
                return;
            }
            int at = 0;
            while (at < bytes.length) {
                int n = Math.min(stage.remaining(), bytes.length - at);
                stage.put(bytes, at, n);
                at += n;
                if (!stage.hasRemaining()) writeStage(stage.capacity());
            }
        }

        private void writeStage(int length) throws IOException {
            stage.flip().limit(length);
            long pos = flushed;
            while (stage.hasRemaining()) pos += channel.write(stage, pos);
            flushed = pos;
            stage.clear();
        }

        /** Writes what is staged (padded) and cuts the file to its length; the caller then forces and closes it. */
        void complete() throws IOException {
            if (stage == null || stage.position() == 0) return;
            long size = flushed + stage.position();
            int padded = (stage.position() + align - 1) / align * align;
            while (stage.position() < padded) stage.put((byte) 0);
            writeStage(padded);
            channel.truncate(size);
            flushed = size;
        }
    }

    /**
     * Writes new packs for one snapshot. Single-threaded (callers serialize {@link #add}). Nothing it writes is
     * referenced until {@link #finish} has made every pack durable under its final name; a crash before that
     * leaves only temporary files, which garbage collection removes.
     */
    public static final class Writer implements AutoCloseable {
        /** Blocks sealed once the open pack is this close to full are sealed for the next pack already. */
        private static final long SWITCH_MARGIN = 4L << 20;
        private final Repository repo;
        private final SecureRandom random = new SecureRandom();
        private final List<Path[]> written = new ArrayList<>(); // {tmp, final}
        private final List<String> writtenKeys = new ArrayList<>(); // key records of packs not yet finished
        private final Map<String, DataKey> handedOut = new ConcurrentHashMap<>();
        private PackOutput current;
        private String currentName;
        private DataKey currentKey;
        private String nextName;
        private DataKey nextKey;
        private volatile DataKey sealingKey;
        private long currentSize;
        private long bytesWritten;
        private final List<java.util.concurrent.Future<?>> syncs = new ArrayList<>();
        private static final long WRITEBACK_BYTES = 16L << 20;
        private long writebackAt;
        /** Cleared when O_DIRECT is refused here (file system, JDK): later packs are written through the cache. */
        private boolean tryDirect = DIRECT_WRITES;
        private int align;

        public Writer(Repository repo) throws IOException {
            this.repo = repo;
            prepareNext();
            sealingKey = nextKey;
        }

        /**
         * The data key to seal blocks with now (any thread): the open pack's, or the next pack's. A block sealed
         * with a key other than that of the pack it lands in is re-encrypted by {@link #add} (AES only, no
         * recompression). Null without encryption.
         */
        public DataKey sealingKey() {
            return sealingKey;
        }

        public BlockRef add(byte[] id, byte[] sealed, int plainLength) throws IOException {
            if (current == null || currentSize >= TARGET_PACK_BYTES) roll();
            if (currentKey != null) {
                String k = ObjectCodec.keyIdOf(sealed);
                if (!currentKey.id().equals(k)) {
                    DataKey from = k == null ? null : handedOut.get(k);
                    if (from == null) throw new IllegalStateException("block sealed with data key " + k + ", not one of this pack writer's");
                    try {
                        sealed = repo.codec().rekey(sealed, "block:" + Bytes.hex(id), from, currentKey);
                    } catch (CorruptObjectException e) {
                        throw new IOException(e.getMessage(), e);
                    }
                }
            }
            long off = currentSize;
            current.append(sealed);
            currentSize += sealed.length;
            bytesWritten += sealed.length;
            if (!current.direct() && currentSize - writebackAt >= WRITEBACK_BYTES) {
                // Start writing the pack to disk while it fills (Java has no sync_file_range; an fdatasync on the
                // sync thread does it), so the fsync that makes it durable finds little left to do.
                writebackAt = currentSize;
                FileChannel ch = current.channel;
                syncs.add(syncThread().submit(() -> {
                    if (ch.isOpen()) ch.force(false);
                    return null;
                }));
            }
            if (currentSize >= TARGET_PACK_BYTES - SWITCH_MARGIN) sealingKey = nextKey;
            return new BlockRef(id, currentName, off, sealed.length, plainLength);
        }

        private void prepareNext() throws IOException {
            byte[] n = new byte[16];
            random.nextBytes(n);
            nextName = Bytes.hex(n);
            nextKey = repo.newPackKey(nextName);
            if (nextKey != null) handedOut.put(nextKey.id(), nextKey);
        }

        /** Whether {@code pack} is one of the packs this writer wrote. */
        public boolean wrote(String pack) {
            for (Path[] tf : written) if (tf[1].getFileName().toString().equals(pack)) return true;
            return pack.equals(currentName);
        }

        /** For tests: write through the page cache, as where O_DIRECT is refused. */
        void writeThroughPageCache() {
            tryDirect = false;
        }

        /** For tests: take this as the file system's block size (one O_DIRECT cannot use makes the open refuse it). */
        void assumeFileSystemBlockSize(int bytes) {
            align = bytes;
        }

        /** Whether the pack being written bypasses the page cache. */
        boolean writingDirect() {
            return current != null && current.direct();
        }

        public long bytesWritten() {
            return bytesWritten;
        }

        private void roll() throws IOException {
            closeCurrent();
            currentName = nextName;
            currentKey = nextKey;
            Path fin = path(repo, currentName);
            AtomicFiles.createDirectories(fin.getParent());
            // The pack's key record is durable before any block sealed with it is: no pack outlives its key.
            repo.storePackKey(currentKey, currentName);
            if (currentKey != null) writtenKeys.add(currentKey.id());
            Path tmp = fin.resolveSibling(currentName + AtomicFiles.TMP_MARK + "pack");
            current = openPack(tmp);
            currentSize = 0;
            writebackAt = 0;
            written.add(new Path[] {tmp, fin});
            prepareNext();
            sealingKey = currentKey;
        }

        /**
         * Hands the full pack to the sync thread: its fsync overlaps the hashing and sealing of the next blocks
         * instead of stalling the pipeline (~50 ms per 64 MB pack here). {@link #finish} waits for all of them.
         */
        private void closeCurrent() throws IOException {
            if (current != null) {
                current.complete();
                FileChannel ch = current.channel;
                current = null;
                syncs.add(syncThread().submit(() -> {
                    try (ch) {
                        ch.force(true);
                    }
                    return null;
                }));
            }
        }

        private PackOutput openPack(Path tmp) throws IOException {
            if (tryDirect) {
                try {
                    if (align == 0) align = (int) Files.getFileStore(tmp.getParent()).getBlockSize();
                    if (Integer.bitCount(align) != 1 || STAGE_BYTES % align != 0) throw new IOException("block size " + align);
                    FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE,
                            com.sun.nio.file.ExtendedOpenOption.DIRECT);
                    try {
                        ByteBuffer stage = STAGE.get();
                        if (stage == null || stage.alignmentOffset(0, align) != 0) {
                            STAGE.set(stage = ByteBuffer.allocateDirect(STAGE_BYTES + align).alignedSlice(align));
                        }
                        // Some file systems accept O_DIRECT at open and refuse the writes (EINVAL): try one now,
                        // rather than fail every snapshot halfway through a pack.
                        stage.clear().limit(align);
                        while (stage.hasRemaining()) ch.write(stage, stage.position());
                        ch.truncate(0);
                    } catch (IOException | RuntimeException e) {
                        ch.close();
                        throw e;
                    }
                    return new PackOutput(ch, STAGE.get().clear(), align);
                } catch (IOException | UnsupportedOperationException | LinkageError e) {
                    tryDirect = false;
                    Files.deleteIfExists(tmp);
                    io.duckguard.runtime.util.Log.debug("packs: O_DIRECT refused here (" + e + "); writing through the page cache");
                }
            }
            return new PackOutput(FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE), null, 0);
        }

        private void awaitSyncs() throws IOException {
            IOException failed = null;
            for (java.util.concurrent.Future<?> f : syncs) { // wait for all: their channels must be closed
                try {
                    io.duckguard.runtime.util.Futures.await(f);
                } catch (IOException e) {
                    if (failed == null) failed = e;
                }
            }
            syncs.clear();
            if (failed != null) throw failed;
        }

        /** Makes every pack durable under its final name. */
        public void finish() throws IOException {
            closeCurrent();
            awaitSyncs();
            java.util.Set<Path> dirs = new java.util.HashSet<>();
            for (Path[] tf : written) {
                Files.move(tf[0], tf[1], StandardCopyOption.ATOMIC_MOVE);
                dirs.add(tf[1].getParent());
            }
            for (Path d : dirs) AtomicFiles.fsyncDirectory(d);
            written.clear();
            writtenKeys.clear();
        }

        @Override
        public void close() throws IOException {
            if (current != null) current.channel.close();
            current = null;
            try {
                awaitSyncs(); // their channels are closed before the files go
            } catch (IOException ignored) {
                // the snapshot failed already; its packs are removed below
            }
            for (Path[] tf : written) Files.deleteIfExists(tf[0]); // an unfinished snapshot leaves nothing behind
            written.clear();
            if (repo.keys() != null) for (String k : writtenKeys) repo.keys().destroy(k);
            writtenKeys.clear();
        }
    }
}
