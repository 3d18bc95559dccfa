package io.duckguard.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.duckguard.it.harness.ChildJvm;
import io.duckguard.it.harness.Cli;
import io.duckguard.it.harness.FsyncTrace;
import io.duckguard.it.harness.WorkDirs;
import io.duckguard.it.host.TradingApp;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Invariant 5 at the level a power cut sees: every object reaches the repository as tmp -> fsync -> rename -> fsync
 * directory, every new directory is made durable in its parent, and the append-only WAL log is synced after each
 * append. The kill -9 tests cannot see a missing fsync (the page cache outlives the process); these read the real
 * processes' system calls with strace: the agent in a trading app (WAL shipping, checkpoints, snapshots, key
 * records), then the CLI's snapshot, key rotation and garbage collection on the same repository, and a restore.
 */
class FsyncOrderTest {
    private static final Duration START = Duration.ofSeconds(60);

    @Test
    @Timeout(240)
    void agentAndCliWriteTheRepositoryInCrashSafeOrder() throws Exception {
        assumeTrue(FsyncTrace.available(), "strace cannot trace a child here");
        Path dir = WorkDirs.create(FsyncOrderTest.class, "order").toAbsolutePath();
        Path db = dir.resolve("trade_data.duckdb"), repo = dir.resolve("repo");
        // No key-file: the agent creates the key in its default place, ~/.duckguard/keys/<id>.key, directories and
        // all. Losing it in a power cut would make the repository unreadable, so its writes are checked too.
        Path home = dir.resolve("home");
        String userHome = "-Duser.home=" + home;

        Path appTrace = dir.resolve("app.strace");
        try (ChildJvm.Handle app = new ChildJvm().duckdbVersion(ChildJvm.duckdbVersion()).prefix(FsyncTrace.prefix(appTrace))
                .agent("repository=" + repo + ",mode=sync,checkpoint.interval=300ms").jvmArgs(userHome)
                .mainClass(TradingApp.class.getName())
                .args("--db", db.toString(), "--threads", "2", "--seconds", "4", "--big-txn-rows", "0")
                .workDir(dir).name("app").start()) {
            assertEquals(0, app.waitFor(START), app::output);
            assertTrue(AgentRuns.noFatal(app), app::output);
        }
        FsyncTrace.Summary agent = FsyncTrace.check(appTrace, repo);
        assertEquals(List.of(), agent.violations(), "agent: " + agent);
        // Not vacuous: several snapshots (packs, manifests, key records renamed into place) and WAL appends.
        assertTrue(agent.renames() >= 6 && agent.writes() >= 20 && agent.syncs() >= 20, "agent: " + agent);
        // Invariant 1, sync mode: no commit acknowledged before a repository WAL-log record written after it was synced.
        FsyncTrace.Acks acks = FsyncTrace.checkSyncCommits(appTrace, Path.of(db + ".wal"), Path.of(db + ".acks"), repo);
        assertEquals(List.of(), acks.violations(), "sync mode: " + acks.checked() + " acknowledgements checked");
        assertTrue(acks.checked() >= 50, "sync mode: only " + acks.checked() + " acknowledgements seen");
        assertTrue(acks.overlapping() * 10 <= acks.checked(), "sync mode: " + acks.overlapping() + " of " + acks.checked()
                + " acknowledgements are proven only by a record written while their WAL write was still shown running");
        FsyncTrace.Summary keyFile = FsyncTrace.check(appTrace, home);
        assertEquals(List.of(), keyFile.violations(), "master key: " + keyFile);
        Path key;
        try (var keys = Files.list(home.resolve(".duckguard/keys"))) {
            key = keys.findFirst().orElseThrow();
        }

        Path newKey = dir.resolve("key2");
        String[][] verbs = {
            {"snapshot", "--repository", repo.toString(), "--key-file", key.toString(), "--database-file", db.toString(),
                "--duckdb-jar", ChildJvm.duckdbJar(ChildJvm.duckdbVersion()).toString()},
            {"keys", "rotate", "--repository", repo.toString(), "--key-file", key.toString(), "--new-key-file", newKey.toString()},
            {"gc", "--repository", repo.toString(), "--key-file", newKey.toString(), "--window", "0s", "--snapshots", "1",
                "--grace", "0s"},
        };
        for (String[] verb : verbs) {
            Path trace = dir.resolve(verb[0] + ".strace");
            Cli.Result r = new Cli().workDir(dir).jvmArgs(userHome).prefix(FsyncTrace.prefix(trace))
                    .timeout(Duration.ofMinutes(2)).run(verb);
            assertEquals(0, r.exitCode(), r::output);
            FsyncTrace.Summary s = FsyncTrace.check(trace, repo);
            assertEquals(List.of(), s.violations(), verb[0] + ": " + s);
            assertTrue(s.renames() > 0 && s.syncs() > 0, verb[0] + " wrote nothing into the repository? " + s);
            assertEquals(List.of(), FsyncTrace.check(trace, newKey).violations(), verb[0] + ", the new key file");
        }
        // A restore's output: the file is synced (after DuckDB's replay and checkpoint) before it is renamed into
        // place, and the directory after.
        Path out = dir.resolve("restored.duckdb"), trace = dir.resolve("restore.strace");
        Cli.Result r = new Cli().workDir(dir).jvmArgs(userHome).prefix(FsyncTrace.prefix(trace)).timeout(Duration.ofMinutes(2))
                .run("restore", "--repository", repo.toString(), "--key-file", newKey.toString(), "--output", out.toString());
        assertEquals(0, r.exitCode(), r::output);
        FsyncTrace.Summary restore = FsyncTrace.check(trace, out);
        assertEquals(List.of(), restore.violations(), "restore: " + restore);
        assertEquals(1, restore.renames(), "restore: " + restore);
    }

