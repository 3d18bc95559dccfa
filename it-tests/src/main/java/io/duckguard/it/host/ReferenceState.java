package io.duckguard.it.host;

import java.io.IOException;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;

/**
 * Checks a database written by {@link TradingApp} (typically a restored or crash-recovered copy) against the app's
 * {@link AckLog}: every acknowledged transaction is present, every present transaction is complete, no
 * rolled-back transaction is present.
 *
 * <p>How completeness is decided (see {@link Schema}): for a transaction X,
 * {@code surviving(X)} = rows with {@code txn_id = X} in all data tables, {@code out(X)} = rows of X that later
 * transactions overwrote or deleted (summed from {@code superseded}); X is complete iff
 * {@code surviving + out == expected}, where expected is {@code applied_txns.row_count} for transactions that
 * write a marker, the ack log's {@code rows=} for acknowledged autocommit ones, and {@code ticks.batch_rows} for
 * tick batches. Autocommit single statements that were never acknowledged have no recorded size: they count as
 * present but cannot be checked (a single statement is atomic in DuckDB anyway).
 *
 * <p>It does not rebuild the full expected state: with several writers the ack log does not give the commit order
 * of conflicting updates. Comparing whole states is {@link StateDigest}'s job.
 */
public final class ReferenceState {
    private ReferenceState() {
    }

    /**
     * The outcome.
     *
     * @param acked              acknowledged transactions in the ack log
     * @param present            distinct transactions with any trace in the database
     * @param missingAcked       acknowledged but absent: lost commits
     * @param partial            present but with rows missing or extra, or data without its marker
     * @param unackedButPresent  present but not (yet) in the ack log: committed, then killed before the ack line
     * @param rolledBackButPresent rolled back by the app yet present
     * @param problems           one human-readable line per finding (also covers the sequence check)
     */
    public record Verification(int acked, int present, List<Long> missingAcked, List<Long> partial,
                               int unackedButPresent, List<Long> rolledBackButPresent, List<String> problems) {

        public Verification {
            missingAcked = List.copyOf(missingAcked);
            partial = List.copyOf(partial);
            rolledBackButPresent = List.copyOf(rolledBackButPresent);
            problems = List.copyOf(problems);
        }

        public boolean ok() {
            return problems.isEmpty();
        }

        /** Multi-line text for assertion messages and logs. */
        public String describe() {
            StringBuilder sb = new StringBuilder();
            sb.append(ok() ? "OK" : "FAILED").append(": acked=").append(acked).append(" present=").append(present)
                    .append(" missingAcked=").append(missingAcked.size()).append(" partial=").append(partial.size())
                    .append(" unackedButPresent=").append(unackedButPresent).append(" rolledBackButPresent=")
                    .append(rolledBackButPresent.size());
            int shown = 0;
            for (String p : problems) {
                if (shown++ == 50) {
                    sb.append("\n  ... ").append(problems.size() - 50).append(" more");
                    break;
                }
                sb.append("\n  ").append(p);
            }
            return sb.toString();
        }

        /** One line (no spaces inside values) for passing through a child JVM's stdout; see {@link #fromLine}. */
        public String toLine() {
            return "VERIFY ok=" + ok() + " acked=" + acked + " present=" + present + " missingAcked=" + ids(missingAcked)
                    + " partial=" + ids(partial) + " unackedButPresent=" + unackedButPresent + " rolledBackButPresent="
                    + ids(rolledBackButPresent) + " problems=" + problems.size();
        }

        /**
         * Parses {@link #toLine()}. The problem texts do not travel in that line: the result carries
         * {@code problems} placeholder entries (their count is right), the child's other output has the text.
         */
        public static Verification fromLine(String line) {
            Map<String, String> kv = new HashMap<>();
            for (String part : line.trim().split(" ")) {
                int eq = part.indexOf('=');
                if (eq > 0) {
                    kv.put(part.substring(0, eq), part.substring(eq + 1));
                }
            }
            int nProblems = Integer.parseInt(kv.get("problems"));
            List<String> problems = new ArrayList<>();
            for (int i = 0; i < nProblems; i++) {
                problems.add("problem " + (i + 1) + " (text in the child's output)");
            }
            return new Verification(Integer.parseInt(kv.get("acked")), Integer.parseInt(kv.get("present")),
                    parseIds(kv.get("missingAcked")), parseIds(kv.get("partial")),
                    Integer.parseInt(kv.get("unackedButPresent")), parseIds(kv.get("rolledBackButPresent")), problems);
        }

        private static String ids(List<Long> ids) {
            return "[" + ids.stream().map(String::valueOf).collect(Collectors.joining(",")) + "]";
        }

        private static List<Long> parseIds(String s) {
            String body = s.substring(1, s.length() - 1);
            return body.isEmpty() ? List.of() : Arrays.stream(body.split(",")).map(Long::valueOf).toList();
        }
    }

    /** Verifies {@code restoredDb} against the ack log at {@code ackLog}. Reads only; never writes the db. */
    public static Verification verify(Path ackLog, Connection restoredDb) throws IOException, SQLException {
        return verify(AckLog.read(ackLog), restoredDb);
    }

