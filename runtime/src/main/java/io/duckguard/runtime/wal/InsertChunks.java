package io.duckguard.runtime.wal;

import static io.duckguard.runtime.wal.WalMerger.field;
import static io.duckguard.runtime.wal.WalMerger.varint;

import io.duckguard.runtime.util.Bytes;
import io.duckguard.runtime.util.DuckDbChecksum;
import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Joins the INSERT_TUPLE entries of a merged run into entries of up to 2,048 rows, as DuckDB writes one
 * transaction's inserts. DuckDB replays every WAL entry on its own, ~14 us each whatever its size: the 50,000
 * one-row inserts of the benchmark's 100k commits took ~0.7 s to replay, the same rows in 25 entries 0.03 s
 * (measured on its 1 GB database). Only the chunk's framing is rewritten; every value's bytes are copied.
 *
 * <p>The layout read (DuckDB's BinarySerializer: u16 field ids, LEB128 varints, blobs as varint length + bytes,
 * objects ending in {@code ff ff}), the same in 1.5.6 and 2.0 except for strings:
 * <pre>
 * entry   := 64 00 1a (type INSERT_TUPLE)  65 00 chunk  ff ff
 * chunk   := 64 00 rows  65 00 types  66 00 ncols column*  ff ff
 * types   := ntypes (64 00 type-id [65 00 01 64 00 info-type (c8 00 width c9 00 scale)? ff ff] ff ff)*
 * column  := 64 00 has-validity [65 00 mask-blob] data ff ff
 * data    := 66 00 blob                                  fixed-size values (rows * width bytes)
 *          | 66 00 rows (len bytes)*                     strings, a list (1.5.6 files)
 *          | 6b 00 total 6c 00 lengths-blob 6d 00 blob   strings, u32 lengths and their bytes (2.0 files)
 * </pre>
 * Anything else (nested or other types, a compressed vector, a type with other details) is not parsed, and the
 * entry is kept as DuckDB wrote it. Chunks are joined only when their types are the same bytes.
 */
final class InsertChunks {
    static final int MAX_ROWS = 2048; // DuckDB's STANDARD_VECTOR_SIZE: what its own insert entries hold at most

    private InsertChunks() {}

    /** One parsed INSERT_TUPLE entry: the bytes of its whole entry and where its parts are. */
    static final class Chunk {
        final byte[] w;
        final int entryStart; // the entry's 16-byte header
        final int entryEnd;
        final int rows;
        final int typesStart; // the types' count varint
        final int typesEnd;
        final Column[] columns;

        Chunk(byte[] w, int entryStart, int entryEnd, int rows, int typesStart, int typesEnd, Column[] columns) {
            this.w = w;
            this.entryStart = entryStart;
            this.entryEnd = entryEnd;
            this.rows = rows;
            this.typesStart = typesStart;
            this.typesEnd = typesEnd;
            this.columns = columns;
        }

        boolean sameTypes(Chunk o) {
            if (!Arrays.equals(w, typesStart, typesEnd, o.w, o.typesStart, o.typesEnd)) return false;
            for (int i = 0; i < columns.length; i++) if (columns[i].kind() != o.columns[i].kind()) return false;
            return true;
        }
    }

    private static final int FIXED = 0;
    private static final int STRING_LIST = 1;
    private static final int STRING_BLOBS = 2;

    /** A column's parts: validity mask (or -1), and its data region(s) in the WAL. */
    record Column(int kind, int maskStart, int dataStart, int dataEnd, int lengthsStart, int lengthsEnd) {}

    /**
     * The INSERT_TUPLE entry at {@code [entryStart, entryEnd)} (16-byte header, then the payload), or null when its
     * layout is not the one above.
     */
    static Chunk parse(byte[] w, int entryStart, int entryEnd) {
        int[] pos = {entryStart + 16 + 3}; // field 100 = 26 checked by the caller
        int end = entryEnd;
        if (!field(w, pos, end, 101) || !field(w, pos, end, 100)) return null;
        long rows = varint(w, pos, end);
        if (rows < 1 || rows > MAX_ROWS || !field(w, pos, end, 101)) return null;
        int typesStart = pos[0];
        long n = varint(w, pos, end);
        if (n < 1 || n > 4096) return null;
        int[] kinds = new int[(int) n];
        for (int i = 0; i < n; i++) {
            kinds[i] = typeKind(w, pos, end);
            if (kinds[i] < 0) return null;
        }
        int typesEnd = pos[0];
        if (!field(w, pos, end, 102) || varint(w, pos, end) != n) return null;
        Column[] cols = new Column[(int) n];
        for (int i = 0; i < n; i++) {
            cols[i] = column(w, pos, end, kinds[i], (int) rows);
            if (cols[i] == null) return null;
        }
        if (!endOf(w, pos, end) || !endOf(w, pos, end) || pos[0] != end) return null;
        return new Chunk(w, entryStart, entryEnd, (int) rows, typesStart, typesEnd, cols);
    }

