package io.duckguard.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.it.harness.ChildJvm;
import io.duckguard.it.harness.Cli;
import io.duckguard.it.harness.WorkDirs;
import io.duckguard.it.host.AckLog;
import io.duckguard.it.host.DbInspector;
import io.duckguard.it.host.Op;
import io.duckguard.it.host.ReferenceState;
import io.duckguard.it.host.ReferenceState.Verification;
import io.duckguard.it.host.StateDigest;
import io.duckguard.it.host.TradingApp;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.jar.Attributes;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import java.util.regex.MatchResult;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The host under test and the harness on their own, without the agent: what DuckDB guarantees by itself is the
 * baseline every agent test builds on. If these fail, an agent test failing says nothing about the agent.
 */
class HostAppTest {
    private static final Duration START = Duration.ofSeconds(30);

    static Stream<String> versions() {
        return ChildJvm.duckdbVersions().stream();
    }

    /**
     * kill -9 at a random moment after the big transaction and the DDL: reopening replays DuckDB's own WAL, and
     * every acknowledged transaction must be there, complete, and nothing rolled back.
     */
    @ParameterizedTest(name = "DuckDB {0}")
    @MethodSource("versions")
    @Timeout(90)
    void killNineLosesNoAcknowledgedTransaction(String version) throws Exception {
        long seed = Long.getLong("duckguard.it.seed", System.nanoTime());
        Random rnd = new Random(seed);
        String ctx = "DuckDB " + version + ", seed " + seed + " (rerun with -Dduckguard.it.seed=" + seed + ")";
        Path dir = WorkDirs.create(HostAppTest.class, "kill-" + version);
        Path db = dir.resolve("trade.duckdb");
        Path ack = dir.resolve("acks.log");
        long ddlAt = 10 + rnd.nextInt(60);
        long bigAt = 20 + rnd.nextInt(120);
        try (ChildJvm.Handle app = new ChildJvm().duckdbVersion(version).mainClass(TradingApp.class.getName())
                .args("--db", db.toString(), "--ack-log", ack.toString(), "--threads", "4", "--seconds", "60",
                        "--seed", Long.toString(seed), "--ddl", "--ddl-at", Long.toString(ddlAt),
                        "--big-txn-at", Long.toString(bigAt), "--checkpoint-every", "150")
                .workDir(dir).start()) {
            app.waitForLine("^READY$", START);
            app.waitForLine("^BIG_TXN ", START);
            app.waitForLine("^DDL ddl_index ", START);
            Thread.sleep(rnd.nextInt(1500));
            assertTrue(app.isAlive(), () -> ctx + ": the app stopped by itself\n" + app.output());
            assertEquals(137, app.kill9(), () -> ctx + ": not killed by SIGKILL\n" + app.output());
            AgentRuns.assertNoFatal(app, ctx);
        }

        Verification v = Inspections.inspect(version, db, ack, false, ctx).verification();
        assertTrue(v.acked() > 0, ctx + ": nothing acknowledged");
        assertEquals(List.of(), v.missingAcked(), () -> ctx + ": " + v.describe());
        assertEquals(List.of(), v.partial(), () -> ctx + ": " + v.describe());
        assertEquals(List.of(), v.rolledBackButPresent(), () -> ctx + ": " + v.describe());
        assertTrue(v.ok(), () -> ctx + ": " + v.describe());
        List<AckLog.Entry> log = AckLog.read(ack);
        assertTrue(log.stream().anyMatch(e -> e.opKind() == Op.BIG_TXN), ctx + ": big txn not in the ack log");
        assertTrue(log.stream().anyMatch(e -> e.opKind() == Op.DDL_INDEX), ctx + ": index DDL not in the ack log");
    }