    public static Verification verify(List<AckLog.Entry> log, Connection db) throws SQLException {
        Map<Long, AckLog.Entry> acked = new TreeMap<>();
        Set<Long> rolledBack = new TreeSet<>();
        for (AckLog.Entry e : log) {
            if (e.acknowledged()) {
                acked.put(e.txnId(), e);
            } else {
                rolledBack.add(e.txnId());
            }
        }

        Map<Long, Long> markerRows = new HashMap<>();
        Map<Long, String> markerOp = new HashMap<>();
        try (Statement s = db.createStatement();
             ResultSet rs = s.executeQuery("SELECT txn_id, op, row_count FROM applied_txns")) {
            while (rs.next()) {
                markerRows.put(rs.getLong(1), rs.getLong(3));
                markerOp.put(rs.getLong(1), rs.getString(2));
            }
        }
        Map<Long, Long> surviving = longMap(db, Schema.DATA_TABLES.stream()
                .map(t -> "SELECT txn_id FROM " + t).collect(Collectors.joining(" UNION ALL ",
                        "SELECT txn_id, count(*) FROM (", ") GROUP BY txn_id")));
        Map<Long, Long> out = longMap(db, "SELECT old_txn_id, sum(n_rows) FROM superseded GROUP BY old_txn_id");
        Map<Long, long[]> tickBatches = new HashMap<>();
        try (Statement s = db.createStatement(); ResultSet rs = s.executeQuery(
                "SELECT txn_id, count(*), min(batch_rows), max(batch_rows) FROM ticks GROUP BY txn_id")) {
            while (rs.next()) {
                tickBatches.put(rs.getLong(1), new long[] {rs.getLong(2), rs.getLong(3), rs.getLong(4)});
            }
        }

        Set<Long> present = new TreeSet<>();
        present.addAll(markerRows.keySet());
        present.addAll(surviving.keySet());
        present.addAll(out.keySet());

        List<String> problems = new ArrayList<>();
        List<Long> missing = new ArrayList<>();
        for (AckLog.Entry e : acked.values()) {
            if (!present.contains(e.txnId())) {
                missing.add(e.txnId());
                problems.add("acknowledged txn " + e.txnId() + " (" + e.op() + ", rows=" + e.rows() + ") is missing");
            }
        }
        List<Long> partial = new ArrayList<>();
        int unacked = 0;
        for (long id : present) {
            AckLog.Entry ack = acked.get(id);
            if (ack == null && !rolledBack.contains(id)) {
                unacked++;
            }
            long have = surviving.getOrDefault(id, 0L) + out.getOrDefault(id, 0L);
            String why = null;
            if (markerRows.containsKey(id)) {
                long expected = markerRows.get(id);
                if (have != expected) {
                    why = "marker says " + expected + " rows, found " + have;
                } else if (ack != null && !ack.op().equals(markerOp.get(id))) {
                    why = "marker op " + markerOp.get(id) + " but ack log says " + ack.op();
                } else if (ack != null && ack.rows() >= 0 && ack.rows() != expected) {
                    why = "marker says " + expected + " rows, ack log " + ack.rows();
                }
            } else if (ack != null && ack.opKind().writesMarker()) {
                why = "data without its applied_txns marker (" + have + " rows)";
            } else if (tickBatches.containsKey(id)) {
                long[] b = tickBatches.get(id);
                long expected = ack != null ? ack.rows() : b[2];
                if (b[1] != b[2] || b[0] != expected || have != expected) {
                    why = "tick batch has " + b[0] + " of " + expected + " rows";
                }
            } else if (ack != null && ack.rows() >= 0 && have != ack.rows()) {
                why = "ack log says " + ack.rows() + " rows, found " + have;
            }
            if (why != null) {
                partial.add(id);
                problems.add("txn " + id + (ack == null ? " (unacknowledged)" : " (" + ack.op() + ")") + " is partial: "
                        + why);
            }
        }
        List<Long> rolledBackPresent = new ArrayList<>();
        for (long id : rolledBack) {
            if (present.contains(id)) {
                rolledBackPresent.add(id);
                problems.add("rolled-back txn " + id + " is present");
            }
        }
        checkSequence(db, problems);
        return new Verification(acked.size(), present.size(), missing, partial, unacked, rolledBackPresent, problems);
    }

    /**
     * The order id sequence must be past every order id in the table, or the next insert after a restore would
     * collide with the primary key. The sequence's next value is read from the {@code START n} of
     * {@code duckdb_sequences().sql}: its {@code last_value} column is stale after a WAL replay on 1.5.6 (it says 1
     * while nextval() correctly continues) and means "next" rather than "last" there after a checkpoint.
     */
    private static void checkSequence(Connection db, List<String> problems) throws SQLException {
        long next = StateDigest.sequenceNextValue(db, Schema.SEQUENCE);
        try (Statement s = db.createStatement(); ResultSet rs = s.executeQuery("SELECT max(order_id) FROM orders")) {
            rs.next();
            long maxId = rs.getLong(1);
            if (!rs.wasNull() && next <= maxId) {
                problems.add("sequence " + Schema.SEQUENCE + " would hand out " + next + " next but orders holds"
                        + " order_id " + maxId);
            }
        }
    }

    private static Map<Long, Long> longMap(Connection db, String sql) throws SQLException {
        Map<Long, Long> m = new HashMap<>();
        try (Statement s = db.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            while (rs.next()) {
                m.put(rs.getLong(1), rs.getLong(2));
            }
        }
        return m;
    }
}
