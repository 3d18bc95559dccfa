package io.duckguard.runtime.capture;

import static io.duckguard.runtime.testing.AppCalls.count;
import static io.duckguard.runtime.testing.AppCalls.exec;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.runtime.testing.AppCalls;
import io.duckguard.runtime.testing.TestFiles;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.sql.Connection;
import java.sql.DriverManager;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Invariant 1 against the app's own CHECKPOINT: DuckDB writes commits made while a checkpoint runs to
 * {@code <db>.wal.checkpoint} and renames it to {@code <db>.wal} at the end. A sync-mode commit made then must not
 * return before it is durable, whether it returns before or after that rename, although the old WAL is fully shipped
 * and the next base may be stored already. Each round copies the repository the instant the commit returns (what a
 * kill -9 at that moment would leave) and restores the copy. Found by SyncCrashLoopTest (an acknowledged Appender
 * batch lost).
 */
class AppCheckpointRaceTest {
    private static final String DB = "trades.duckdb";

    @TempDir
    Path tmp;
    private Path repoDir;
    private Path key;
    private DatabaseRegistry reg;
    private Connection app;
    private Connection other;

    /** Case (a): the commit returns after the rename, released by "the epoch advanced" before its WAL shipped. */
    @Test
    void aCommitMadeWhileTheAppCheckpointsIsDurableWhenItReturns() throws Exception {
        startApp("");
        exec(reg, app, "CREATE TABLE big AS SELECT range i, random() r FROM range(1500000)");
        exec(reg, app, "CREATE TABLE t(i INTEGER)");
        // Widen the gap between storing the next base and shipping the WAL that follows it: a commit released in
        // that gap (by "the epoch advanced") is in no base and not yet shipped. The old code fails round 0.
        ProtectedDatabase.afterBaseStored = () -> LockSupport.parkNanos(300_000_000L);
        try {
            for (int round = 0; round < 4; round++) {
                exec(reg, app, "UPDATE big SET r = r + 1 WHERE i % 3 = " + (round % 3)); // the checkpoint has work
                CompletableFuture<Void> checkpoint = appCheckpoint();
                Thread.sleep(20 + 10 * round);
                exec(reg, app, "INSERT INTO t VALUES (" + round + ")"); // sync mode: returns once durable
                Path copy = TestFiles.copyTree(repoDir, tmp.resolve("copy-" + round));
                checkpoint.get();
                assertRestoredRows(copy, round, round + 1);
            }
        } finally {
            ProtectedDatabase.afterBaseStored = () -> { };
        }
    }

    /**
     * Case (b): the commit returns before DuckDB renames {@code <db>.wal.checkpoint}. The old WAL looks fully shipped
     * then, so a waiter that looked only at {@code <db>.wal} was released at once (the old code fails round 0).
     * Inserts commit during a checkpoint only when it is a concurrent one (a transaction older than the last commit
     * is open; otherwise the checkpoint holds the vacuum lock and they wait), so a reader keeps one open. DuckDB's
     * own {@code debug_checkpoint_sleep_ms} holds the checkpoint after it switched WAL files, so every round commits
     * into {@code <db>.wal.checkpoint} (a poller proves the file existed).
     */
    @Test
    void aCommitMadeBeforeTheAppCheckpointRenamesItsWalIsDurableWhenItReturns() throws Exception {
        startApp("");
        exec(reg, app, "CREATE TABLE t(i INTEGER)");
        exec(reg, app, "SET debug_checkpoint_sleep_ms = 1500");
        Path checkpointWal = tmp.resolve(DB + ".wal.checkpoint");
        try (Connection reader = ((org.duckdb.DuckDBConnection) app).duplicate()) {
            reader.setAutoCommit(false);
            for (int round = 0; round < 3; round++) {
                count(reader, "SELECT count(*) FROM t"); // an open transaction: the checkpoint will be a concurrent one
                exec(reg, app, "INSERT INTO t VALUES (-1)"); // the WAL is not empty: the checkpoint switches files
                CompletableFuture<Void> checkpoint = appCheckpoint();
                AtomicBoolean seen = new AtomicBoolean();
                Thread poller = new Thread(() -> {
                    while (!checkpoint.isDone() && !seen.get()) {
                        seen.set(Files.exists(checkpointWal));
                        LockSupport.parkNanos(200_000L);
                    }
                });
                poller.start();
                Thread.sleep(300);
                exec(reg, app, "INSERT INTO t VALUES (" + round + ")"); // into <db>.wal.checkpoint; sync mode
                Path copy = TestFiles.copyTree(repoDir, tmp.resolve("copy-b-" + round));
                checkpoint.get();
                poller.join();
                reader.commit();
                assertTrue(seen.get(), "round " + round + ": the commit did not go to " + checkpointWal);
                assertRestoredRows(copy, round, round + 1);
            }
        } finally {
            exec(reg, app, "SET debug_checkpoint_sleep_ms = 0");
        }
    }

