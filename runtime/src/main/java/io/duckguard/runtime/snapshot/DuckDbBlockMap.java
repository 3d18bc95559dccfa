package io.duckguard.runtime.snapshot;

import io.duckguard.runtime.repository.Manifest;
import io.duckguard.runtime.util.DuckDbChecksum;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.util.BitSet;

/**
 * Which blocks of a DuckDB file DuckDB may write before its next checkpoint, read from the file's active header and
 * its free list: the free blocks, the metadata blocks (DuckDB writes their free 4 KiB sub-blocks in place), and every
 * block at or past the header's block count. Every other block belongs to the checkpoint that header describes, and
 * DuckDB's crash safety rests on never writing such a block until the next header is durable (a crash before it must
 * find the old checkpoint whole). So after at most one more checkpoint, only these blocks can differ, and an
 * incremental snapshot need not read the rest (see {@link Snapshotter}).
 *
 * <p>The layout, from DuckDB's sources (src/storage/single_file_block_manager.cpp, metadata/metadata_manager.cpp) and
 * checked against DuckDB 1.5.6 and 2.0 files by DuckDbBlockMapTest:
 * <ul>
 *   <li>bytes 8-12 "DUCK", 20-28 flags (bit 0: encrypted; such files are not mapped);</li>
 *   <li>database headers at 4096 and 8192: u64 checksum, iteration, meta_block, free_list, block_count,
 *       block_alloc_size; the valid one with the higher iteration is active;</li>
 *   <li>block b at 12288 + b * block_alloc_size: u64 checksum, then data; a metadata block's data is 64 sub-blocks of
 *       floor8((block_alloc_size - 8) / 64) bytes, each starting with the u64 pointer to the next one;</li>
 *   <li>a pointer is block id | sub-block index << 56; the free list stream (from the header's free_list pointer):
 *       u64 n, n x i64 free block; u64 m, m x (i64 block, u32 use count); u64 k, k x (i64 metadata block, u64 free
 *       sub-block mask).</li>
 * </ul>
 * Anything that does not fit (another block size, encryption, a bad checksum, a pointer out of range) is
 * {@link Unmapped}: the caller then reads the whole file, as it would without this map. Immutable.
 */
public final class DuckDbBlockMap {
    private static final int BLOCK_START = Manifest.HEADER_BYTES;
    private static final int BLOCK_HEADER = 8;
    private static final int SUB_BLOCKS = 64;
    private static final long INVALID = -1L;

    /** The file cannot be mapped; the reason says why (for the log). */
    public static final class Unmapped extends Exception {
        Unmapped(String why) {
            super(why, null, false, false);
        }
    }

    private final long iteration;
    private final long blockCount;
    private final BitSet writable;
    private final int freeBlocks;
    private final int metadataBlocks;

    private DuckDbBlockMap(long iteration, long blockCount, BitSet writable, int freeBlocks, int metadataBlocks) {
        this.iteration = iteration;
        this.blockCount = blockCount;
        this.writable = writable;
        this.freeBlocks = freeBlocks;
        this.metadataBlocks = metadataBlocks;
    }

    /** The active header's checkpoint iteration. */
    public long iteration() {
        return iteration;
    }

    /** The active header's block count: blocks at or past it are new to that checkpoint. */
    public long blockCount() {
        return blockCount;
    }

    /** Whether DuckDB may write block {@code block} before its next checkpoint (free, metadata, or past the end). */
    public boolean mayChange(long block) {
        return block >= blockCount || writable.get((int) block);
    }

    public int freeBlocks() {
        return freeBlocks;
    }

    public int metadataBlocks() {
        return metadataBlocks;
    }

