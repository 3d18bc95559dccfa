package io.duckguard.runtime.restore;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.runtime.capture.DatabaseRegistry;
import io.duckguard.runtime.repository.Repository;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Invariant 2, point-in-time: the app (the test, playing the advice) records a digest of the whole database after
 * every commit: tables with their rows, sequences, views, indexes. Restores to 50 random commits spread over
 * several epochs (with DDL, a transaction larger than a row group, and the app's own CHECKPOINT and FORCE
 * CHECKPOINT among them) and to 10 random instants must each give exactly the recorded state.
 */
class PitrExactnessTest {
    @TempDir
    Path tmp;

    record Point(long epoch, int commit, long time, String digest) {}

    @Test
    void everyRestoredCommitAndInstantEqualsTheRecordedState() throws Exception {
        Path repoDir = tmp.resolve("repo");
        Path key = tmp.resolve("key");
        DatabaseRegistry reg = io.duckguard.runtime.testing.AppCalls.agent(repoDir, key, "");
        Repository repo = reg.repository();
        Path db = tmp.resolve("pitr.duckdb");
        String url = "jdbc:duckdb:" + db;
        Random rnd = new Random(Long.getLong("duckguard.test.seed", 11));
        List<Point> points = new ArrayList<>();
        long notReadBefore = io.duckguard.runtime.snapshot.Snapshotter.chunksNotRead();
        try (Connection c = DriverManager.getConnection(url)) {
            reg.connectionOpened(c, url, false);
            long epoch = reg.snapshotNow("pitr.duckdb", Duration.ofMinutes(1));
            int n = 0;
            String[] ddlAndData = {
                "CREATE SEQUENCE oid START 100",
                "CREATE TABLE orders(id BIGINT PRIMARY KEY, sym VARCHAR, qty INTEGER, px DECIMAL(18,4))",
                "CREATE VIEW big_orders AS SELECT * FROM orders WHERE qty > 50",
                "CREATE INDEX orders_sym ON orders(sym)",
            };
            for (String sql : ddlAndData) {
                exec(reg, c, sql);
                points.add(new Point(epoch, ++n, System.currentTimeMillis(), digest(c)));
            }
            for (int e = 0; e < 4; e++) {
                for (int i = 0; i < 25; i++) {
                    int k = rnd.nextInt(10);
                    String sql;
                    if (k < 5) {
                        sql = "INSERT INTO orders (id, sym, qty, px) VALUES (nextval('oid'), 'S" + rnd.nextInt(20) + "', " + rnd.nextInt(100)
                                + ", " + rnd.nextInt(10000) / 100.0 + ")";
                    } else if (k < 7) {
                        sql = "UPDATE orders SET qty = qty + 1 WHERE sym = 'S" + rnd.nextInt(20) + "'";
                    } else if (k < 8) {
                        sql = "DELETE FROM orders WHERE id % 13 = " + rnd.nextInt(13);
                    } else if (k == 8 && i % 2 == 0) {
                        // The app's own checkpoint: the agent must notice it and keep every commit restorable.
                        exec(reg, c, i % 4 == 0 ? "CHECKPOINT" : "FORCE CHECKPOINT");
                        continue;
                    } else {
                        c.setAutoCommit(false); // a multi-statement transaction through JDBC
                        exec(reg, c, "INSERT INTO orders (id, sym, qty, px) VALUES (nextval('oid'), 'TX', 1, 1.5)");
                        exec(reg, c, "UPDATE orders SET px = px * 2 WHERE sym = 'TX'");
                        reg.beforeCall(c);
                        try {
                            c.commit();
                        } finally {
                            reg.afterCall(c);
                        }
                        c.setAutoCommit(true);
                        points.add(new Point(epoch, ++n, System.currentTimeMillis(), digest(c)));
                        continue;
                    }
                    exec(reg, c, sql);
                    points.add(new Point(epoch, ++n, System.currentTimeMillis(), digest(c)));
                    if (i == 12 && e == 1) {
                        // More than one row group (122,880 rows) in one transaction: optimistic writes must be off.
                        exec(reg, c, "CREATE TABLE fills AS SELECT range AS id, range % 97 AS qty FROM range(130000)");
                        points.add(new Point(epoch, ++n, System.currentTimeMillis(), digest(c)));
                        exec(reg, c, "ALTER TABLE orders ADD COLUMN venue VARCHAR DEFAULT 'XNAS'");
                        points.add(new Point(epoch, ++n, System.currentTimeMillis(), digest(c)));
                    }
                    if (i == 20 && e == 2) {
                        exec(reg, c, "DROP TABLE fills");
                        points.add(new Point(epoch, ++n, System.currentTimeMillis(), digest(c)));
                    }
                    Thread.sleep(2); // distinct commit times
                }
                epoch = reg.snapshotNow("pitr.duckdb", Duration.ofMinutes(1)); // the ALTER may already have caused one
                n = 0;
                points.add(new Point(epoch, 0, System.currentTimeMillis(), digest(c)));
            }
            reg.connectionClosed(c);
        }
        // The agent's incremental snapshots skipped blocks by DuckDB's block map, so the restores below check that too.
        assertTrue(io.duckguard.runtime.snapshot.Snapshotter.chunksNotRead() > notReadBefore, "no snapshot skipped a block");
        // The epochs the points think they are in must match the repository: rebuild (epoch, n) from commit times.
        DuckDbDriver duckdb = DuckDbDriver.find(null, null, null);
        Restorer restorer = new Restorer(repo.database("pitr.duckdb"), m -> { });
        List<Point> commits = points.stream().filter(p -> p.commit() > 0).toList();
        assertTrue(commits.stream().map(Point::epoch).distinct().count() >= 3, "spread over at least 3 epochs");
        List<Point> chosen = new ArrayList<>(commits);
        java.util.Collections.shuffle(chosen, rnd);
        chosen = chosen.subList(0, Math.min(50, chosen.size()));
        int checked = 0;
        for (Point p : chosen) {
            // Agent-driven checkpoints after an ALTER split epochs: locate the commit by its time instead of (e, n).
            String got = restoreDigest(restorer, duckdb, RestoreTarget.parse(Instant.ofEpochMilli(p.time()).toString()));
            assertEquals(p.digest(), got, "commit " + p);
            checked++;
        }
        for (int i = 0; i < 10; i++) {
            Point a = points.get(rnd.nextInt(points.size() - 1));
            // An instant right after this point was recorded, before the next commit began: the state is this point's.
            long t = a.time() + rnd.nextInt(6);
            assertEquals(a.digest(), restoreDigest(restorer, duckdb, RestoreTarget.parse(Instant.ofEpochMilli(t).toString())),
                    "instant after " + a);
        }
        // And by commit id: every epoch's last commit and snapshot.
        for (long e : repo.database("pitr.duckdb").epochs()) {
            Restorer.Point last = restorer.resolve(RestoreTarget.parse("commit:" + e + ".0"));
            assertEquals(e, last.epoch());
        }
        assertEquals(50, checked);
    }

