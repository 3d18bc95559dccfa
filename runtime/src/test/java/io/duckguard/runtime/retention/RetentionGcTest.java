package io.duckguard.runtime.retention;

import static io.duckguard.runtime.testing.AppCalls.exec;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.runtime.capture.DatabaseRegistry;
import io.duckguard.runtime.repository.DatabaseHistory;
import io.duckguard.runtime.repository.Repository;
import io.duckguard.runtime.repository.RepositoryOpener;
import io.duckguard.runtime.restore.DuckDbDriver;
import io.duckguard.runtime.restore.RestoreTarget;
import io.duckguard.runtime.restore.Restorer;
import io.duckguard.runtime.verify.Verifier;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * Invariant 8: retention and garbage collection never remove what a retained restore point needs, and a kill -9
 * in the middle of a collection leaves a repository that verifies and restores every retained point.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RetentionGcTest {
    static final String DB = "ledger.duckdb";
    static final int EPOCHS = 8;

    @TempDir
    static Path tmp;

    Path original;
    Path key;
    /** Fingerprint of each snapshot (by epoch) and of the final state. */
    final Map<Long, String> snapshotState = new HashMap<>();
    String finalState;
    long newestEpoch;

    @BeforeAll
    void produceHistory() throws Exception {
        original = tmp.resolve("original");
        key = tmp.resolve("key");
        DatabaseRegistry reg = io.duckguard.runtime.testing.AppCalls.agent(original, key, "");
        Path db = tmp.resolve(DB);
        String url = "jdbc:duckdb:" + db;
        Random rnd = new Random(5);
        try (Connection c = DriverManager.getConnection(url)) {
            reg.connectionOpened(c, url, false);
            exec(reg, c, "CREATE TABLE t(i BIGINT, pad VARCHAR)");
            for (int e = 0; e < EPOCHS; e++) {
                // Enough rows per epoch that every epoch changes a few blocks (several packs over the history).
                exec(reg, c, "INSERT INTO t SELECT range + " + e * 100000 + ", md5(range::VARCHAR) FROM range(20000)");
                exec(reg, c, "DELETE FROM t WHERE i % 7 = " + rnd.nextInt(7));
                long epoch = reg.snapshotNow(DB, Duration.ofMinutes(1));
                snapshotState.put(epoch, fingerprint(c));
                newestEpoch = epoch;
            }
            exec(reg, c, "INSERT INTO t VALUES (-1, 'last')");
            finalState = fingerprint(c);
            reg.connectionClosed(c);
        }
    }


    static String fingerprint(Connection c) throws Exception {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT count(*), sum(i), min(i) FROM t")) {
            rs.next();
            return rs.getLong(1) + "/" + rs.getLong(2) + "/" + rs.getLong(3);
        }
    }

    private Path copyOfHistory(String name) throws IOException {
        return io.duckguard.runtime.testing.TestFiles.copyTree(original, tmp.resolve(name));
    }

    private String restore(Repository repo, String target) throws Exception {
        Path out = tmp.resolve("r-" + System.nanoTime() + ".duckdb");
        new Restorer(repo.database(DB), m -> { }).restore(RestoreTarget.parse(target), out, false, DuckDbDriver.find(null, null, null));
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + out)) {
            return fingerprint(c);
        }
    }

    /** Everything the policy keeps, checked against what the database really was. */
    private void assertRetainedPointsRestore(Repository repo, RetentionPolicy.Plan plan) throws Exception {
        assertEquals(finalState, restore(repo, "latest"));
        List<Long> kept = new ArrayList<>(plan.keepWhole());
        kept.addAll(plan.keepSnapshotOnly());
        for (long e : kept) {
            if (snapshotState.containsKey(e)) assertEquals(snapshotState.get(e), restore(repo, "snapshot:" + e), "snapshot:" + e);
        }
    }

    @Test
    void retentionKeepsWindowAndNewestSnapshotsAndGcFreesTheRest() throws Exception {
        Repository repo = RepositoryOpener.openExisting(copyOfHistory("plain"), key);
        DatabaseHistory h = repo.database(DB);
        // A window that ended before the history: only the newest epoch stays whole, plus 3 snapshots.
        RetentionPolicy policy = new RetentionPolicy(Duration.ofMillis(1), 3, 0, 0);
        RetentionPolicy.Plan plan = policy.plan(h, Instant.now().plusSeconds(3600));
        assertEquals(List.of(newestEpoch), plan.keepWhole());
        assertEquals(2, plan.keepSnapshotOnly().size(), plan.toString());
        long packsBefore = countPacks(repo);
        GarbageCollector.Report dry = new GarbageCollector(repo, Duration.ZERO, m -> { }).run(policy, true);
        assertEquals(countPacks(repo), packsBefore, "a dry run removes nothing");
        assertFalse(dry.removedEpochs().isEmpty());
        // Epochs older than the retained ones (and the epoch 0/first snapshot) are gone after a real run.
        GarbageCollector.Report r = new GarbageCollector(repo, Duration.ZERO, m -> { }).run(
                new RetentionPolicy(Duration.ofMillis(1), 3, 0, 0), false);
        assertEquals(dry.removedEpochs(), r.removedEpochs());
        assertTrue(r.packsRemoved() > 0, r.toString());
        assertTrue(countPacks(repo) < packsBefore);
        assertTrue(new Verifier(repo, m -> { }).run(true).ok());
        assertRetainedPointsRestore(repo, plan);
        long dropped = plan.dropEpoch().get(0);
        Exception e = assertThrows(Exception.class, () -> restore(repo, "snapshot:" + dropped));
        assertTrue(e.getMessage().contains("not in the repository"), e.getMessage());
        long snapOnly = plan.keepSnapshotOnly().get(0);
        assertThrows(Exception.class, () -> restore(repo, "commit:" + snapOnly + ".1"), "its WAL went with retention");
    }

    @Test
    void theDefaultPolicyKeepsEverythingRecent() throws Exception {
        Repository repo = RepositoryOpener.openExisting(copyOfHistory("recent"), key);
        long packs = countPacks(repo);
        GarbageCollector.Report r = new GarbageCollector(repo, Duration.ZERO, m -> { })
                .run(new RetentionPolicy(Duration.ofHours(1), 10, 0, 0), false);
        assertEquals(List.of(), r.removedEpochs());
        assertEquals(packs, countPacks(repo));
        for (long e : snapshotState.keySet()) assertEquals(snapshotState.get(e), restore(repo, "snapshot:" + e));
        // verify --read-data --subset: a deterministic share of the blocks, each read once.
        Verifier.Report all = new Verifier(repo, m -> { }).run(true, 100);
        Verifier.Report some = new Verifier(repo, m -> { }).run(true, 20);
        assertTrue(all.ok() && some.ok());
        assertTrue(some.blocksChecked() > 0 && some.blocksChecked() < all.blocksChecked(), some + " vs " + all);
    }

    /**
     * Invariant 8 when a database's database.properties is gone (damage, a careless cleanup): its snapshots still
     * need their packs. GC must not take them for garbage, and verify must say what is missing.
     */
    @Test
    void aDatabaseWithoutItsPropertiesFileKeepsItsPacks() throws Exception {
        Path dir = copyOfHistory("no-props");
        Files.delete(dir.resolve("databases").resolve(DB).resolve("database.properties"));
        Repository repo = RepositoryOpener.openExisting(dir, key);
        long packs = countPacks(repo);
        GarbageCollector.Report r = new GarbageCollector(repo, Duration.ZERO, m -> { })
                .run(new RetentionPolicy(Duration.ofHours(1), 10, 0, 0), false);
        assertEquals(0, r.packsRemoved(), r.toString());
        assertEquals(packs, countPacks(repo));
        Verifier.Report v = new Verifier(repo, m -> { }).run(false);
        assertEquals(1, v.problems().size(), v.problems().toString());
        assertTrue(v.problems().get(0).object().endsWith(DB + "/database.properties"), v.problems().toString());
    }

    /** kill -9 a real `gc` process at random moments (slowed per deletion so the kill lands inside it). */
    @Test
    void killNineDuringGcLeavesAVerifiableRepositoryThatRestoresEveryRetainedPoint() throws Exception {
        Random rnd = new Random(Long.getLong("duckguard.test.seed", System.nanoTime()));
        RetentionPolicy policy = new RetentionPolicy(Duration.ofMillis(1), 3, 0, 0);
        for (int i = 0; i < 10; i++) {
            Path dir = copyOfHistory("kill-" + i);
            Repository repo = RepositoryOpener.openExisting(dir, key);
            RetentionPolicy.Plan plan = policy.plan(repo.database(DB), Instant.now().plusSeconds(3600));
            Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "-Dduckguard.test.gc-step-delay-ms=40", "-cp", System.getProperty("java.class.path"),
                    "io.duckguard.runtime.cli.Cli", "gc", "--repository", dir.toString(), "--key-file", key.toString(),
                    "--window", "1ms", "--snapshots", "3", "--grace", "0s")
                    .redirectErrorStream(true).redirectOutput(tmp.resolve("gc-" + i + ".log").toFile()).start();
            Thread.sleep(300 + rnd.nextInt(1000));
            p.destroyForcibly().waitFor();
            Verifier.Report v = new Verifier(repo, m -> { }).run(true);
            assertTrue(v.ok(), "after kill " + i + ": " + v.problems());
            assertRetainedPointsRestore(repo, plan);
            // Finishing the collection afterwards is safe as well.
            new GarbageCollector(repo, Duration.ZERO, m -> { }).run(policy, false);
            assertTrue(new Verifier(repo, m -> { }).run(false).ok());
            assertEquals(finalState, restore(repo, "latest"));
        }
    }

    private static long countPacks(Repository repo) throws IOException {
        try (Stream<Path> s = Files.walk(repo.packsDir())) {
            return s.filter(Files::isRegularFile).count();
        }
    }
}