    /** FIXED or a string kind for a type this class can join, else -1; reads the type object. */
    private static int typeKind(byte[] w, int[] pos, int end) {
        if (!field(w, pos, end, 100)) return -1;
        long id = varint(w, pos, end);
        if (field(w, pos, end, 101)) { // type details: only DECIMAL's width and scale
            if (id != 21 || pos[0] >= end || w[pos[0]++] != 1 || !field(w, pos, end, 100) || varint(w, pos, end) < 0) return -1;
            while (!endOf(w, pos, end)) {
                if (!(field(w, pos, end, 200) || field(w, pos, end, 201)) || varint(w, pos, end) < 0) return -1;
            }
        }
        if (!endOf(w, pos, end)) return -1;
        if (id == 25 || id == 26) return STRING_LIST; // VARCHAR, BLOB (refined by the column's fields)
        boolean fixed = (id >= 10 && id <= 23) || (id >= 27 && id <= 32) || id == 34 || id == 49 || id == 50 || id == 54;
        return fixed ? FIXED : -1;
    }

    private static Column column(byte[] w, int[] pos, int end, int kind, int rows) {
        if (!field(w, pos, end, 100) || pos[0] >= end) return null;
        int hasMask = w[pos[0]++];
        int mask = -1;
        if (hasMask == 1) {
            if (!field(w, pos, end, 101) || varint(w, pos, end) != maskBytes(rows)) return null;
            mask = pos[0];
            pos[0] += maskBytes(rows);
        } else if (hasMask != 0) {
            return null;
        }
        Column c;
        if (kind == FIXED) {
            if (!field(w, pos, end, 102)) return null;
            long len = varint(w, pos, end);
            if (len < rows || len % rows != 0 || len / rows > 16 || len > end - pos[0]) return null;
            c = new Column(FIXED, mask, pos[0], pos[0] + (int) len, 0, 0);
            pos[0] += (int) len;
        } else if (field(w, pos, end, 102)) {
            if (varint(w, pos, end) != rows) return null;
            int start = pos[0];
            for (int i = 0; i < rows; i++) {
                long len = varint(w, pos, end);
                if (len < 0 || len > end - pos[0]) return null;
                pos[0] += (int) len;
            }
            c = new Column(STRING_LIST, mask, start, pos[0], 0, 0);
        } else if (field(w, pos, end, 107)) {
            long total = varint(w, pos, end);
            if (total < 0 || !field(w, pos, end, 108) || varint(w, pos, end) != 4L * rows || 4L * rows > end - pos[0]) return null;
            int lengths = pos[0];
            long sum = 0;
            for (int i = 0; i < rows; i++) sum += Integer.toUnsignedLong(Bytes.getIntLE(w, lengths + 4 * i));
            pos[0] += 4 * rows;
            if (sum != total || !field(w, pos, end, 109) || varint(w, pos, end) != total || total > end - pos[0]) return null;
            c = new Column(STRING_BLOBS, mask, pos[0], pos[0] + (int) total, lengths, lengths + 4 * rows);
            pos[0] += (int) total;
        } else {
            return null;
        }
        return endOf(w, pos, end) ? c : null;
    }

    private static int maskBytes(int rows) {
        return (rows + 63) / 64 * 8;
    }

