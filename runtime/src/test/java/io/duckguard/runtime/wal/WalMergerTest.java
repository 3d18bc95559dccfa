package io.duckguard.runtime.wal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A merged WAL must replay to exactly the database the original WAL replays to, on real DuckDB WALs written with
 * the agent's settings: inserts, updates and deletes of old and of just-inserted rows, sequences, DDL.
 */
class WalMergerTest {
    @TempDir
    static Path tmp;

    private static Path base;
    private static byte[] wal;
    /** Commits in {@link #wal}, and those that must start a new transaction. */
    private static int commits;

    @BeforeAll
    static void writeARealWal() throws Exception {
        Path db = tmp.resolve("merge.duckdb");
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + db); Statement s = c.createStatement()) {
            agentSettings(s);
            s.execute("CREATE SEQUENCE ids");
            s.execute("CREATE TABLE orders(id BIGINT DEFAULT nextval('ids'), sym VARCHAR, qty INTEGER, state VARCHAR)");
            s.execute("CREATE TABLE positions(sym VARCHAR PRIMARY KEY, qty INTEGER)");
            s.execute("INSERT INTO orders(sym, qty, state) SELECT 'S' || (i % 7), i, 'old' FROM range(1000) r(i)");
            s.execute("INSERT INTO positions SELECT 'S' || i, 0 FROM range(7) r(i)");
            s.execute("CHECKPOINT");
        }
        base = tmp.resolve("base.duckdb");
        Files.copy(db, base);
        Path walFile = Path.of(db + ".wal");
        Files.deleteIfExists(walFile);
        List<String> sql = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            sql.add("INSERT INTO orders(sym, qty, state) VALUES ('S" + (i % 7) + "', " + i + ", 'new')");
            sql.add("UPDATE positions SET qty = qty + " + i + " WHERE sym = 'S" + (i % 7) + "'");
            if (i % 5 == 0) sql.add("UPDATE orders SET state = 'filled' WHERE id = (SELECT max(id) FROM orders)"); // a row just inserted
            if (i % 9 == 0) sql.add("DELETE FROM orders WHERE id = " + (i * 10)); // an old row
            if (i % 11 == 0) sql.add("UPDATE orders SET qty = qty * 2 WHERE state = 'old' AND qty < " + i);
            if (i == 20) sql.add("CREATE TABLE notes(n INTEGER)");
            if (i > 20) sql.add("INSERT INTO notes VALUES (" + i + ")");
        }
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + db); Statement s = c.createStatement()) {
            agentSettings(s);
            for (String q : sql) s.execute(q);
        }
        wal = Files.readAllBytes(walFile);
        commits = WalScanner.scan(wal, wal.length, 0).count;
        assertTrue(commits >= sql.size() - 5, "one commit per statement: " + commits);
    }

    /** The agent's settings (invariant 3): no auto-checkpoint, no optimistic writes, the WAL kept at close. */
    private static void agentSettings(Statement s) throws SQLException {
        s.execute("SET GLOBAL checkpoint_threshold='1000TB'");
        s.execute("SET GLOBAL enable_optimistic_write=false");
        s.execute("PRAGMA disable_checkpoint_on_shutdown");
    }

    /** The WAL that {@code sql}, one autocommit statement each, leaves on a copy of the base. */
    private static byte[] walAfter(String name, List<String> sql) throws Exception {
        Path db = tmp.resolve(name + ".duckdb");
        Files.copy(base, db);
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + db); Statement s = c.createStatement()) {
            agentSettings(s);
            for (String q : sql) s.execute(q);
        }
        return Files.readAllBytes(Path.of(db + ".wal"));
    }

    /** The WAL of {@code sql} merges into {@code transactions} and replays to the same database as unmerged. */
    private static void assertMergedAs(String name, List<String> sql, int commits, int transactions) throws Exception {
        byte[] w = walAfter(name, sql);
        WalMerger.Merged m = WalMerger.merge(w, w.length);
        assertEquals(commits, m.commits());
        assertEquals(transactions, m.transactions());
        assertEquals(replay(name + "-original", w), replay(name + "-merged", m.wal()));
    }

    /** Replays {@code walBytes} onto a copy of the base and returns the database's contents, in order. */
    private static String replay(String name, byte[] walBytes) throws Exception {
        Path db = tmp.resolve(name + ".duckdb");
        Files.copy(base, db, StandardCopyOption.REPLACE_EXISTING);
        Files.write(Path.of(db + ".wal"), walBytes);
        StringBuilder out = new StringBuilder();
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + db); Statement s = c.createStatement()) {
            boolean notes;
            try (ResultSet rs = s.executeQuery("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'notes'")) {
                notes = rs.next() && rs.getInt(1) == 1;
            }
            for (String q : new String[] {"SELECT * FROM orders ORDER BY id", "SELECT * FROM positions ORDER BY sym",
                    notes ? "SELECT * FROM notes ORDER BY n" : "SELECT 'no notes'", "SELECT nextval('ids')"}) {
                try (ResultSet rs = s.executeQuery(q)) {
                    int n = rs.getMetaData().getColumnCount();
                    while (rs.next()) {
                        for (int i = 1; i <= n; i++) out.append(rs.getString(i)).append(i < n ? "," : "\n");
                    }
                }
            }
        }
        return out.toString();
    }

    @Test
    void mergedWalReplaysToTheSameDatabaseInFewerTransactions() throws Exception {
        WalMerger.Merged m = WalMerger.merge(wal, wal.length);
        assertEquals(commits, m.commits());
        assertTrue(m.transactions() < commits / 2, m.transactions() + " transactions for " + commits + " commits");
        assertTrue(m.transactions() > 1, "DDL and updates of just-inserted rows must cut runs");
        assertEquals(m.transactions(), WalScanner.scan(m.wal(), m.wal().length, 0).count, "one WAL_FLUSH per transaction");
        assertEquals(replay("original", wal), replay("merged", m.wal()));
    }

    @Test
    void withoutTheRowIdRuleTheMergedReplayWouldBeWrong() throws Exception {
        // The reason for the rule: an UPDATE names its row by row id, and a row inserted earlier in the same
        // merged transaction is not at that id yet. Merging across it gives another database, or an error.
        WalMerger.Merged careless = WalMerger.merge(wal, wal.length, false);
        assertTrue(careless.transactions() < WalMerger.merge(wal, wal.length).transactions());
        String want = replay("original2", wal);
        String got;
        try {
            got = replay("careless", careless.wal());
        } catch (SQLException e) {
            got = "error: " + e.getMessage();
        }
        assertNotEquals(want, got);
    }

    @Test
    void tablesAreToldApartSoInsertsIntoOneAndUpdatesOfAnotherMerge() throws Exception {
        // Every USE_TABLE entry of the real WAL names a table of the database.
        java.util.Set<String> tables = new java.util.TreeSet<>();
        int p = WalScanner.headerLength(wal, wal.length);
        while (p < wal.length) {
            int size = (int) io.duckguard.runtime.util.Bytes.getLongLE(wal, p);
            if (WalScanner.entryType(wal, p + 16, p + 16 + size) == WalMerger.USE_TABLE) {
                tables.add(WalMerger.tableOf(wal, p + 16, p + 16 + size));
            }
            p += 16 + size;
        }
        assertEquals(java.util.Set.of("main\0notes", "main\0orders", "main\0positions"), tables);

        // 30 commits alternating an INSERT into orders and an UPDATE of positions: one transaction; the original
        // WAL has DELETEs and UPDATEs of orders too, so it cannot be one.
        List<String> sql = new ArrayList<>();
        for (int i = 0; i < 15; i++) {
            sql.add("INSERT INTO orders(sym, qty, state) VALUES ('S1', " + i + ", 'new')");
            sql.add("UPDATE positions SET qty = qty + 1 WHERE sym = 'S1'");
        }
        assertMergedAs("two-tables", sql, 30, 1);
    }

    @Test
    void rowIdsOfEveryUpdateAndDeleteAreRead() throws Exception {
        int p = WalScanner.headerLength(wal, wal.length);
        int read = 0;
        while (p < wal.length) {
            int size = (int) io.duckguard.runtime.util.Bytes.getLongLE(wal, p);
            int type = WalScanner.entryType(wal, p + 16, p + 16 + size);
            if (type == WalMerger.UPDATE_TUPLE || type == WalMerger.DELETE_TUPLE) {
                long max = WalMerger.maxRowId(wal, p + 16, p + 16 + size, type);
                assertTrue(max >= 0 && max < 2000, "entry at " + p + " of type " + type + ": " + max);
                read++;
            }
            p += 16 + size;
        }
        assertTrue(read > 40, "updates and deletes read: " + read);
    }

    @Test
    void updatesOfOldRowsAfterInsertsIntoTheSameTableMergeAndUpdatesOfNewRowsDoNot() throws Exception {
        List<String> sql = new ArrayList<>();
        sql.add("UPDATE orders SET qty = 0 WHERE id = 1000"); // the base's last row: rows up to it exist
        for (int i = 0; i < 20; i++) {
            sql.add("INSERT INTO orders(sym, qty, state) VALUES ('S2', " + i + ", 'new')");
            sql.add("UPDATE orders SET qty = qty + 1 WHERE id = " + (1 + i * 37)); // old rows
        }
        sql.add("UPDATE orders SET state = 'filled' WHERE id = (SELECT max(id) FROM orders)"); // a new row: cut
        sql.add("INSERT INTO orders(sym, qty, state) VALUES ('S3', 1, 'new')");
        assertMergedAs("same-table", sql, 43, 2);
    }

    @Test
    void aWalThatDoesNotEndAtACommitIsRefused() throws Exception {
        byte[] cut = Arrays.copyOf(wal, wal.length - 3);
        assertThrows(WalScanner.WalFormatException.class, () -> WalMerger.merge(cut, cut.length));
        WalScanner.Result r = WalScanner.scan(wal, wal.length, 0);
        long[] ends = Arrays.copyOf(r.commitEnds, 3);
        byte[] mid = Arrays.copyOf(wal, (int) ends[1] + 20);
        assertThrows(WalScanner.WalFormatException.class, () -> WalMerger.merge(mid, mid.length));
    }

    @Test
    void catalogChangesThatChangeNoRowCountKeepTheMergedReplay() throws Exception {
        List<String> sql = new ArrayList<>();
        sql.add("UPDATE orders SET qty = 0 WHERE id = 1000"); // the base's last row: rows up to it exist
        for (int i = 0; i < 10; i++) {
            sql.add("INSERT INTO orders(sym, qty, state) VALUES ('S4', " + i + ", 'new')");
            sql.add("UPDATE positions SET qty = qty + 1 WHERE sym = 'S4'");
        }
        sql.add("CREATE INDEX orders_sym ON orders(sym)");
        sql.add("CREATE VIEW busy AS SELECT sym, count(*) AS n FROM orders GROUP BY sym");
        for (int i = 0; i < 10; i++) sql.add("INSERT INTO orders(sym, qty, state) VALUES ('S5', " + i + ", 'new')");
        sql.add("DROP INDEX orders_sym");
        sql.add("DELETE FROM orders WHERE id = 17");
        byte[] w = walAfter("neutral-ddl", sql);
        WalMerger.Merged m = WalMerger.merge(w, w.length);
        // run, CREATE INDEX alone, CREATE VIEW alone, run, DROP INDEX alone, the DELETE
        assertEquals(6, m.transactions());
        assertEquals(java.util.Map.of("main\0orders", 19L), m.rowDelta(), "row counts stay known");
        String catalog = "SELECT (SELECT count(*) FROM duckdb_indexes()), (SELECT count(*) FROM duckdb_views() WHERE view_name = 'busy')";
        assertEquals(replay("neutral-original", w) + rows(replayOnto("base", "neutral-original2", w), catalog),
                replay("neutral-merged", m.wal()) + rows(replayOnto("base", "neutral-merged2", m.wal()), catalog));
        // A table created in the epoch leaves the counts unknown: the restore then replays the original WAL.
        assertEquals(null, WalMerger.merge(wal, wal.length).rowDelta());
    }

    private static String rows(Path db, String query) throws Exception {
        StringBuilder out = new StringBuilder();
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + db); Statement s = c.createStatement();
             ResultSet rs = s.executeQuery(query)) {
            int n = rs.getMetaData().getColumnCount();
            while (rs.next()) for (int i = 1; i <= n; i++) out.append(rs.getString(i)).append(i < n ? "," : "\n");
        }
        return out.toString();
    }

    @Test
    void everyEntryChecksumOfARealWalIsDuckDbs() throws Exception {
        int p = WalScanner.headerLength(wal, wal.length);
        java.util.Set<Integer> remainders = new java.util.TreeSet<>();
        while (p < wal.length) {
            int size = (int) io.duckguard.runtime.util.Bytes.getLongLE(wal, p);
            assertEquals(io.duckguard.runtime.util.Bytes.getLongLE(wal, p + 8), io.duckguard.runtime.util.DuckDbChecksum.of(wal, p + 16, size),
                    "entry at " + p);
            remainders.add(size % 8);
            p += 16 + size;
        }
        assertTrue(remainders.size() >= 4, "payload lengths mod 8 seen: " + remainders);
    }

    @Test
    void insertsOfAMergedRunAreJoinedIntoFewEntriesAndReplayTheSame() throws Exception {
        // Every column type the join handles, NULLs at random rows (masks across 64-row words and chunk ends), runs
        // of one-row and 700-row inserts (an entry holds at most 2,048 rows), updates and deletes of old rows in
        // between, inserts into a table with a LIST column (not joined, in place) and a sequence.
        Path db = tmp.resolve("join.duckdb");
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + db); Statement s = c.createStatement()) {
            agentSettings(s);
            s.execute("CREATE SEQUENCE fills_seq");
            s.execute("CREATE TABLE fills(id BIGINT DEFAULT nextval('fills_seq'), px DECIMAL(18,4), lot DECIMAL(4,1),"
                    + " big DECIMAL(38,2), sym VARCHAR, note BLOB, ok BOOLEAN, h HUGEINT, d DATE, ts TIMESTAMP, f DOUBLE,"
                    + " i INTEGER, s SMALLINT, u UBIGINT, iv INTERVAL, g UUID)");
            s.execute("CREATE TABLE tagged(id INTEGER, tags VARCHAR[])");
            s.execute("INSERT INTO fills(px, sym) SELECT i / 7, 'old' || i FROM range(100) r(i)");
            s.execute("INSERT INTO tagged VALUES (0, ['a'])");
            s.execute("CHECKPOINT");
        }
        Files.copy(db, tmp.resolve("join-base.duckdb"));
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(7);
        List<String> sql = new ArrayList<>();
        sql.add("UPDATE fills SET px = 0 WHERE id = 100"); // the base's last row: rows up to it exist
        int tagged = 0;
        for (int i = 0; i < 400; i++) {
            if (i % 100 == 50) {
                sql.add("INSERT INTO fills(px, sym, ok, i) SELECT r / 3, CASE WHEN r % 5 = 0 THEN NULL ELSE 'bulk' || r END,"
                        + " r % 2 = 0, r FROM range(700) t(r)");
                continue;
            }
            StringBuilder v = new StringBuilder("INSERT INTO fills(px, lot, big, sym, note, ok, h, d, ts, f, i, s, u, iv, g) VALUES (");
            String[] vals = {(i * 3.25) + "", (i % 999) / 10.0 + "", "123456789012345678901234567890.5" + (i % 10),
                    "'S" + i + "'", "'\\x0" + (i % 10) + "ab'::BLOB", (i % 3 == 0) + "", "170141183460469231731687303715884105" + (i % 100),
                    "DATE '2026-01-01' + " + i, "TIMESTAMP '2026-11-27 10:00:00' + INTERVAL " + i + " SECOND", (i * 0.5) + "",
                    i + "", (i % 300) + "", "1844674407370955100" + (i % 10), "INTERVAL " + i + " MINUTE",
                    "uuid()"};
            for (int k = 0; k < vals.length; k++) v.append(k > 0 ? ", " : "").append(rnd.nextInt(4) == 0 ? "NULL" : vals[k]);
            sql.add(v.append(")").toString());
            if (i % 3 == 0) sql.add("UPDATE fills SET px = px + 1 WHERE id = " + (1 + rnd.nextInt(100))); // old rows only
            if (i % 40 == 0) sql.add("DELETE FROM fills WHERE id = " + (1 + rnd.nextInt(100)));
            if (i % 25 == 0) {
                sql.add("INSERT INTO tagged VALUES (" + i + ", ['x', 'y" + i + "'])");
                tagged++;
            }
        }
        Path live = tmp.resolve("join-live.duckdb");
        Files.copy(db, live);
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + live); Statement s = c.createStatement()) {
            agentSettings(s);
            for (String q : sql) s.execute(q);
        }
        byte[] w = Files.readAllBytes(Path.of(live + ".wal"));
        WalMerger.Merged m = WalMerger.merge(w, w.length);
        assertEquals(1, m.transactions(), "updates and deletes of old rows only: one run");
        int insertsBefore = countEntries(w, WalMerger.INSERT_TUPLE);
        int insertsAfter = countEntries(m.wal(), WalMerger.INSERT_TUPLE);
        assertTrue(insertsBefore > 400, "one insert entry per commit before: " + insertsBefore);
        // fills: 396 one-row + 4 x 700 rows = 3196 rows -> 2 entries of <= 2048; tagged: one each, kept
        assertEquals(2 + tagged, insertsAfter, "insert entries after joining");
        assertEquals(insertsBefore - insertsAfter, m.insertsJoined());
        // USE_TABLE only where the table changes: to tagged and back for each of its inserts, then the held ones
        int uses = countEntries(m.wal(), WalMerger.USE_TABLE);
        assertTrue(countEntries(w, WalMerger.USE_TABLE) > 400 && uses <= 2 * tagged + 2, "USE_TABLE entries: " + uses);
        assertEquals(dump(replayOnto("join-base", "join-original", w)), dump(replayOnto("join-base", "join-merged", m.wal())));
    }

    @Test
    void aFileOfDuckDb156WrittenByDuckDb20JoinsItsInsertsInTheListLayout() throws Exception {
        // An app that moves to DuckDB 2.0 keeps its 1.5.6 file: 2.0 then writes strings as a list (field 102), as
        // 1.5.6 does, not as the length and byte blobs of its own files. Only in the 1.5.6 run of the suite, with
        // the 2.0 jar the build copied for its own run.
        Path next = Path.of("target/duckdb-next");
        String version;
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:"); Statement s = c.createStatement();
             ResultSet rs = s.executeQuery("SELECT version()")) {
            rs.next();
            version = rs.getString(1);
        }
        org.junit.jupiter.api.Assumptions.assumeTrue(version.startsWith("v1.5") && Files.isDirectory(next), "the 1.5.6 run");
        Path jar;
        try (var l = Files.list(next)) {
            jar = l.filter(f -> f.getFileName().toString().startsWith("duckdb_jdbc-2.")).findFirst().orElseThrow();
        }
        io.duckguard.runtime.restore.DuckDbDriver v2 = io.duckguard.runtime.restore.DuckDbDriver.find(jar, null, null);
        Path base156 = tmp.resolve("v156-base.duckdb");
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + base156); Statement s = c.createStatement()) {
            s.execute("CREATE TABLE t(a INTEGER, c VARCHAR, d DECIMAL(18,4))");
            s.execute("INSERT INTO t SELECT i, 'old' || i, i FROM range(50) r(i)");
            s.execute("CHECKPOINT");
        }
        Path live = tmp.resolve("v156-live.duckdb");
        Files.copy(base156, live);
        try (Connection c = v2.connect(live); Statement s = c.createStatement()) {
            agentSettings(s);
            s.execute("UPDATE t SET d = 0 WHERE a = 49"); // the base's last row: rows up to it exist
            for (int i = 1; i <= 300; i++) {
                s.execute("INSERT INTO t VALUES (" + (100 + i) + ", " + (i % 7 == 0 ? "NULL" : "'v" + i + "'") + ", " + i + ".25)");
                if (i % 10 == 0) s.execute("UPDATE t SET d = d + 1 WHERE a = " + (i % 50));
            }
        }
        byte[] w = Files.readAllBytes(Path.of(live + ".wal"));
        WalMerger.Merged m = WalMerger.merge(w, w.length);
        assertEquals(1, m.transactions());
        assertEquals(299, m.insertsJoined(), "300 one-row inserts in one entry");
        String[] dumps = new String[2];
        byte[][] wals = {w, m.wal()};
        for (int k = 0; k < 2; k++) {
            Path db = tmp.resolve("v156-replay-" + k + ".duckdb");
            Files.copy(base156, db);
            Files.write(Path.of(db + ".wal"), wals[k]);
            StringBuilder out = new StringBuilder();
            try (Connection c = v2.connect(db); Statement s = c.createStatement();
                 ResultSet rs = s.executeQuery("SELECT a, c, d FROM t ORDER BY a")) {
                while (rs.next()) out.append(rs.getString(1)).append(',').append(rs.getString(2)).append(',').append(rs.getString(3)).append('\n');
            }
            dumps[k] = out.toString();
        }
        assertEquals(350, dumps[0].lines().count());
        assertEquals(dumps[0], dumps[1]);
    }

    private static int countEntries(byte[] w, int type) throws Exception {
        int p = WalScanner.headerLength(w, w.length);
        int n = 0;
        while (p < w.length) {
            int size = (int) io.duckguard.runtime.util.Bytes.getLongLE(w, p);
            if (WalScanner.entryType(w, p + 16, p + 16 + size) == type) n++;
            p += 16 + size;
        }
        return n;
    }

    private static Path replayOnto(String baseName, String name, byte[] walBytes) throws Exception {
        Path db = tmp.resolve(name + ".duckdb");
        Files.copy(tmp.resolve(baseName + ".duckdb"), db, StandardCopyOption.REPLACE_EXISTING);
        Files.write(Path.of(db + ".wal"), walBytes);
        return db;
    }

    /** Every row of every table, in a fixed order, and the sequences' next values. */
    private static String dump(Path db) throws Exception {
        StringBuilder out = new StringBuilder();
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + db); Statement s = c.createStatement()) {
            List<String> tables = new ArrayList<>();
            try (ResultSet rs = s.executeQuery("SELECT table_name FROM duckdb_tables() ORDER BY 1")) {
                while (rs.next()) tables.add(rs.getString(1));
            }
            for (String t : tables) {
                out.append(t).append('\n');
                try (ResultSet rs = s.executeQuery("SELECT * FROM " + t + " ORDER BY ALL")) {
                    int n = rs.getMetaData().getColumnCount();
                    while (rs.next()) {
                        for (int i = 1; i <= n; i++) out.append(rs.getString(i)).append(i < n ? "," : "\n");
                    }
                }
            }
            try (ResultSet rs = s.executeQuery("SELECT nextval('fills_seq')")) {
                rs.next();
                out.append("seq ").append(rs.getLong(1));
            }
        }
        assertTrue(out.length() > 10_000, "the dump holds the rows");
        return out.toString();
    }
}
