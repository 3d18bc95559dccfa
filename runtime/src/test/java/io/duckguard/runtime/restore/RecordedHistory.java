package io.duckguard.runtime.restore;

import io.duckguard.runtime.capture.DatabaseRegistry;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;

/**
 * Test fixture: a real repository written in-process, with the test playing the agent's advice around real DuckDB
 * calls (as in InProcessCaptureTest), and a record of what the database looked like after every commit, so that
 * any restore point can be checked against the truth.
 *
 * <p>{@code states.get(e).get(n)} is the {@link #fingerprint} after commit n of epoch e (n = 0: its snapshot).
 * {@code times.get(e).get(n)} is a wall-clock time at which commit n was acknowledged and commit n+1 not yet made.
 */
public final class RecordedHistory {
    public static final String DB = "trades.duckdb";

    public final Path repository;
    public final Path keyFile;
    public final Path source;
    public final List<List<String>> states = new ArrayList<>();
    public final List<List<Long>> times = new ArrayList<>();

    private final DatabaseRegistry registry;
    private final Connection conn;

    private RecordedHistory(Path dir, String options) throws Exception {
        this.repository = dir.resolve("repo");
        this.keyFile = dir.resolve("repo.key");
        this.source = dir.resolve(DB);
        registry = io.duckguard.runtime.testing.AppCalls.agent(repository,
                options.contains("encryption=none") ? null : keyFile, options);
        String url = "jdbc:duckdb:" + source;
        conn = DriverManager.getConnection(url);
        registry.connectionOpened(conn, url, false);
        states.add(null); // epochs count from 1
        times.add(null);
        startEpoch(fingerprint(conn));
    }

    /**
     * Three epochs: table creation and inserts; inserts, update, delete, a multi-statement transaction, a CTAS and
     * a sequence; then a few more inserts. {@code options} are extra agent options (",encryption=none").
     */
    public static RecordedHistory produce(Path dir, String options) throws Exception {
        RecordedHistory h = new RecordedHistory(dir, options);
        h.commit("CREATE TABLE t(i INTEGER PRIMARY KEY, s VARCHAR)");
        for (int i = 0; i < 4; i++) h.commit("INSERT INTO t VALUES (" + i + ", 'a" + i + "')");
        h.checkpoint();
        for (int i = 4; i < 7; i++) h.commit("INSERT INTO t VALUES (" + i + ", 'b" + i + "')");
        h.commit("UPDATE t SET s = s || '!' WHERE i % 2 = 0");
        h.commit("DELETE FROM t WHERE i = 1");
        h.transaction("INSERT INTO t VALUES (100, 'tx1')", "INSERT INTO t VALUES (101, 'tx2')", "UPDATE t SET s = 'tx' WHERE i = 0");
        h.commit("CREATE TABLE u AS SELECT i, i * 2 AS j FROM range(1000) r(i)");
        h.commit("CREATE SEQUENCE seq START 10");
        h.checkpoint();
        for (int i = 7; i < 10; i++) h.commit("INSERT INTO t VALUES (nextval('seq') + " + i * 100 + ", 'c" + i + "')");
        h.close();
        return h;
    }

    public int epochs() {
        return states.size() - 1;
    }

    public String last() {
        List<String> e = states.get(epochs());
        return e.get(e.size() - 1);
    }

    private void startEpoch(String state) {
        states.add(new ArrayList<>(List.of(state)));
        times.add(new ArrayList<>(List.of(System.currentTimeMillis())));
    }

    private void exec(String sql) throws SQLException {
        registry.beforeCall(conn);
        try (Statement s = conn.createStatement()) {
            s.execute(sql);
        } finally {
            registry.afterCall(conn); // sync mode: returns once the commit is durable in the repository
        }
    }

    /** One autocommit statement = one commit; then record the state it left. */
    private void commit(String sql) throws Exception {
        exec(sql);
        recordCommit();
    }

    private void transaction(String... statements) throws Exception {
        exec("BEGIN");
        for (String s : statements) exec(s);
        exec("COMMIT");
        recordCommit();
    }

    private void recordCommit() throws Exception {
        states.get(epochs()).add(fingerprint(conn));
        Thread.sleep(3); // keeps commit times apart, so time targets are unambiguous
        times.get(epochs()).add(System.currentTimeMillis());
        Thread.sleep(3);
    }

    /** Asks the agent for a checkpoint and waits until the next epoch is open: later commits belong to it. */
    private void checkpoint() throws Exception {
        long next = epochs() + 1;
        registry.checkpointNow(DB);
        long deadline = System.currentTimeMillis() + 20_000;
        while (registry.status(DB).currentEpoch() < next) {
            if (System.currentTimeMillis() > deadline) throw new AssertionError("no checkpoint: " + registry.status(DB));
            Thread.sleep(5);
        }
        startEpoch(last());
    }

    private void close() throws Exception {
        if (!registry.status(DB).healthy()) throw new AssertionError(registry.status(DB).healthReason());
        registry.connectionClosed(conn); // ships the rest and stops
        conn.close();
    }

    /** Everything a restore must reproduce, as one comparable string: tables, rows, the sequence, the view. */
    public static String fingerprint(Connection c) throws SQLException {
        StringBuilder sb = new StringBuilder();
        try (Statement s = c.createStatement()) {
            List<String> tables = new ArrayList<>();
            try (ResultSet rs = s.executeQuery("SELECT table_name FROM information_schema.tables ORDER BY 1")) {
                while (rs.next()) tables.add(rs.getString(1));
            }
            sb.append(tables);
            if (tables.contains("t")) {
                try (ResultSet rs = s.executeQuery("SELECT count(*), coalesce(string_agg(i || '=' || s, ',' ORDER BY i), '') FROM t")) {
                    rs.next();
                    sb.append(" t:").append(rs.getLong(1)).append(':').append(rs.getString(2));
                }
            }
            if (tables.contains("u")) {
                try (ResultSet rs = s.executeQuery("SELECT count(*), sum(j) FROM u")) {
                    rs.next();
                    sb.append(" u:").append(rs.getLong(1)).append(':').append(rs.getLong(2));
                }
            }
            try (ResultSet rs = s.executeQuery("SELECT count(*) FROM duckdb_sequences() WHERE sequence_name = 'seq'")) {
                rs.next();
                sb.append(" seq:").append(rs.getLong(1));
            }
        }
        return sb.toString();
    }

    /** The fingerprint of a database file, opened and closed again. */
    public static String fingerprint(Path file) throws SQLException {
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + file)) {
            return fingerprint(c);
        }
    }
}