    /**
     * The guard on that wait: a {@code <db>.wal.checkpoint} left over from a crash, which DuckDB neither replays nor
     * removes at open, must not hold sync commits (with sync-failure=wait they would hang for ever). The commits
     * return without a sync timeout, the agent stays healthy, and the restore has every one of them. Without the
     * guard 4 of the 5 commits time out.
     */
    @Test
    void aLeftoverCheckpointWalDoesNotHoldCommits() throws Exception {
        Path db = tmp.resolve(DB);
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + db)) {
            try (var s = c.createStatement()) {
                s.execute("CREATE TABLE t(i INTEGER)");
                s.execute("CHECKPOINT");
                s.execute("INSERT INTO t VALUES (-1)");
            }
            // Keep the WAL: copy it aside while the instance is open (closing would checkpoint it away).
            Files.copy(Path.of(db + ".wal"), tmp.resolve("wal-copy"));
        }
        Files.move(tmp.resolve("wal-copy"), Path.of(db + ".wal.checkpoint"), StandardCopyOption.ATOMIC_MOVE);
        startApp(",sync-failure=degrade,sync-timeout=3s");
        for (int i = 0; i < 5; i++) exec(reg, app, "INSERT INTO t VALUES (" + i + ")");
        assertTrue(Files.exists(Path.of(db + ".wal.checkpoint")), "the leftover is still there (DuckDB keeps it)");
        assertTrue(reg.status(DB).healthy(), reg.status(DB).healthReason());
        assertRestoredRows(repoDir, 0, 5); // also: no commit waited for the leftover until the sync timeout
    }

    /** The agent in this JVM (sync mode plus {@code options}) and the app's connection and a duplicate of it. */
    private void startApp(String options) throws Exception {
        repoDir = tmp.resolve("repo");
        key = tmp.resolve("key");
        reg = AppCalls.agent(repoDir, key, options);
        String url = "jdbc:duckdb:" + tmp.resolve(DB);
        app = DriverManager.getConnection(url);
        reg.connectionOpened(app, url, false);
        other = ((org.duckdb.DuckDBConnection) app).duplicate();
        reg.connectionDuplicated(app, other);
    }

    @AfterEach
    void stopApp() throws Exception {
        for (Connection c : new Connection[] {other, app}) {
            if (c == null) continue;
            reg.connectionClosed(c);
            c.close();
        }
    }

    /** The app's own CHECKPOINT, on the duplicate connection, running while the test goes on. */
    private CompletableFuture<Void> appCheckpoint() {
        return CompletableFuture.runAsync(() -> {
            try {
                exec(reg, other, "CHECKPOINT");
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
    }

    /**
     * Restores "latest" of {@code repository} and checks the rows of t the app committed ({@code i >= 0}); and that
     * no commit was let go by the sync timeout (degrade) instead of by being durable.
     */
    private void assertRestoredRows(Path repository, int round, long expected) throws Exception {
        assertEquals(0, reg.status(DB).syncTimeouts(), "round " + round + ": a commit returned by the sync timeout");
        Path out = tmp.resolve("restored-" + repository.getFileName() + ".duckdb");
        AppCalls.restoreLatest(repository, key, DB, out);
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + out)) {
            assertEquals(expected, count(c, "SELECT count(*) FROM t WHERE i >= 0"), "round " + round
                    + ": a commit returned before it was durable (the repository as it was then lacks it)");
        }
    }
}