    /** Same seed, one thread, same number of ops: the same database, twice (the agent's transparency test needs it). */
    @ParameterizedTest(name = "DuckDB {0}")
    @MethodSource("versions")
    @Timeout(90)
    void deterministicRunsGiveTheSameState(String version) throws Exception {
        Path dir = WorkDirs.create(HostAppTest.class, "determinism-" + version);
        List<String> digests = new ArrayList<>();
        List<List<String>> acks = new ArrayList<>();
        // Both runs at once (separate files): each is bound by fsync latency and JVM start, not by CPU.
        try (ChildJvm.Handle run1 = startDeterministic(version, dir, dir.resolve("run1.duckdb"),
                dir.resolve("run1.acks"), 300, 7);
             ChildJvm.Handle run2 = startDeterministic(version, dir, dir.resolve("run2.duckdb"),
                     dir.resolve("run2.acks"), 300, 7)) {
            awaitCompletion(run1, 300);
            awaitCompletion(run2, 300);
        }
        for (int run = 1; run <= 2; run++) {
            Path db = dir.resolve("run" + run + ".duckdb");
            Path ack = dir.resolve("run" + run + ".acks");
            String ctx = "DuckDB " + version + " run " + run;
            Inspections.Inspection i = Inspections.inspect(version, db, ack, true, ctx);
            assertTrue(i.verification().ok(), () -> ctx + ": " + i.verification().describe());
            digests.add(i.digest());
            // Same txn ids, ops and row counts in the same order; only the wall-clock column differs.
            acks.add(AckLog.read(ack).stream().map(e -> e.txnId() + " " + e.op() + " " + e.args()).toList());
        }
        assertEquals(acks.get(0), acks.get(1), "ack logs differ beyond their timestamps");
        assertEquals(digests.get(0), digests.get(1), "two runs with the same seed gave different databases");
    }

    /** The checks can fail: damage a finished database in each way they look for, and they must say so. */
    @Test
    @Timeout(60)
    void verificationAndDigestDetectDamage() throws Exception {
        String version = ChildJvm.duckdbVersion();
        Path dir = WorkDirs.create(HostAppTest.class, "damage");
        Path db = dir.resolve("trade.duckdb");
        Path ack = dir.resolve("acks.log");
        runToCompletion(version, dir, db, ack, 150, 11);
        List<AckLog.Entry> log = AckLog.read(ack);
        try (Connection c = Inspections.openInProcess(db)) {
            Verification clean = ReferenceState.verify(ack, c);
            assertTrue(clean.ok(), clean.describe());
            String before = StateDigest.digest(c);
            assertEquals(before, StateDigest.digest(c), "digest not stable");

            long tradeWithTwoFills = firstLong(c, "SELECT txn_id FROM fills f JOIN applied_txns a USING (txn_id)"
                    + " WHERE a.op = 'trade' GROUP BY txn_id HAVING count(*) >= 2 ORDER BY txn_id LIMIT 1");
            // An autocommit order insert (no marker) none of whose rows were updated or deleted since.
            long intactOrder = firstLong(c, "SELECT txn_id FROM orders WHERE txn_id NOT IN (SELECT txn_id FROM"
                    + " applied_txns) AND txn_id NOT IN (SELECT old_txn_id FROM superseded) GROUP BY txn_id"
                    + " ORDER BY txn_id LIMIT 1");
            long rolledBack = log.stream().filter(e -> e.opKind() == Op.ROLLBACK).findFirst().orElseThrow().txnId();
            long nextOrderId = StateDigest.sequenceNextValue(c, "order_id_seq");
            try (Statement s = c.createStatement()) {
                s.execute("DELETE FROM fills WHERE fill_id = (SELECT min(fill_id) FROM fills WHERE txn_id = "
                        + tradeWithTwoFills + ")");
                s.execute("DELETE FROM orders WHERE txn_id = " + intactOrder);
                s.execute("INSERT INTO applied_txns VALUES (" + rolledBack + ", 'rollback', 0, 0, TIMESTAMP"
                        + " '2025-01-01 00:00:00')");
                // An order id the sequence has not handed out yet: the next nextval() would collide with it.
                s.execute("INSERT INTO orders SELECT * REPLACE (" + (nextOrderId + 5) + " AS order_id, 999999999 AS"
                        + " txn_id) FROM orders LIMIT 1");
            }
            Verification damaged = ReferenceState.verify(ack, c);
            assertFalse(damaged.ok(), damaged.describe());
            assertTrue(damaged.partial().contains(tradeWithTwoFills), damaged.describe());
            assertTrue(damaged.missingAcked().contains(intactOrder), damaged.describe());
            assertEquals(List.of(rolledBack), damaged.rolledBackButPresent(), damaged.describe());
            assertEquals(1, damaged.unackedButPresent(), damaged.describe());
            assertTrue(damaged.problems().stream().anyMatch(p -> p.startsWith("sequence ")), damaged.describe());
            assertNotEquals(before, StateDigest.digest(c), "digest blind to changed rows");
            // The one-line form used across JVMs round-trips.
            Verification back = Verification.fromLine(damaged.toLine());
            assertEquals(damaged.missingAcked(), back.missingAcked());
            assertEquals(damaged.partial(), back.partial());
            assertEquals(damaged.problems().size(), back.problems().size());
        }
    }

