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
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Invariant 5 where it is hardest: kill -9 while the agent checkpoints (gate closed) or snapshots (the file being
 * read into packs), with the app issuing its own CHECKPOINT and FORCE CHECKPOINT meanwhile. Fault-injection delays
 * (sleeps only) widen those windows so the kills land inside them. After every kill the repository verifies; at
 * the end every listed snapshot and a sample of commits of every epoch restore, and latest holds every
 * acknowledged transaction.
 */
class CheckpointCrashTest {
    static final Duration START = Duration.ofSeconds(60);
    static final int KILLS = 5;

    static Stream<Arguments> cases() {
        List<Arguments> a = new ArrayList<>();
        for (String where : new String[] {"snapshot", "checkpoint"}) {
            for (String v : ChildJvm.duckdbVersions()) a.add(Arguments.of(where, v));
        }
        return a.stream();
    }

    @ParameterizedTest(name = "kill during {0}, DuckDB {1}")
    @MethodSource("cases")
    @Timeout(400)
    void killsDuringCheckpointsAndSnapshotsKeepEveryRestorePoint(String where, String version) throws Exception {
        long seed = Long.getLong("duckguard.it.seed", System.nanoTime());
        Random rnd = new Random(seed);
        String ctx = where + " DuckDB " + version + " seed " + seed;
        Path dir = WorkDirs.create(CheckpointCrashTest.class, where + "-" + version);
        Path db = dir.resolve("trade_data.duckdb");
        Path ack = dir.resolve("acks.log");
        Path repo = dir.resolve("backup");
        Path key = dir.resolve("key");
        String delay = where.equals("snapshot") ? "-Dduckguard.test.snapshot-chunk-delay-ms=25"
                : "-Dduckguard.test.checkpoint-delay-ms=400";
        String opts = AgentRuns.options(repo, key, "mode=sync,checkpoint.interval=300ms");
        Pattern marker = Pattern.compile(where.equals("snapshot") ? "snapshot \\d+ \\(" : "snapshot \\d+ \\(checkpoint\\)");
        for (int k = 0; k < KILLS; k++) {
            try (ChildJvm.Handle app = new ChildJvm().duckdbVersion(version).agent(opts).jvmArgs(delay)
                    .mainClass(TradingApp.class.getName())
                    .args("--db", db.toString(), "--ack-log", ack.toString(), "--threads", "4", "--seconds", "120",
                            "--seed", Long.toString(seed + k), "--big-txn-rows", k == 0 ? "130000" : "0",
                            "--checkpoint-every", "120")
                    .workDir(dir).name("app-" + k).start()) {
                app.waitForLine("^READY$", START);
                // Land inside: after a snapshot line the next checkpoint comes within the interval; the delays make
                // the checkpoint (gate closed) or the snapshot (reading chunks) last long enough to be hit.
                app.waitForStderrLine(marker.pattern(), START);
                Thread.sleep(300 + rnd.nextInt(500));
                assertEquals(137, app.kill9(), () -> ctx + "\n" + app.output());
                AgentRuns.assertNoFatal(app, ctx);
            }
            Cli.Result verify = AgentRuns.cli(dir, "verify", "--repository", repo.toString(), "--key-file", key.toString());
            assertEquals(0, verify.exitCode(), () -> ctx + ": repository does not verify after kill " + verify.output());
        }
        Cli.Result list = AgentRuns.cli(dir, "list", "--repository", repo.toString(), "--key-file", key.toString());
        assertEquals(0, list.exitCode(), list::output);
        List<long[]> epochs = new ArrayList<>(); // {epoch, commits}
        Matcher m = Pattern.compile("epoch (\\d+): snapshot:\\d+ .*?, (\\d+) commits").matcher(list.stdoutText());
        while (m.find()) epochs.add(new long[] {Long.parseLong(m.group(1)), Long.parseLong(m.group(2))});
        assertTrue(epochs.size() >= 3, () -> ctx + ": several epochs expected\n" + list.output());
        int restored = 0;
        for (long[] e : epochs) {
            List<String> targets = new ArrayList<>(List.of("snapshot:" + e[0]));
            if (e[1] > 0) targets.add("commit:" + e[0] + "." + (1 + rnd.nextInt((int) e[1])));
            for (String t : targets) {
                if (restored >= 8 && !t.startsWith("snapshot") && rnd.nextBoolean()) continue; // keep the test short
                Path out = dir.resolve("r-" + t.replace(':', '-') + ".duckdb");
                Cli.Result r = AgentRuns.cli(dir, "restore", "--repository", repo.toString(), "--key-file", key.toString(),
                        "--to", t, "--output", out.toString());
                assertEquals(0, r.exitCode(), () -> ctx + ": restore " + t + "\n" + r.output());
                restored++;
            }
        }
        Files.delete(db);
        Files.deleteIfExists(Path.of(db + ".wal"));
        Path latest = dir.resolve("restored.duckdb");
        Cli.Result r = AgentRuns.cli(dir, "restore", "--repository", repo.toString(), "--key-file", key.toString(),
                "--output", latest.toString());
        assertEquals(0, r.exitCode(), r::output);
        Verification v = Inspections.inspect(version, latest, ack, false, ctx).verification();
        assertTrue(v.ok(), () -> ctx + ": " + v.describe());
    }
}
