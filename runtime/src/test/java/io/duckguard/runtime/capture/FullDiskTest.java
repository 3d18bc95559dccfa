package io.duckguard.runtime.capture;

import static io.duckguard.runtime.testing.AppCalls.count;
import static io.duckguard.runtime.testing.AppCalls.exec;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.duckguard.runtime.repository.RepositoryOpener;
import io.duckguard.runtime.restore.DuckDbDriver;
import io.duckguard.runtime.restore.RestoreTarget;
import io.duckguard.runtime.restore.Restorer;
import io.duckguard.runtime.testing.AppCalls;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A full disk, for real: a small filesystem (a tmpfs mounted for the test; it needs root, as on this project's
 * machines, and is skipped where mounting is not allowed), filled by a file the test then deletes.
 *
 * <p>The backup volume fills up under a sync-mode agent: with {@code sync-failure=degrade} (the default) commits keep
 * returning and the agent reports itself unhealthy; with {@code wait} a commit blocks until space is back. Either way
 * the app never sees an error, the agent heals by itself once space is free, and the restore holds every commit.
 *
 * <p>The restore's target disk is too small: refused up front with the sizes, or, when DuckDB's replay and checkpoint
 * run out of space, reported as such; either way nothing is left behind.
 */
class FullDiskTest {
    private static final String DB = "trades.duckdb";

    @TempDir
    Path tmp;
    private Path volume;
    private boolean mounted;

    @BeforeEach
    void mountSmallVolume() throws Exception {
        volume = Files.createDirectories(tmp.resolve("backup-volume"));
        Process p = new ProcessBuilder("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", volume.toString())
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        mounted = p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
        assumeTrue(mounted, "cannot mount a small tmpfs here (needs root): " + out.strip());
    }

    @AfterEach
    void unmount() throws Exception {
        if (mounted) new ProcessBuilder("umount", "-l", volume.toString()).inheritIO().start().waitFor(30, TimeUnit.SECONDS);
    }

    /** Writes zeros until the volume has no byte left. */
    private Path fill() throws IOException {
        return fill(0);
    }

    /** Writes zeros until about {@code keep} bytes of the volume are left (0: none at all). */
    private Path fill(long keep) throws IOException {
        if (keep > 0) {
            Path filler = volume.resolve("filler");
            long n = Files.getFileStore(volume).getUsableSpace() - keep;
            byte[] kb = new byte[4096];
            try (OutputStream o = Files.newOutputStream(filler)) {
                for (long w = 0; w < n; w += kb.length) o.write(kb);
            }
            return filler;
        }
        Path filler = volume.resolve("filler");
        byte[] mb = new byte[1 << 20];
        try (OutputStream o = Files.newOutputStream(filler)) {
            while (true) o.write(mb);
        } catch (IOException full) {
            // No space left on device: what we wanted.
        }
        try (OutputStream o = Files.newOutputStream(volume.resolve("filler-tail"))) {
            while (true) o.write(0);
        } catch (IOException full) {
            // the last partial megabyte too
        }
        assertTrue(Files.getFileStore(volume).getUsableSpace() < (64 << 10), "the volume is not full");
        return filler;
    }

    /** The app's connection to its database (outside the volume), protected by {@code reg}, with an empty table t. */
    private Connection openApp(DatabaseRegistry reg) throws Exception {
        String url = "jdbc:duckdb:" + tmp.resolve(DB);
        Connection c = DriverManager.getConnection(url);
        reg.connectionOpened(c, url, false);
        exec(reg, c, "CREATE TABLE t(i INTEGER PRIMARY KEY, s VARCHAR)");
        return c;
    }

    private void freeSpace(Path filler) throws IOException {
        Files.delete(filler);
        Files.deleteIfExists(volume.resolve("filler-tail"));
    }

    /** A database of about 6 MB in a repository outside the volume: a snapshot, then 40 commits of 64 KB each. */
    private Path repositoryWithHistory() throws Exception {
        Path repoDir = tmp.resolve("repo");
        DatabaseRegistry reg = AppCalls.agent(repoDir, tmp.resolve("key"), "");
        Connection c = openApp(reg);
        for (int i = 0; i < 40; i++) exec(reg, c, insertIncompressible(i));
        reg.checkpointNow(DB);
        waitUntil("the checkpoint's snapshot", 20_000, () -> reg.status(DB).snapshotCount() >= 2);
        for (int i = 40; i < 80; i++) exec(reg, c, insertIncompressible(i));
        reg.connectionClosed(c);
        c.close();
        return repoDir;
    }

    private Restorer restorer(Path repoDir) throws Exception {
        return new Restorer(RepositoryOpener.openExisting(repoDir, tmp.resolve("key")).database(DB), m -> { });
    }

    @Test
    void aRestoreThatCannotFitIsRefusedUpFront() throws Exception {
        Path repoDir = repositoryWithHistory();
        fill(1 << 20);
        Path out = volume.resolve("restored.duckdb");
        IOException e = org.junit.jupiter.api.Assertions.assertThrows(IOException.class, () -> restorer(repoDir)
                .restore(RestoreTarget.parse("latest"), out, false, DuckDbDriver.find(null, null, null)));
        assertTrue(e.getMessage().startsWith("not enough free space in " + volume) && e.getMessage().contains("MB are free")
                && e.getMessage().contains("choose another --output"), e.getMessage());
        try (var l = Files.list(volume)) {
            assertEquals(java.util.List.of("filler"), l.map(q -> q.getFileName().toString()).toList());
        }
    }