    /**
     * The CLI helper on a stand-in jar (the agent jar may not be built): exit code and output are captured, a hung
     * CLI is killed at the timeout. Runs on Java 25 when it is installed, as the agent must work there too.
     */
    @Test
    @Timeout(60)
    void cliHelperCapturesExitAndOutputAndKillsAtTimeout() throws Exception {
        Path dir = WorkDirs.create(HostAppTest.class, "cli");
        Path java = ChildJvm.hasJava25() ? ChildJvm.JAVA_25 : ChildJvm.currentJavaHome();
        // DbInspector without arguments prints its usage and exits 64, before touching DuckDB.
        Path usageJar = standInJar(dir.resolve("usage.jar"), DbInspector.class.getName());
        Cli.Result usage = new Cli().javaHome(java).agentJar(usageJar).workDir(dir).run();
        assertEquals(64, usage.exitCode(), usage.output());
        assertFalse(usage.timedOut(), usage.output());
        assertTrue(usage.stderr().stream().anyMatch(l -> l.startsWith("usage: DbInspector")), usage.output());
        // The app without --txns/--seconds runs until stopped: the helper must kill it and say so.
        Path foreverJar = standInJar(dir.resolve("forever.jar"), TradingApp.class.getName());
        Cli.Result hung = new Cli().javaHome(java).agentJar(foreverJar).workDir(dir).timeout(Duration.ofSeconds(3))
                .run("--db", dir.resolve("forever.duckdb").toString(), "--threads", "1");
        assertTrue(hung.timedOut(), hung.output());
        assertEquals(-1, hung.exitCode(), hung.output());
        assertTrue(hung.stdout().contains("READY"), hung.output());
    }

    // ------------------------------------------------------------------ helpers

    /** A jar whose manifest runs {@code mainClass} with this module's classes, DuckDB and HdrHistogram. */
    private static Path standInJar(Path jar, String mainClass) throws Exception {
        Manifest m = new Manifest();
        m.getMainAttributes().put(Attributes.Name.MANIFEST_VERSION, "1.0");
        m.getMainAttributes().put(Attributes.Name.MAIN_CLASS, mainClass);
        m.getMainAttributes().put(Attributes.Name.CLASS_PATH, Stream.of(
                        ChildJvm.classpathEntryOf(TradingApp.class),
                        ChildJvm.duckdbJar(ChildJvm.duckdbVersion()),
                        ChildJvm.classpathEntryOf(org.HdrHistogram.Histogram.class))
                .map(p -> p.toUri().toString()).collect(java.util.stream.Collectors.joining(" ")));
        try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(jar), m)) {
            out.flush();
        }
        return jar;
    }

    private static void runToCompletion(String version, Path dir, Path db, Path ack, int txns, long seed)
            throws Exception {
        try (ChildJvm.Handle app = startDeterministic(version, dir, db, ack, txns, seed)) {
            awaitCompletion(app, txns);
        }
    }

    /** One writer thread, a fixed number of ops, a fixed seed: a reproducible run (see TradingApp). */
    private static ChildJvm.Handle startDeterministic(String version, Path dir, Path db, Path ack, int txns,
                                                      long seed) throws Exception {
        return new ChildJvm().duckdbVersion(version).mainClass(TradingApp.class.getName())
                .args("--db", db.toString(), "--ack-log", ack.toString(), "--threads", "1", "--txns",
                        Integer.toString(txns), "--seed", Long.toString(seed), "--ddl", "--checkpoint-every", "100")
                .workDir(dir).start();
    }

    private static void awaitCompletion(ChildJvm.Handle app, int txns) throws Exception {
        MatchResult done = app.waitForLine("^DONE (\\d+)$", Duration.ofSeconds(60));
        assertEquals(0, app.waitFor(Duration.ofSeconds(30)), app::output);
        assertTrue(Long.parseLong(done.group(1)) > txns / 2, app::output);
        assertTrue(app.stdout().stream().anyMatch(l -> l.startsWith("SUMMARY ") && l.contains(" failed=0 ")
                && l.contains(" big_txn=true") && l.contains(" ddl=true")), app::output);
    }

    private static long firstLong(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            assertTrue(rs.next(), "no row for " + sql);
            return rs.getLong(1);
        }
    }
}