    private String restoreDigest(Restorer r, DuckDbDriver duckdb, RestoreTarget target) throws Exception {
        Path out = tmp.resolve("r-" + System.nanoTime() + ".duckdb");
        r.restore(target, out, false, duckdb);
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + out)) {
            return digest(c);
        }
    }

    private static void exec(DatabaseRegistry reg, Connection c, String sql) throws Exception {
        Thread.sleep(10); // every commit happens at least 10 ms after the previous point was recorded
        io.duckguard.runtime.testing.AppCalls.exec(reg, c, sql);
    }

    /** Tables (definition, rows), views, indexes and sequences (their counter lives in the sql text on 1.5.6). */
    static String digest(Connection c) throws Exception {
        StringBuilder sb = new StringBuilder();
        List<String> tables = new ArrayList<>();
        try (Statement s = c.createStatement();
             ResultSet rs = s.executeQuery("SELECT table_name, sql FROM duckdb_tables() ORDER BY table_name")) {
            while (rs.next()) {
                tables.add(rs.getString(1));
                sb.append("T ").append(rs.getString(2)).append('\n');
            }
        }
        for (String t : tables) {
            try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(
                    "SELECT count(*), coalesce(md5(string_agg(x::VARCHAR, '|' ORDER BY x::VARCHAR)), '') FROM (SELECT " + t + " AS x FROM " + t + ")")) {
                rs.next();
                sb.append("R ").append(t).append(' ').append(rs.getLong(1)).append(' ').append(rs.getString(2)).append('\n');
            }
        }
        for (String q : new String[] {
            "SELECT view_name || ' ' || sql FROM duckdb_views() WHERE NOT internal ORDER BY 1",
            "SELECT index_name || ' ' || coalesce(sql, '') FROM duckdb_indexes() ORDER BY 1",
            "SELECT sequence_name || ' ' || coalesce(sql, '') FROM duckdb_sequences() ORDER BY 1"}) {
            try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(q)) {
                while (rs.next()) sb.append(rs.getString(1)).append('\n');
            }
        }
        return sb.toString();
    }
}
