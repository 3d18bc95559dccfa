package io.duckguard.runtime.wal;

import io.duckguard.runtime.util.Bytes;
import java.io.ByteArrayOutputStream;
import java.util.HashSet;
import java.util.Set;

/**
 * Rewrites a WAL, cut at a commit boundary, so that runs of small commits replay as one transaction each. DuckDB
 * replays a WAL commit by commit, and pays ~100 us per commit whatever its size: 100,000 small commits took ~10 s
 * to replay here, the same changes as one transaction ~1.8 s (measured on the benchmark's 1 GB database). The
 * rewrite only drops WAL_FLUSH entries between the commits of a run; every entry that remains is byte for byte
 * what DuckDB wrote, with its own checksum.
 *
 * <p>When one transaction is not the same as the commits in a row, a run ends before the commit:
 * <ul>
 *   <li>an UPDATE or DELETE of a table the run has inserted into: WAL updates and deletes name rows by row id,
 *       and a row an earlier commit of the run inserted is not committed yet inside the merged transaction (it
 *       sits in transaction-local storage under another id). Tables are told apart by their USE_TABLE entries
 *       (schema and name); an entry whose table cannot be read counts as every table;</li>
 *   <li>any entry other than USE_TABLE, INSERT, DELETE, UPDATE and SEQUENCE_VALUE (catalog changes, optimistic
 *       writes, entry types this version does not know): such a commit replays alone.</li>
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

    /** The rewritten WAL and how many transactions DuckDB will replay from it. */
    public record Merged(byte[] wal, int transactions, int commits) {}

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
        int transactions = 0;
        int commits = 0;
        boolean runOpen = false; // commits written since the last WAL_FLUSH written
        Set<String> runInserted = new HashSet<>(); // tables the run has inserted into
        int flushStart = 0; // the WAL_FLUSH entry of the run's last commit: written to close the run
        int flushEnd = 0;
        int commitStart = header;
        boolean commitMergeable = true;
        Set<String> commitInserted = new HashSet<>();
        Set<String> commitModified = new HashSet<>(); // tables the commit updates or deletes rows of
        String table = ANY_TABLE;
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
                    case USE_TABLE -> table = tableOf(wal, payload, end);
                    case INSERT_TUPLE -> commitInserted.add(table);
                    case UPDATE_TUPLE, DELETE_TUPLE -> commitModified.add(table);
                    case SEQUENCE_VALUE -> { }
                    default -> commitMergeable = false;
                }
                p = end;
                continue;
            }
            // One commit: its entries are [commitStart, p), its WAL_FLUSH entry [p, end).
            commits++;
            boolean joins = commitMergeable && !(cutBeforeRowIdUse && touches(runInserted, commitModified));
            if (runOpen && !joins) {
                out.write(wal, flushStart, flushEnd - flushStart);
                transactions++;
                runOpen = false;
                runInserted.clear();
            }
            out.write(wal, commitStart, p - commitStart);
            if (commitMergeable) {
                runOpen = true;
                runInserted.addAll(commitInserted);
                flushStart = p;
                flushEnd = end;
            } else {
                out.write(wal, p, end - p); // replays alone
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
            out.write(wal, flushStart, flushEnd - flushStart);
            transactions++;
        }
        return new Merged(out.toByteArray(), transactions, commits);
    }

    /** Stands for a table that could not be told: it conflicts with every table. */
    private static final String ANY_TABLE = "";

    private static boolean touches(Set<String> inserted, Set<String> modified) {
        if (inserted.isEmpty() || modified.isEmpty()) return false;
        if (inserted.contains(ANY_TABLE) || modified.contains(ANY_TABLE)) return true;
        for (String t : modified) if (inserted.contains(t)) return true;
        return false;
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

    private static boolean field(byte[] b, int[] pos, int end, int id) {
        int p = pos[0];
        if (p + 2 > end || (b[p] & 0xff) != id || b[p + 1] != 0) return false;
        pos[0] = p + 2;
        return true;
    }

    /** A varint, or -1 if it runs past {@code end}. */
    private static long varint(byte[] b, int[] pos, int end) {
        long v = 0;
        int shift = 0;
        int p = pos[0];
        while (p < end && shift <= 28) {
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
