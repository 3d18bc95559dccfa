package io.duckguard.runtime.capture;

import static io.duckguard.runtime.testing.AppCalls.count;
import static io.duckguard.runtime.testing.AppCalls.exec;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.duckguard.runtime.repository.RepositoryOpener;
import io.duckguard.runtime.restore.DuckDbDriver;
import io.duckguard.runtime.restore.RestoreTarget;
import io.duckguard.runtime.restore.Restorer;
import io.duckguard.runtime.testing.AppCalls;
import io.duckguard.runtime.testing.TestFiles;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Invariant 1 against the app's own CHECKPOINT: DuckDB writes commits made while a checkpoint runs to
 * {@code <db>.wal.checkpoint} and renames it to {@code <db>.wal} at the end. A sync-mode commit made then must not
 * return before it is durable, although the old WAL is fully shipped and the next base may be stored already. The
 * test copies the repository the instant the commit returns (what a kill -9 at that moment would leave) and restores
 * the copy. Found by SyncCrashLoopTest (an acknowledged Appender batch lost); a pause between storing the next base
 * and shipping its WAL makes the race certain (without the fix every round fails).
 */
class AppCheckpointRaceTest {
    private static final String DB = "trades.duckdb";

    @TempDir
    Path tmp;

    @Test
    void aCommitMadeWhileTheAppCheckpointsIsDurableWhenItReturns() throws Exception {
        Path repoDir = tmp.resolve("repo");
        Path key = tmp.resolve("key");
        DatabaseRegistry reg = AppCalls.agent(repoDir, key, "");
        String url = "jdbc:duckdb:" + tmp.resolve(DB);
        Connection app = DriverManager.getConnection(url);
        reg.connectionOpened(app, url, false);
        Connection other = ((org.duckdb.DuckDBConnection) app).duplicate();
        reg.connectionDuplicated(app, other);
        exec(reg, app, "CREATE TABLE big AS SELECT range i, random() r FROM range(1500000)");
        exec(reg, app, "CREATE TABLE t(i INTEGER)");
        DuckDbDriver duckdb = DuckDbDriver.find(null, null, null);
        // Widen the gap between storing the next base and shipping the WAL that follows it: a commit released in
        // that gap (by "the epoch advanced") is in no base and not yet shipped.
        ProtectedDatabase.afterBaseStored = () -> LockSupport.parkNanos(300_000_000L);
        try {
            rounds(reg, app, other, repoDir, key, duckdb);
        } finally {
            ProtectedDatabase.afterBaseStored = () -> { };
        }
        reg.connectionClosed(other);
        other.close();
        reg.connectionClosed(app);
        app.close();
    }

    private void rounds(DatabaseRegistry reg, Connection app, Connection other, Path repoDir, Path key,
                        DuckDbDriver duckdb) throws Exception {
        for (int round = 0; round < 4; round++) {
            exec(reg, app, "UPDATE big SET r = r + 1 WHERE i % 3 = " + (round % 3)); // the checkpoint has work to do
            CompletableFuture<Void> checkpoint = CompletableFuture.runAsync(() -> {
                try {
                    exec(reg, other, "CHECKPOINT");
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            Thread.sleep(20 + 10 * round);
            exec(reg, app, "INSERT INTO t VALUES (" + round + ")"); // sync mode: returns once durable
            Path copy = TestFiles.copyTree(repoDir, tmp.resolve("copy-" + round));
            checkpoint.get();
            Path out = tmp.resolve("restored-" + round + ".duckdb");
            new Restorer(RepositoryOpener.openExisting(copy, key).database(DB), m -> { })
                    .restore(RestoreTarget.parse("latest"), out, false, duckdb);
            try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + out)) {
                assertEquals(round + 1, count(c, "SELECT count(*) FROM t"), "round " + round
                        + ": a commit returned before it was durable (the repository as it was then lacks it)");
            }
        }
    }
}