    @Test
    void aRestoreWhoseCheckpointRunsOutOfSpaceSaysSo() throws Exception {
        Path repoDir = repositoryWithHistory();
        Restorer r = restorer(repoDir);
        Restorer.Point p = r.resolve(RestoreTarget.parse("latest"));
        long snapshot = RepositoryOpener.openExisting(repoDir, tmp.resolve("key")).database(DB).readManifest(p.epoch()).fileSize();
        // Room for the snapshot and its WAL (the up-front check passes), not for what DuckDB's checkpoint writes.
        fill(snapshot + p.walEnd() + (64 << 10));
        Path out = volume.resolve("restored.duckdb");
        IOException e = org.junit.jupiter.api.Assertions.assertThrows(IOException.class,
                () -> r.restore(RestoreTarget.parse("latest"), out, false, DuckDbDriver.find(null, null, null)));
        assertTrue(e.getMessage().startsWith("the disk of " + volume + " filled up during the restore")
                && e.getMessage().contains("nothing was written to " + out), e.getMessage());
        try (var l = Files.list(volume)) {
            assertEquals(java.util.List.of("filler"), l.map(q -> q.getFileName().toString()).toList());
        }
    }

    /**
     * One row of 64 KB of random hex: its WAL record stays larger than the page slack a full tmpfs may still have at
     * the end of an open file, so it cannot become durable without new space.
     */
    private static String insertIncompressible(int i) {
        return "INSERT INTO t SELECT " + i + ", string_agg(md5(random()::VARCHAR), '') FROM range(2000)";
    }

    private static void waitUntil(String what, long millis, BooleanSupplier ok) throws InterruptedException {
        long deadline = System.currentTimeMillis() + millis;
        while (!ok.getAsBoolean()) {
            assertTrue(System.currentTimeMillis() < deadline, "timed out waiting until " + what);
            Thread.sleep(20);
        }
    }

    private long restoredRows(Path repoDir, Path key) throws Exception {
        Path out = tmp.resolve("restored-" + System.nanoTime() + ".duckdb");
        AppCalls.restoreLatest(repoDir, key, DB, out);
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + out)) {
            return count(c, "SELECT count(*) FROM t");
        }
    }

    @Test
    void degradeKeepsTradingWhileTheBackupVolumeIsFullThenCatchesUp() throws Exception {
        Path repoDir = volume.resolve("repo");
        Path key = tmp.resolve("key"); // keys live elsewhere than the backups
        DatabaseRegistry reg = AppCalls.agent(repoDir, key, ",sync-failure=degrade,sync-timeout=2s");
        Connection c = openApp(reg);
        for (int i = 0; i < 20; i++) exec(reg, c, "INSERT INTO t VALUES (" + i + ", 'before')");
        assertTrue(reg.status(DB).healthy(), reg.status(DB).healthReason());

        Path filler = fill();
        // Every commit returns without an exception (an error here would fail the test): the app keeps trading.
        for (int i = 20; i < 60; i++) exec(reg, c, insertIncompressible(i));
        waitUntil("the agent reports the full volume", 10_000, () -> !reg.status(DB).healthy());
        String reason = reg.status(DB).healthReason();
        assertTrue(reason.contains("the backup volume is full") && reason.contains(repoDir.toString())
                && reason.contains("sync-failure=degrade"), reason);

        freeSpace(filler);
        waitUntil("the agent is healthy again and has shipped everything", 20_000,
                () -> reg.status(DB).healthy() && reg.status(DB).unshippedBytes() == 0);
        for (int i = 60; i < 70; i++) exec(reg, c, "INSERT INTO t VALUES (" + i + ", 'after')");
        reg.connectionClosed(c);
        c.close();
        assertEquals(70, restoredRows(repoDir, key));
    }

    @Test
    void waitHoldsTheCommitUntilThereIsSpaceAgain() throws Exception {
        Path repoDir = volume.resolve("repo");
        Path key = tmp.resolve("key");
        DatabaseRegistry reg = AppCalls.agent(repoDir, key, ",sync-failure=wait,sync-timeout=1s");
        Connection c = openApp(reg);
        for (int i = 0; i < 20; i++) exec(reg, c, "INSERT INTO t VALUES (" + i + ", 'before')");

        Path filler = fill();
        CompletableFuture<Void> commit = CompletableFuture.runAsync(() -> {
            try {
                for (int i = 20; i < 25; i++) exec(reg, c, insertIncompressible(i));
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
        Thread.sleep(2500);
        assertFalse(commit.isDone(), "a commit returned although the repository could not make it durable");

        freeSpace(filler);
        commit.get(30, TimeUnit.SECONDS); // returns once durable; an exception here fails the test
        waitUntil("the agent is healthy again", 20_000, () -> reg.status(DB).healthy());
        reg.connectionClosed(c);
        c.close();
        assertEquals(25, restoredRows(repoDir, key));
    }
}