    /**
     * Reads the map of the checkpoint the file's active header describes. The file must not be checkpointed meanwhile
     * (the snapshotter compares the header area before and after). Positional reads only: {@code db} may be the
     * channel duckguard holds on a live database.
     */
    public static DuckDbBlockMap read(FileChannel db) throws IOException, Unmapped {
        long size = db.size();
        if (size < BLOCK_START) throw new Unmapped("the file is shorter than DuckDB's header area");
        ByteBuffer head = read(db, 0, BLOCK_START);
        if (head.get(8) != 'D' || head.get(9) != 'U' || head.get(10) != 'C' || head.get(11) != 'K') {
            throw new Unmapped("no DuckDB magic bytes");
        }
        if ((head.getLong(20) & 1) != 0) throw new Unmapped("the database is encrypted");
        long[] active = null;
        for (int at : new int[] {4096, 8192}) {
            if (head.getLong(at) != DuckDbChecksum.of(head, at + 8, 4096 - 8)) continue;
            long[] h = new long[5]; // iteration, meta_block, free_list, block_count, block_alloc_size
            for (int f = 0; f < 5; f++) h[f] = head.getLong(at + 8 + 8 * f);
            if (active == null || h[0] > active[0]) active = h;
        }
        if (active == null) throw new Unmapped("no database header has a valid checksum");
        long iteration = active[0], freeList = active[2], blockCount = active[3], allocSize = active[4];
        if (allocSize != Manifest.CHUNK) throw new Unmapped("block size " + allocSize + ", not " + Manifest.CHUNK);
        // The count may exceed the file by a block DuckDB allocated but never wrote (seen on 1.5.6): it is then free.
        if (blockCount < 0 || blockCount > (size - BLOCK_START) / allocSize + 64) {
            throw new Unmapped("block count " + blockCount + " does not fit the file's " + size + " bytes");
        }
        BitSet writable = new BitSet();
        if (freeList == INVALID) {
            // Only a file that was never checkpointed has no free list (DuckDB reserves one at every checkpoint).
            if (blockCount != 0) throw new Unmapped("no free list, but " + blockCount + " blocks");
            return new DuckDbBlockMap(iteration, 0, writable, 0, 0);
        }
        MetadataStream in = new MetadataStream(db, blockCount, freeList);
        long free = in.count(blockCount);
        for (long i = 0; i < free; i++) writable.set(in.block());
        long multiUse = in.count(blockCount);
        for (long i = 0; i < multiUse; i++) {
            in.block();
            in.skip(4);
        }
        long metadata = in.count(blockCount);
        BitSet metadataBlocks = new BitSet();
        for (int i = 0; i < metadata; i++) {
            metadataBlocks.set(in.block());
            in.skip(8);
        }
        // Their checksums prove the layout read above (block header size, sub-block size), and the chain itself
        // must lie in them: else this is not the free list DuckDB wrote.
        for (int b = metadataBlocks.nextSetBit(0); b >= 0; b = metadataBlocks.nextSetBit(b + 1)) in.checkBlock(b);
        for (int b : in.chainBlocks) {
            if (!metadataBlocks.get(b)) throw new Unmapped("the free list lies in block " + b + ", which is not a metadata block");
        }
        writable.or(metadataBlocks);
        return new DuckDbBlockMap(iteration, blockCount, writable, (int) free, (int) metadata);
    }

    /** The chain of metadata sub-blocks from a pointer, read as one little-endian stream. */
    private static final class MetadataStream {
        private final FileChannel db;
        private final long blockCount;
        private final int subBlockSize = (int) (((Manifest.CHUNK - BLOCK_HEADER) / SUB_BLOCKS) & ~7L);
        private final java.util.Set<Integer> chainBlocks = new java.util.HashSet<>();
        private ByteBuffer current;
        private long next;
        private int hops;

        MetadataStream(FileChannel db, long blockCount, long first) throws IOException, Unmapped {
            this.db = db;
            this.blockCount = blockCount;
            this.next = first;
            advance();
        }

        private void advance() throws IOException, Unmapped {
            if (next == INVALID) throw new Unmapped("the free list ends early");
            long block = next & 0x00FF_FFFF_FFFF_FFFFL;
            int index = (int) (next >>> 56);
            if (block >= blockCount || index >= SUB_BLOCKS) throw new Unmapped("metadata pointer out of range: " + next);
            if (++hops > blockCount * SUB_BLOCKS) throw new Unmapped("the metadata chain loops");
            chainBlocks.add((int) block);
            current = read(db, BLOCK_START + block * Manifest.CHUNK + BLOCK_HEADER + (long) index * subBlockSize, subBlockSize);
            next = current.getLong(0);
            current.position(8);
        }

        private void skip(int n) throws IOException, Unmapped {
            for (int i = 0; i < n; i++) {
                if (!current.hasRemaining()) advance();
                current.get();
            }
        }

        private long u64() throws IOException, Unmapped {
            if (current.remaining() >= 8) return current.getLong();
            long v = 0; // a value may straddle two sub-blocks (MetadataReader::ReadData)
            for (int i = 0; i < 8; i++) {
                if (!current.hasRemaining()) advance();
                v |= (current.get() & 0xFFL) << (8 * i);
            }
            return v;
        }

        long count(long max) throws IOException, Unmapped {
            long n = u64();
            if (n < 0 || n > max) throw new Unmapped("implausible count " + n + " in the free list");
            return n;
        }

        int block() throws IOException, Unmapped {
            long b = u64();
            if (b < 0 || b >= blockCount) throw new Unmapped("block " + b + " in the free list is out of range");
            return (int) b;
        }

        void checkBlock(int block) throws IOException, Unmapped {
            ByteBuffer b = read(db, BLOCK_START + (long) block * Manifest.CHUNK, Manifest.CHUNK);
            if (b.getLong(0) != DuckDbChecksum.of(b, BLOCK_HEADER, Manifest.CHUNK - BLOCK_HEADER)) {
                throw new Unmapped("metadata block " + block + " fails DuckDB's checksum");
            }
        }
    }

    private static ByteBuffer read(FileChannel db, long off, int len) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(len).order(ByteOrder.LITTLE_ENDIAN);
        Snapshotter.readFully(db, b, off);
        return b.clear();
    }
}
