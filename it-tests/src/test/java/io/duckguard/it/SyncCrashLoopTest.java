package io.duckguard.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.it.harness.ChildJvm;
import io.duckguard.it.harness.Cli;
import io.duckguard.it.harness.WorkDirs;
import io.duckguard.it.host.ReferenceState.Verification;
import io.duckguard.it.host.TradingApp;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Invariant 1 in sync mode, the way it fails in production: the app is killed with kill -9 at random moments
 * (during small commits, batches, Appender flushes, the big transaction, DDL, checkpoints), restarted on the same
 * files (so the agent must reconcile with what it already shipped), killed again, and then the disk with the
 * database "dies". The restore from the repository must hold every transaction whose commit had returned to the
 * app, none partially, none that rolled back.
 *
 * <p>6 rounds x 2 kills per DuckDB version: 24 kills per run of the suite. Rerun one with the printed seed.
 */
class SyncCrashLoopTest {
    static final Duration START = Duration.ofSeconds(60);
    static final int ROUNDS = Integer.getInteger("duckguard.it.crash.rounds", 6);

    static Stream<String> versions() {
        return ChildJvm.duckdbVersions().stream();
    }

    @ParameterizedTest(name = "DuckDB {0}")
    @MethodSource("versions")
    @Timeout(600)
    void killNineThenDiskLossRestoresEveryAcknowledgedCommit(String version) throws Exception {
        long seed0 = Long.getLong("duckguard.it.seed", System.nanoTime());
        for (int round = 0; round < ROUNDS; round++) {
            runRound(version, seed0 + round, round);
        }
    }

    private static void runRound(String version, long seed, int round) throws Exception {
        Random rnd = new Random(seed);
        String ctx = "DuckDB " + version + " round " + round + " seed " + seed + " (rerun: -Dduckguard.it.seed=" + seed
                + " -Dduckguard.it.crash.rounds=1)";
        Path dir = WorkDirs.create(SyncCrashLoopTest.class, "crash-" + version + "-" + round);
        Path db = dir.resolve("trade_data.duckdb");
        Path ack = dir.resolve("acks.log");
        Path repo = dir.resolve("backup");
        Path key = dir.resolve("key");
        // Short checkpoint interval: kills also land in checkpoints and snapshots, and runs span several epochs.
        String opts = AgentRuns.options(repo, key, "mode=sync,checkpoint.interval=" + (300 + rnd.nextInt(1500)) + "ms");
        for (int segment = 0; segment < 2; segment++) {
            long bigAt = 5 + rnd.nextInt(150);
            try (ChildJvm.Handle app = new ChildJvm().duckdbVersion(version).agent(opts)
                    .mainClass(TradingApp.class.getName())
                    .args("--db", db.toString(), "--ack-log", ack.toString(), "--threads", "4", "--seconds", "120",
                            "--seed", Long.toString(seed * 31 + segment), "--ddl", "--big-txn-at", Long.toString(bigAt),
                            "--checkpoint-every", rnd.nextBoolean() ? "0" : Integer.toString(100 + rnd.nextInt(200)))
                    .workDir(dir).name("app-" + segment).start()) {
                app.waitForLine("^READY$", START);
                if (rnd.nextInt(3) == 0) {
                    app.waitForLine("^BIG_TXN ", START); // land right after the big transaction is acknowledged
                    Thread.sleep(rnd.nextInt(300));
                } else {
                    Thread.sleep(500 + rnd.nextInt(3500)); // anywhere, the big transaction may be in flight
                }
                assertTrue(app.isAlive(), () -> ctx + ": the app stopped by itself\n" + app.output());
                assertEquals(137, app.kill9(), () -> ctx + ": not killed by SIGKILL\n" + app.output());
                AgentRuns.assertNoFatal(app, ctx);
                assertTrue(app.stderr().stream().noneMatch(l -> l.contains(" ERROR ")), () -> ctx + ": agent error\n" + app.output());
            }
        }
        // The disk with the database dies.
        Files.deleteIfExists(db);
        Files.deleteIfExists(Path.of(db + ".wal"));
        Path restored = dir.resolve("restored.duckdb");
        Cli.Result r = AgentRuns.cli(dir, "restore", "--repository", repo.toString(), "--key-file", key.toString(),
                "--to", "latest", "--output", restored.toString());
        assertEquals(0, r.exitCode(), () -> ctx + ": restore failed\n" + r.output());
        assertTrue(r.stdoutText().contains("restored trade_data.duckdb"), () -> ctx + "\n" + r.output());
        Verification v = Inspections.inspect(version, restored, ack, false, ctx).verification();
        assertTrue(v.acked() > 0, ctx + ": nothing acknowledged");
        assertEquals(List.of(), v.missingAcked(), () -> ctx + ": acknowledged commits lost: " + v.describe());
        assertEquals(List.of(), v.partial(), () -> ctx + ": partial transactions: " + v.describe());
        assertEquals(List.of(), v.rolledBackButPresent(), () -> ctx + ": " + v.describe());
        assertTrue(v.ok(), () -> ctx + ": " + v.describe());
    }
}