    /**
     * Writes {@code chunks} (of one table, in order, all of the same types) as INSERT_TUPLE entries of at most
     * {@link #MAX_ROWS} rows; a chunk that joins no other is copied as it was.
     *
     * @return how many entries were written
     */
    static int write(List<Chunk> chunks, ByteArrayOutputStream out) {
        int entries = 0;
        int i = 0;
        while (i < chunks.size()) {
            int j = i + 1;
            int rows = chunks.get(i).rows;
            while (j < chunks.size() && rows + chunks.get(j).rows <= MAX_ROWS && chunks.get(j).sameTypes(chunks.get(i))) {
                rows += chunks.get(j).rows;
                j++;
            }
            if (j == i + 1) {
                Chunk c = chunks.get(i);
                out.write(c.w, c.entryStart, c.entryEnd - c.entryStart);
            } else {
                writeEntry(out, chunks.subList(i, j), rows);
            }
            entries++;
            i = j;
        }
        return entries;
    }

    private static void writeEntry(ByteArrayOutputStream out, List<Chunk> group, int rows) {
        Chunk first = group.get(0);
        ByteArrayOutputStream p = new ByteArrayOutputStream(64 + group.size() * (first.entryEnd - first.entryStart));
        p.write(0x64); p.write(0); p.write(WalMerger.INSERT_TUPLE);
        p.write(0x65); p.write(0);
        p.write(0x64); p.write(0); writeVarint(p, rows);
        p.write(0x65); p.write(0); p.write(first.w, first.typesStart, first.typesEnd - first.typesStart);
        p.write(0x66); p.write(0); writeVarint(p, first.columns.length);
        for (int col = 0; col < first.columns.length; col++) {
            boolean anyMask = false;
            for (Chunk c : group) anyMask |= c.columns[col].maskStart() >= 0;
            p.write(0x64); p.write(0); p.write(anyMask ? 1 : 0);
            if (anyMask) {
                byte[] mask = new byte[maskBytes(rows)];
                Arrays.fill(mask, (byte) 0xff); // as DuckDB writes it: bits past the last row set
                int at = 0;
                for (Chunk c : group) {
                    int m = c.columns[col].maskStart();
                    if (m >= 0) {
                        for (int r = 0; r < c.rows; r++) {
                            if ((c.w[m + (r >>> 3)] & (1 << (r & 7))) == 0) mask[(at + r) >>> 3] &= (byte) ~(1 << ((at + r) & 7));
                        }
                    }
                    at += c.rows;
                }
                p.write(0x65); p.write(0); writeVarint(p, mask.length); p.write(mask, 0, mask.length);
            }
            int kind = first.columns[col].kind();
            long total = 0;
            for (Chunk c : group) total += c.columns[col].dataEnd() - c.columns[col].dataStart();
            if (kind == FIXED) {
                p.write(0x66); p.write(0); writeVarint(p, total);
            } else if (kind == STRING_LIST) {
                p.write(0x66); p.write(0); writeVarint(p, rows);
            } else {
                p.write(0x6b); p.write(0); writeVarint(p, total);
                p.write(0x6c); p.write(0); writeVarint(p, 4L * rows);
                for (Chunk c : group) {
                    Column cc = c.columns[col];
                    p.write(c.w, cc.lengthsStart(), cc.lengthsEnd() - cc.lengthsStart());
                }
                p.write(0x6d); p.write(0); writeVarint(p, total);
            }
            for (Chunk c : group) {
                Column cc = c.columns[col];
                p.write(c.w, cc.dataStart(), cc.dataEnd() - cc.dataStart());
            }
            p.write(0xff); p.write(0xff);
        }
        p.write(0xff); p.write(0xff); // the chunk
        p.write(0xff); p.write(0xff); // the entry
        byte[] payload = p.toByteArray();
        byte[] head = new byte[16];
        Bytes.putLongLE(head, 0, payload.length);
        Bytes.putLongLE(head, 8, DuckDbChecksum.of(payload, 0, payload.length));
        out.write(head, 0, 16);
        out.write(payload, 0, payload.length);
    }

    private static void writeVarint(ByteArrayOutputStream p, long v) {
        do {
            int x = (int) (v & 0x7f);
            v >>>= 7;
            p.write(v != 0 ? x | 0x80 : x);
        } while (v != 0);
    }

    private static boolean endOf(byte[] b, int[] pos, int end) {
        int p = pos[0];
        if (p + 2 > end || b[p] != (byte) 0xff || b[p + 1] != (byte) 0xff) return false;
        pos[0] = p + 2;
        return true;
    }
}