    /** The checker itself: each rule catches the order it forbids, and passes the one it asks for. */
    @Test
    void theCheckerCatchesEachWrongOrder() {
        String root = "/r";
        List<String> good = List.of(
                "1 mkdir(\"/r/d\", 0777) = 0",
                "1 fsync(5</r>) = 0",
                "1 openat(AT_FDCWD</w>, \"/r/d/o.tmp-1\", O_WRONLY|O_CREAT|O_EXCL, 0666) = 6</r/d/o.tmp-1>",
                "1 write(6</r/d/o.tmp-1>, \"\"..., 10) = 10",
                "2 fsync(6</r/d/o.tmp-1> <unfinished ...>",
                "1 write(7</r/d/wal>, \"\"..., 10) = 10",
                "2 <... fsync resumed>) = 0",
                "1 rename(\"/r/d/o.tmp-1\", \"/r/d/o\") = 0",
                "1 fdatasync(7</r/d/wal>) = 0",
                "1 fsync(8</r/d>) = 0");
        assertEquals(List.of(), FsyncTrace.check(good, root).violations());

        // The fsync began before the write it must cover had ended (another thread): not durable.
        List<String> syncBeforeWrite = List.of(
                "2 fsync(6</r/d/o.tmp-1> <unfinished ...>",
                "1 write(6</r/d/o.tmp-1>, \"\"..., 10) = 10",
                "2 <... fsync resumed>) = 0",
                "1 rename(\"/r/d/o.tmp-1\", \"/r/d/o\") = 0",
                "1 fsync(8</r/d>) = 0");
        assertViolation(syncBeforeWrite, "renamed before it was fsynced: /r/d/o.tmp-1");
        List<String> renameFirst = List.of(
                "1 write(6</r/d/o.tmp-1>, \"\"..., 10) = 10",
                "1 rename(\"/r/d/o.tmp-1\", \"/r/d/o\") = 0",
                "1 fsync(6</r/d/o>) = 0",
                "1 fsync(8</r/d>) = 0");
        assertViolation(renameFirst, "renamed before it was fsynced: /r/d/o.tmp-1");
        List<String> noDirSync = List.of(
                "1 write(6</r/d/o.tmp-1>, \"\"..., 10) = 10",
                "1 fsync(6</r/d/o.tmp-1>) = 0",
                "1 rename(\"/r/d/o.tmp-1\", \"/r/d/o\") = 0");
        assertViolation(noDirSync, "renamed into place but its directory was never fsynced after: /r/d/o");
        assertViolation(List.of("1 mkdir(\"/r/d\", 0777) = 0"), "directory created but its directory was never fsynced after: /r/d");
        assertViolation(List.of("1 write(7</r/d/wal>, \"\"..., 10) = 10", "1 fsync(7</r/d/other>) = 0"),
                "written and never fsynced after: /r/d/wal");
        // Outside the root, and failed calls, are not its business.
        assertEquals(List.of(), FsyncTrace.check(List.of("1 write(7</tmp/x>, \"\"..., 10) = 10",
                "1 mkdir(\"/r/e\", 0777) = -1 EEXIST (File exists)"), root).violations());
    }

    /** The sync-mode check: the agent's record must be written after the commit's WAL and synced before the ack. */
    @Test
    void theSyncCommitCheckerCatchesAnEarlyAcknowledgement() {
        String wal = "/d/t.duckdb.wal", acks = "/d/t.duckdb.acks", log = "/d/repo/databases/t/epochs/1/wal";
        String commit = "7 write(5<" + wal + ">, \"\"..., 300) = 300";
        String record = "9 pwrite64(6<" + log + ">, \"\"..., 400, 0) = 400";
        String sync = "9 fdatasync(6<" + log + ">) = 0";
        String ack = "7 write(8<" + acks + ">, \"\"..., 40) = 40";
        // The second ack is a rollback's: no WAL since the last ack, not checked.
        FsyncTrace.Acks ok = FsyncTrace.checkSyncCommits(List.of(commit, record, sync, ack, ack), wal, acks, "/d/repo");
        assertEquals(List.of(), ok.violations());
        assertEquals(1, ok.checked());
        List<List<String>> early = List.of(
                List.of(commit, record, ack, sync), // acknowledged before the record was synced
                List.of(record, commit, sync, ack)); // the only record was written before the commit
        for (List<String> trace : early) {
            assertEquals(1, FsyncTrace.checkSyncCommits(trace, wal, acks, "/d/repo").violations().size(), trace.toString());
        }
        // strace shows the commit's write as running when the record is written (its end logged late): counted
        // apart, not a violation; synced only after the acknowledgement, it still is one.
        String begins = "7 write(5<" + wal + ">, \"\"..., 300 <unfinished ...>";
        String ends = "7 <... write resumed>) = 300";
        FsyncTrace.Acks late = FsyncTrace.checkSyncCommits(List.of(begins, record, ends, sync, ack), wal, acks, "/d/repo");
        assertEquals(List.of(), late.violations());
        assertEquals(1, late.overlapping());
        assertEquals(1, FsyncTrace.checkSyncCommits(List.of(begins, record, ends, ack, sync), wal, acks, "/d/repo")
                .violations().size());
    }

    private static void assertViolation(List<String> trace, String expected) {
        List<String> v = FsyncTrace.check(trace, "/r").violations();
        assertTrue(v.size() == 1 && v.get(0).startsWith(expected), v.toString());
    }
}
