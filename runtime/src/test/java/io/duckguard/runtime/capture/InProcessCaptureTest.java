package io.duckguard.runtime.capture;

import static io.duckguard.runtime.testing.AppCalls.exec;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.runtime.config.AgentConfig;
import io.duckguard.runtime.repository.Repository;
import io.duckguard.runtime.repository.RepositoryOpener;
import io.duckguard.runtime.restore.Restorer;
import io.duckguard.runtime.testing.AppCalls;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.Map;
import java.util.Properties;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The runtime without the agent: the test plays the advice (calls the registry's hook methods around real DuckDB
 * calls), so capture, shipping, checkpoints and restore are exercised in one JVM. The child-JVM tests in it-tests
 * do the same through the real agent jar.
 */
class InProcessCaptureTest {
    @TempDir
    Path tmp;

    private DatabaseRegistry registry(String opts) throws Exception {
        AgentConfig cfg = AgentConfig.parse("repository=" + tmp.resolve("repo") + ",key-file=" + tmp.resolve("key") + opts,
                new Properties(), Map.of());
        Repository repo = RepositoryOpener.openOrCreate(cfg.repository, cfg.encrypted, cfg.keyFile);
        return new DatabaseRegistry(cfg, repo, n -> { });
    }


    private static long count(Connection c, String sql) throws Exception {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        }
    }

    @Test
    void syncCommitsAreRestorableAcrossCheckpointsAndReopen() throws Exception {
        DatabaseRegistry reg = registry(",mode=sync,checkpoint.interval=1h");
        Path db = tmp.resolve("trades.duckdb");
        String url = "jdbc:duckdb:" + db;
        Connection c = DriverManager.getConnection(url);
        reg.connectionOpened(c, url, false);
        exec(reg, c, "CREATE TABLE t(i INTEGER PRIMARY KEY, s VARCHAR)");
        for (int i = 0; i < 50; i++) exec(reg, c, "INSERT INTO t VALUES (" + i + ", 'v" + i + "')");
        reg.checkpointNow("trades.duckdb");
        Thread.sleep(500);
        for (int i = 50; i < 80; i++) exec(reg, c, "INSERT INTO t VALUES (" + i + ", 'w" + i + "')");
        exec(reg, c, "UPDATE t SET s = 'u' WHERE i < 10");
        exec(reg, c, "DELETE FROM t WHERE i >= 75");
        assertTrue(reg.status("trades.duckdb").healthy(), reg.status("trades.duckdb").healthReason());
        assertTrue(reg.status("trades.duckdb").currentEpoch() >= 2, "checkpoint opened a new epoch");
        reg.connectionClosed(c);
        c.close();

        // Reopen: the epoch continues (same base, WAL continues), more commits.
        Connection c2 = DriverManager.getConnection(url);
        reg.connectionOpened(c2, url, false);
        for (int i = 100; i < 110; i++) exec(reg, c2, "INSERT INTO t VALUES (" + i + ", 'x')");
        reg.connectionClosed(c2);
        c2.close();

        Path out = tmp.resolve("restored.duckdb");
        Restorer.Result r = AppCalls.restoreLatest(tmp.resolve("repo"), tmp.resolve("key"), "trades.duckdb", out);
        try (Connection rc = DriverManager.getConnection("jdbc:duckdb:" + out)) {
            assertEquals(85, count(rc, "SELECT count(*) FROM t"));
            assertEquals(10, count(rc, "SELECT count(*) FROM t WHERE s = 'u'"));
            assertEquals(10, count(rc, "SELECT count(*) FROM t WHERE i >= 100"));
        }
        assertTrue(r.commits() > 0);
        assertTrue(Files.notExists(Path.of(out + ".wal")));
    }

    @Test
    void concurrentCommitsWithAgentAndForeignCheckpointsAllRestore() throws Exception {
        DatabaseRegistry reg = registry(",mode=sync,checkpoint.interval=300ms");
        Path db = tmp.resolve("fills.duckdb");
        String url = "jdbc:duckdb:" + db;
        Connection c = DriverManager.getConnection(url);
        reg.connectionOpened(c, url, false);
        exec(reg, c, "CREATE TABLE f(id INTEGER PRIMARY KEY, thread INTEGER)");
        int threads = 4;
        int each = 150;
        java.util.List<Thread> ts = new java.util.ArrayList<>();
        java.util.concurrent.atomic.AtomicReference<Throwable> failure = new java.util.concurrent.atomic.AtomicReference<>();
        for (int t = 0; t < threads; t++) {
            final int tn = t;
            Connection tc = ((org.duckdb.DuckDBConnection) c).duplicate();
            reg.connectionDuplicated(c, tc);
            Thread th = new Thread(() -> {
                try {
                    for (int i = 0; i < each; i++) {
                        exec(reg, tc, "INSERT INTO f VALUES (" + (tn * 100000 + i) + ", " + tn + ")");
                        if (tn == 0 && i % 50 == 49) exec(reg, tc, "CHECKPOINT"); // the app's own checkpoint
                    }
                    reg.connectionClosed(tc);
                    tc.close();
                } catch (Throwable e) {
                    failure.set(e);
                }
            });
            th.start();
            ts.add(th);
        }
        for (Thread th : ts) th.join();
        if (failure.get() != null) throw new AssertionError(failure.get());
        DatabaseStatusView st = reg.status("fills.duckdb");
        assertTrue(st.healthy(), st.healthReason());
        assertTrue(st.currentEpoch() >= 3, "several epochs: " + st.currentEpoch());
        reg.connectionClosed(c);
        c.close();

        Path out = tmp.resolve("restored.duckdb");
        AppCalls.restoreLatest(tmp.resolve("repo"), tmp.resolve("key"), "fills.duckdb", out);
        try (Connection rc = DriverManager.getConnection("jdbc:duckdb:" + out)) {
            assertEquals(threads * each, count(rc, "SELECT count(*) FROM f"));
        }
    }

    /**
     * Attached to a running app: the WAL already holds optimistic writes (block pointers into the file) and the
     * connection the agent first sees is inside a manual transaction. The agent must checkpoint before its first
     * base, and commits must flow (sync mode) right after.
     */
    @Test
    void attachToARunningDatabaseWithOptimisticWrites() throws Exception {
        Path db = tmp.resolve("attach.duckdb");
        String url = "jdbc:duckdb:" + db;
        Connection c = DriverManager.getConnection(url);
        try (Statement s = c.createStatement()) {
            s.execute("PRAGMA disable_checkpoint_on_shutdown");
            s.execute("CREATE TABLE t(i BIGINT)");
        }
        c.setAutoCommit(false);
        try (Statement s = c.createStatement()) {
            s.execute("INSERT INTO t SELECT range FROM range(130000)"); // > one row group: optimistic write
        }
        c.commit();
        try (Statement s = c.createStatement()) {
            s.execute("INSERT INTO t VALUES (-1)"); // leave the connection inside a manual transaction
        }
        DatabaseRegistry reg = registry(",mode=sync,sync-timeout=5s");
        reg.beforeCall(c); // lazily registered at its first call, as after jcmd JVMTI.agent_load
        reg.afterCall(c);
        reg.beforeCall(c);
        c.commit();
        reg.afterCall(c);
        c.setAutoCommit(true);
        long t0 = System.nanoTime();
        for (int i = 0; i < 20; i++) exec(reg, c, "INSERT INTO t VALUES (" + (1000000 + i) + ")");
        long ms = (System.nanoTime() - t0) / 1_000_000;
        DatabaseStatusView st = reg.status("attach.duckdb");
        assertEquals(0, st.syncTimeouts(), "commits stalled: " + st);
        assertTrue(ms < 4000, "20 commits took " + ms + " ms");
        reg.connectionClosed(c);
        c.close();
        Path out = tmp.resolve("attach-restored.duckdb");
        AppCalls.restoreLatest(tmp.resolve("repo"), tmp.resolve("key"), "attach.duckdb", out);
        try (Connection rc = DriverManager.getConnection("jdbc:duckdb:" + out)) {
            assertEquals(130000 + 1 + 20, count(rc, "SELECT count(*) FROM t"));
        }
    }
}
