package io.duckguard.runtime.wal;

import io.duckguard.runtime.util.Bytes;
import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Rewrites a WAL, cut at a commit boundary, so that runs of small commits replay as one transaction each. DuckDB
 * replays a WAL commit by commit, and pays ~100 us per commit whatever its size: 100,000 small commits took ~10 s
 * to replay here, the same changes as one transaction ~1.8 s (measured on the benchmark's 1 GB database). The
 * rewrite drops the WAL_FLUSH entries between the commits of a run and the USE_TABLE entries that name the table
 * already in effect, and joins the run's INSERT_TUPLE entries per table ({@link InsertChunks}: DuckDB also pays per
 * entry); every other entry is byte for byte what DuckDB wrote, with its own checksum.
 *
 * <p>When one transaction is not the same as the commits in a row, a run ends before the commit:
 * <ul>
 *   <li>an UPDATE or DELETE that may name a row inserted earlier in the run: WAL updates and deletes name rows
 *       by row id, and a row an earlier commit of the run inserted is not committed yet inside the merged
 *       transaction (it sits in transaction-local storage under another id). Tables are told apart by their
 *       USE_TABLE entries. Within an epoch row ids only grow (they are renumbered only by a checkpoint), so a row
 *       id some earlier UPDATE or DELETE named is proof that the table already had more rows than that: an update
 *       whose row ids are all below the largest row id named before for its table cannot touch a row inserted
 *       since, and may join. Anything that cannot be read (table, row ids) counts as possibly touching;</li>
 *   <li>any entry other than USE_TABLE, INSERT, DELETE, UPDATE and SEQUENCE_VALUE (catalog changes, optimistic
 *       writes, entry types this version does not know): such a commit replays alone, and unless the entry is one
 *       that changes no row count ({@link #ROW_COUNT_NEUTRAL}) the restore replays the original WAL.</li>
 * </ul>
 * Sequence values replay as "at least this value", so several in one transaction end where the last one does.
 * One effect can still differ: a unique key deleted and inserted again within one run may trip DuckDB's eager
 * constraint check. The restore then replays the original WAL instead. Stateless.
 */
public final class WalMerger {
    static final int SEQUENCE_VALUE = 10;
    static final int USE_TABLE = 25;
    static final int INSERT_TUPLE = 26;
    static final int DELETE_TUPLE = 27;
    static final int UPDATE_TUPLE = 28;

    private WalMerger() {}

    /**
     * The rewritten WAL, how many transactions DuckDB will replay from it, and the change in row count per table
     * it makes (inserted minus deleted rows; table = name parts joined by NUL). {@code rowDelta} is null when it
     * cannot be known (a table or count not read, or a commit that replays alone, such as DDL): the restore then
     * replays the original WAL, because the row counts are how it checks that DuckDB replayed a merged WAL to
     * its end (DuckDB 1.5.6 stops replaying silently at an error inside a transaction, keeping the earlier ones).
     */
    public record Merged(byte[] wal, int transactions, int commits, Map<String, Long> rowDelta, int insertsJoined) {}

    /**
     * @param wal {@code wal[0, len)}: a whole WAL from its header, ending exactly at a commit boundary (its framing
     *            checked by {@link WalScanner} first)
     */
    public static Merged merge(byte[] wal, int len) throws WalScanner.WalFormatException {
        return merge(wal, len, true);
    }

    /** {@code cutBeforeRowIdUse} false only in tests: it shows what goes wrong without that rule. */
    static Merged merge(byte[] wal, int len, boolean cutBeforeRowIdUse) throws WalScanner.WalFormatException {
        int header = WalScanner.headerLength(wal, len);
        if (header < 0) throw new WalScanner.WalFormatException("incomplete WAL header");
        ByteArrayOutputStream out = new ByteArrayOutputStream(len);
        out.write(wal, 0, header);
        RunWriter run = new RunWriter(out);
        int transactions = 0;
        int commits = 0;
        boolean runOpen = false; // commits written since the last WAL_FLUSH written
        Set<String> runInserted = new HashSet<>(); // tables the run has inserted into
        int flushStart = 0; // the WAL_FLUSH entry of the run's last commit: written to close the run
        int flushEnd = 0;
        int commitStart = header;
        boolean commitMergeable = true;
        Set<String> commitInserted = new HashSet<>();
        Map<String, Long> commitModified = new HashMap<>(); // table -> largest row id updated/deleted (UNKNOWN_ROW)
        Map<String, Long> rowsSeen = new HashMap<>(); // table -> 1 + largest row id any earlier commit named
        Map<String, Long> rowDelta = new HashMap<>(); // null once it cannot be known
        String table = ANY_TABLE;
        String lastTable = ANY_TABLE;
        int lastUseStart = 0;
        int lastUseEnd = 0;
        int p = header;
        while (p < len) {
            if (len - p < 16) throw new WalScanner.WalFormatException("WAL ends inside an entry header at " + p);
            long size = Bytes.getLongLE(wal, p);
            if (size < 2 || size > len - p - 16) throw new WalScanner.WalFormatException("bad entry size at " + p);
            int payload = p + 16;
            int end = payload + (int) size;
            int type = WalScanner.entryType(wal, payload, end);
            if (type != WalScanner.WAL_FLUSH) {
                switch (type) {
                    case USE_TABLE -> {
                        // DuckDB names the table anew in every commit: decode a name only when the entry differs
                        if (end - payload != lastUseEnd - lastUseStart || !Arrays.equals(wal, payload, end, wal, lastUseStart, lastUseEnd)) {
                            lastTable = tableOf(wal, payload, end);
                            lastUseStart = payload;
                            lastUseEnd = end;
                        }
                        table = lastTable;
                    }
                    case INSERT_TUPLE -> {
                        commitInserted.add(table);
                        long n = rowCount(wal, payload, end, type);
                        if (n < 0 || table.equals(ANY_TABLE)) rowDelta = null;
                        else if (rowDelta != null) rowDelta.merge(table, n, Long::sum);
                    }
                    case UPDATE_TUPLE, DELETE_TUPLE -> {
                        long max = maxRowId(wal, payload, end, type);
                        commitModified.merge(table, max < 0 ? UNKNOWN_ROW : max, Math::max);
                        if (type == DELETE_TUPLE) {
                            long n = rowCount(wal, payload, end, type);
                            if (n < 0 || table.equals(ANY_TABLE)) rowDelta = null;
                            else if (rowDelta != null) rowDelta.merge(table, -n, Long::sum);
                        } else if (table.equals(ANY_TABLE)) {
                            rowDelta = null;
                        }
                    }
                    case SEQUENCE_VALUE -> { }
                    default -> {
                        commitMergeable = false;
                        if (!ROW_COUNT_NEUTRAL.contains(type)) rowDelta = null;
                    }
                }
                p = end;
                continue;
            }
            // One commit: its entries are [commitStart, p), its WAL_FLUSH entry [p, end).
            commits++;
            boolean joins = commitMergeable && !(cutBeforeRowIdUse && mayTouchNewRows(runInserted, commitModified, rowsSeen));
            for (Map.Entry<String, Long> e : commitModified.entrySet()) {
                if (e.getValue() != UNKNOWN_ROW) rowsSeen.merge(e.getKey(), e.getValue() + 1, Math::max);
            }
            if (runOpen && !joins) {
                run.close(wal, flushStart, flushEnd);
                transactions++;
                runOpen = false;
                runInserted.clear();
            }
            if (commitMergeable) {
                run.add(wal, commitStart, p);
                runOpen = true;
                runInserted.addAll(commitInserted);
                flushStart = p;
                flushEnd = end;
            } else {
                out.write(wal, commitStart, end - commitStart); // replays alone
                transactions++;
            }
            p = end;
            commitStart = end;
            commitMergeable = true;
            commitInserted.clear();
            commitModified.clear();
            table = ANY_TABLE;
        }
        if (commitStart != len) throw new WalScanner.WalFormatException("WAL does not end at a commit boundary");
        if (runOpen) {
            run.close(wal, flushStart, flushEnd);
            transactions++;
        }
        return new Merged(out.toByteArray(), transactions, commits, rowDelta, run.insertsJoined);
    }

    /**
     * Writes the commits of one run as one transaction: its INSERT_TUPLE entries are held back per table and
     * written just before the run's WAL_FLUSH, joined into entries of up to 2,048 rows ({@link InsertChunks}); a
     * USE_TABLE entry is written only before an entry that needs it, and only when it names another table than the
     * one in effect. Moving a run's inserts after its updates and deletes is what the run's rule already allows: no
     * update or delete of the run names a row the run inserted, and each table's inserts keep their order (and so
     * their row ids). An insert entry that cannot be parsed is written in place, after the held ones of its table.
     */
    private static final class RunWriter {
        private final ByteArrayOutputStream out;
        /** Each table's held inserts, in the order first seen (a run touches a few tables: a list will do). */
        private final List<Held> held = new ArrayList<>();
        private byte[] w; // the WAL all ranges below are in
        private int currentStart = -1; // the USE_TABLE entry read last in the run's own entries, -1: none yet
        private int currentEnd;
        private int writtenStart = -1; // the USE_TABLE entry in effect in what was written, -1 at a transaction's start
        private int writtenEnd;
        int insertsJoined;

        /** One table's held inserts, and the USE_TABLE entry that names it. */
        private record Held(int useStart, int useEnd, List<InsertChunks.Chunk> chunks) {}

        RunWriter(ByteArrayOutputStream out) {
            this.out = out;
        }

        /** The entries {@code [from, to)} of one commit, without its WAL_FLUSH. */
        void add(byte[] w, int from, int to) throws WalScanner.WalFormatException {
            this.w = w;
            int p = from;
            while (p < to) {
                int end = p + 16 + (int) Bytes.getLongLE(w, p);
                int type = WalScanner.entryType(w, p + 16, end);
                if (type == USE_TABLE) {
                    currentStart = p;
                    currentEnd = end;
                } else if (type == SEQUENCE_VALUE) {
                    out.write(w, p, end - p);
                } else {
                    InsertChunks.Chunk c = type == INSERT_TUPLE && currentStart >= 0 ? InsertChunks.parse(w, p, end) : null;
                    if (c != null) {
                        Held h = heldFor(currentStart, currentEnd);
                        if (h == null) held.add(h = new Held(currentStart, currentEnd, new ArrayList<>()));
                        h.chunks().add(c);
                    } else {
                        if (currentStart >= 0) {
                            Held h = type == INSERT_TUPLE ? heldFor(currentStart, currentEnd) : null; // keeps the table's insert order
                            if (h != null) {
                                held.remove(h);
                                writeHeld(h);
                            }
                            use(currentStart, currentEnd);
                        }
                        out.write(w, p, end - p);
                    }
                }
                p = end;
            }
            currentStart = -1; // every commit names its tables anew
        }

        /** Ends the run with {@code [flushStart, flushEnd)}, its last commit's WAL_FLUSH. */
        void close(byte[] w, int flushStart, int flushEnd) {
            for (Held h : held) writeHeld(h);
            held.clear();
            out.write(w, flushStart, flushEnd - flushStart);
            writtenStart = -1;
        }

        private Held heldFor(int useStart, int useEnd) {
            for (Held h : held) if (sameEntry(h.useStart(), h.useEnd(), useStart, useEnd)) return h;
            return null;
        }

        private void writeHeld(Held h) {
            use(h.useStart(), h.useEnd());
            int entries = InsertChunks.write(h.chunks(), out);
            insertsJoined += h.chunks().size() - entries;
        }

        private void use(int start, int end) {
            if (writtenStart >= 0 && sameEntry(start, end, writtenStart, writtenEnd)) return;
            out.write(w, start, end - start);
            writtenStart = start;
            writtenEnd = end;
        }

        /** Two USE_TABLE entries with the same payload name the same table (the 16-byte headers hold its checksum). */
        private boolean sameEntry(int aStart, int aEnd, int bStart, int bEnd) {
            return aEnd - aStart == bEnd - bStart && Arrays.equals(w, aStart + 16, aEnd, w, bStart + 16, bEnd);
        }
    }

    /**
     * Catalog entries that change no table's rows, by DuckDB's WALType number (the same in 1.5.6 and 2.0): CREATE
     * SCHEMA 3, CREATE/DROP VIEW 5/6, SEQUENCE 8/9, MACRO 11/12, TYPE 13/14, TABLE MACRO 21/22, INDEX 23/24. Their
     * commits replay alone, exactly as DuckDB wrote them, and the row counts that prove a merged replay complete stay
     * known (an app that creates an index while it trades still gets its replay merged). Tables created, dropped,
     * altered or filled by other means (CREATE TABLE AS, DROP SCHEMA, ALTER, optimistic writes) leave them unknown.
     */
    private static final Set<Integer> ROW_COUNT_NEUTRAL = Set.of(3, 5, 6, 8, 9, 11, 12, 13, 14, 21, 22, 23, 24);

    /** Stands for a table that could not be told: it conflicts with every table. */
    private static final String ANY_TABLE = "";

    /** An updated or deleted row id that could not be read: it may be any row. */
    private static final long UNKNOWN_ROW = Long.MAX_VALUE;

    /** Whether the commit's updates and deletes may name a row the run inserted (see the class comment). */
    private static boolean mayTouchNewRows(Set<String> runInserted, Map<String, Long> modified, Map<String, Long> rowsSeen) {
        if (runInserted.isEmpty() || modified.isEmpty()) return false;
        for (Map.Entry<String, Long> e : modified.entrySet()) {
            String t = e.getKey();
            if (t.equals(ANY_TABLE)) return true;
            if (!runInserted.contains(t) && !runInserted.contains(ANY_TABLE)) continue;
            if (runInserted.contains(ANY_TABLE)) return true;
            if (e.getValue() >= rowsSeen.getOrDefault(t, 0L)) return true;
        }
        return false;
    }

    /**
     * The largest row id an UPDATE_TUPLE or DELETE_TUPLE entry names, or -1 if its layout is not the one expected.
     * Both versions write: field 100 type; for an update field 101 the column path (varint count, varints) and
     * field 102 the chunk, for a delete field 101 the chunk; the chunk starts with field 100 = its row count n and
     * ends with the row-id vector: {@code 64 00 00} (flat), {@code 66 00 varint(8n)} and n little-endian longs,
     * then {@code ff ff} ending the vector, the chunk and the entry.
     */
    static long maxRowId(byte[] w, int payload, int end, int type) {
        int[] pos = {payload + 3};
        if (!field(w, pos, end, 101)) return -1;
        if (type == UPDATE_TUPLE) {
            long path = varint(w, pos, end);
            if (path < 1 || path > 64) return -1;
            for (int i = 0; i < path; i++) if (varint(w, pos, end) < 0) return -1;
            if (!field(w, pos, end, 102)) return -1;
        }
        if (!field(w, pos, end, 100)) return -1;
        long rows = varint(w, pos, end);
        if (rows < 1 || rows > (end - pos[0]) / 8) return -1;
        int dataLen = (int) rows * 8;
        int dataStart = end - 6 - dataLen;
        for (int k = end - 6; k < end; k++) if (w[k] != (byte) 0xff) return -1;
        int lenBytes = 1;
        for (long v = dataLen >>> 7; v != 0; v >>>= 7) lenBytes++;
        int head = dataStart - lenBytes - 5; // 64 00 00 66 00
        if (head < pos[0]) return -1;
        if (w[head] != 0x64 || w[head + 1] != 0 || w[head + 2] != 0 || w[head + 3] != 0x66 || w[head + 4] != 0) return -1;
        int[] at = {head + 5};
        if (varint(w, at, dataStart) != dataLen || at[0] != dataStart) return -1;
        long max = -1;
        for (int k = dataStart; k < end - 6; k += 8) {
            long id = Bytes.getLongLE(w, k);
            if (id < 0) return -1;
            max = Math.max(max, id);
        }
        return max;
    }

    /** The row count of an INSERT_TUPLE's or DELETE_TUPLE's chunk (its field 101, whose field 100 is the count), or -1. */
    static long rowCount(byte[] w, int payload, int end, int type) {
        int[] pos = {payload + 3};
        if (!field(w, pos, end, 101) || !field(w, pos, end, 100)) return -1;
        return varint(w, pos, end);
    }

    /**
     * The table a USE_TABLE entry names, as its name parts joined by NUL; anything unexpected gives
     * {@link #ANY_TABLE}. After field 100 (the type), DuckDB 1.5.6 writes field 101 schema and 102 table (strings:
     * varint length and UTF-8 bytes); 2.0 writes field 103, an object whose field 100 is the list of name parts
     * (varint count, then the strings).
     */
    static String tableOf(byte[] wal, int payload, int end) {
        int[] pos = {payload + 3}; // field 100 (2 bytes) and the type 25 (one varint byte)
        StringBuilder name = new StringBuilder();
        if (field(wal, pos, end, 101)) {
            String schema = string(wal, pos, end);
            if (schema == null || !field(wal, pos, end, 102)) return ANY_TABLE;
            String table = string(wal, pos, end);
            return table == null ? ANY_TABLE : schema + "\0" + table;
        }
        if (field(wal, pos, end, 103) && field(wal, pos, end, 100)) {
            long parts = varint(wal, pos, end);
            if (parts < 1 || parts > 8) return ANY_TABLE;
            for (int i = 0; i < parts; i++) {
                String part = string(wal, pos, end);
                if (part == null) return ANY_TABLE;
                name.append(i > 0 ? "\0" : "").append(part);
            }
            return name.toString();
        }
        return ANY_TABLE;
    }

    /** Whether field {@code id} (below 256) starts at {@code pos[0]}; if so, steps over its 2-byte id. */
    static boolean field(byte[] b, int[] pos, int end, int id) {
        int p = pos[0];
        if (p + 2 > end || (b[p] & 0xff) != id || b[p + 1] != 0) return false;
        pos[0] = p + 2;
        return true;
    }

    /** A varint of up to 57 bits, or -1 if it runs past {@code end} or is longer. */
    static long varint(byte[] b, int[] pos, int end) {
        long v = 0;
        int shift = 0;
        int p = pos[0];
        while (p < end && shift <= 56) {
            int x = b[p++] & 0xff;
            v |= (long) (x & 0x7f) << shift;
            shift += 7;
            if ((x & 0x80) == 0) {
                pos[0] = p;
                return v;
            }
        }
        return -1;
    }

    private static String string(byte[] b, int[] pos, int end) {
        long n = varint(b, pos, end);
        if (n < 0 || n > end - pos[0]) return null;
        String s = new String(b, pos[0], (int) n, java.nio.charset.StandardCharsets.UTF_8);
        pos[0] += (int) n;
        return s;
    }
}
