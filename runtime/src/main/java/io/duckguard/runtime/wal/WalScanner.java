package io.duckguard.runtime.wal;

import io.duckguard.runtime.util.Bytes;

/**
 * Finds commit boundaries in DuckDB WAL bytes (duckdb-facts.md section 1).
 *
 * <pre>
 * wal     := header entry*
 * header  := bare serialized object: (u16 field id, value)* 0xFFFF; fields 100 WAL type (varint), 101 version
 *            (varint), 102 db identifier (varint count + count varints, 2.0 / 'latest' files), 103 checkpoint
 *            iteration (varint)
 * entry   := u64 size, u64 checksum, payload[size]; payload starts with field 100 = the entry's WAL type
 * </pre>
 *
 * A transaction is committed where the WAL_FLUSH entry (type 100) that ends it ends. Bytes after the last
 * WAL_FLUSH belong to a commit still being written (DuckDB writes a large commit in several writes). Stateless.
 */
public final class WalScanner {
    public static final int WAL_FLUSH = 100;
    public static final int CHECKPOINT = 99;
    public static final int ROW_GROUP_DATA = 29;
    public static final int ALTER_INFO = 20;
    /** No legitimate entry is this large; a bigger size field means we are not looking at a WAL entry. */
    private static final long MAX_ENTRY = 1L << 33;

    private WalScanner() {}

    /** What a scan found. Offsets are absolute WAL offsets. */
    public static final class Result {
        /** End offset of each complete commit found, ascending; {@code count} entries are valid. */
        public long[] commitEnds = new long[16];
        public int count;
        /** Saw an optimistic-write entry: this WAL refers to blocks outside itself and cannot be replayed onto a copy. */
        public boolean rowGroupData;
        /** An ALTER entry: DuckDB 1.5.6 cannot replay some of them (ALTER on a table with a DEFAULT nextval(...)). */
        public boolean alter;
        /** Reached a flushed CHECKPOINT entry: nothing after it belongs to this WAL epoch's commits; scan stopped. */
        public boolean checkpointMarker;

        void add(long end) {
            if (count == commitEnds.length) commitEnds = java.util.Arrays.copyOf(commitEnds, count * 2);
            commitEnds[count++] = end;
        }

        public long lastCommitEnd(long otherwise) {
            return count == 0 ? otherwise : commitEnds[count - 1];
        }
    }

    /**
     * Scans {@code buf[0..len)}, which holds the WAL from {@code startOffset} on; {@code startOffset} must be 0 or a
     * commit boundary.
     *
     * @throws WalFormatException when the bytes are not a DuckDB WAL as we know it (then nothing is shipped and the
     *                            agent raises the alarm rather than ship something it cannot cut)
     */
    public static Result scan(byte[] buf, int len, long startOffset) throws WalFormatException {
        Result r = new Result();
        int p = 0;
        if (startOffset == 0) {
            int h = headerLength(buf, len);
            if (h < 0) return r; // header not complete yet
            p = h;
        }
        boolean checkpointInGroup = false;
        while (len - p >= 16) {
            long size = Bytes.getLongLE(buf, p);
            if (size < 2 || size > MAX_ENTRY) {
                throw new WalFormatException("implausible WAL entry size " + size + " at offset " + (startOffset + p));
            }
            if (len - p - 16 < size) break; // entry not complete yet
            int payload = p + 16;
            int type;
            try {
                type = entryType(buf, payload, payload + (int) size);
            } catch (WalFormatException e) {
                throw new WalFormatException("WAL entry at offset " + (startOffset + p) + ": " + e.getMessage());
            }
            p = payload + (int) size;
            if (type == WAL_FLUSH) {
                // A CHECKPOINT entry is flushed like a commit but is not one: DuckDB appends it to the old WAL when
                // it checkpoints. It ends the WAL's useful content; a restore must never replay up to it.
                if (checkpointInGroup) {
                    r.checkpointMarker = true;
                    break;
                }
                r.add(startOffset + p);
            } else if (type == ROW_GROUP_DATA) {
                r.rowGroupData = true;
            } else if (type == CHECKPOINT) {
                checkpointInGroup = true;
            } else if (type == ALTER_INFO) {
                r.alter = true;
            }
        }
        return r;
    }

    /** The WAL type of the entry whose payload is {@code buf[payload, end)}: its first field (100). */
    static int entryType(byte[] buf, int payload, int end) throws WalFormatException {
        if ((buf[payload] & 0xff) != 100 || buf[payload + 1] != 0) throw new WalFormatException("does not start with its type");
        return readVarint(buf, payload + 2, end);
    }

    /** Length of the WAL header at the start of {@code buf}, or -1 if it is not all there yet. */
    static int headerLength(byte[] buf, int len) throws WalFormatException {
        int p = 0;
        while (true) {
            if (len - p < 2) return -1;
            int field = (buf[p] & 0xff) | (buf[p + 1] & 0xff) << 8;
            p += 2;
            if (field == 0xffff) return p;
            switch (field) {
                case 100, 101, 103 -> {
                    p = skipVarint(buf, p, len);
                    if (p < 0) return -1;
                }
                case 102 -> {
                    int q = p;
                    long count = 0;
                    int shift = 0;
                    while (true) {
                        if (q >= len) return -1;
                        int b = buf[q++] & 0xff;
                        count |= (long) (b & 0x7f) << shift;
                        shift += 7;
                        if ((b & 0x80) == 0) break;
                    }
                    p = q;
                    for (long i = 0; i < count; i++) {
                        p = skipVarint(buf, p, len);
                        if (p < 0) return -1;
                    }
                }
                default -> throw new WalFormatException("unknown WAL header field " + field
                        + " (a DuckDB version duckguard does not know?)");
            }
        }
    }

    private static int skipVarint(byte[] buf, int p, int len) {
        while (p < len) {
            if ((buf[p++] & 0x80) == 0) return p;
        }
        return -1;
    }

    private static int readVarint(byte[] buf, int p, int end) throws WalFormatException {
        int v = 0;
        int shift = 0;
        while (p < end && shift < 32) {
            int b = buf[p++] & 0xff;
            v |= (b & 0x7f) << shift;
            if ((b & 0x80) == 0) return v;
            shift += 7;
        }
        throw new WalFormatException("bad WAL entry type");
    }

    /** The bytes are not a WAL this version of duckguard understands. */
    public static final class WalFormatException extends Exception {
        public WalFormatException(String m) {
            super(m);
        }
    }
}
