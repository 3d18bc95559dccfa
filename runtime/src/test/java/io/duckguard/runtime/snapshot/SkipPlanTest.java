package io.duckguard.runtime.snapshot;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.runtime.crypto.MasterKey;
import io.duckguard.runtime.repository.BlockRef;
import io.duckguard.runtime.repository.Manifest;
import io.duckguard.runtime.repository.Repository;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Incremental snapshots that skip what DuckDB's block map says cannot have changed (both DuckDB versions): every
 * snapshot must still be exactly the file, checked against an oracle that reads and hashes every chunk anew.
 */
class SkipPlanTest {
    @TempDir
    Path dir;

    /** The oracle: every chunk of {@code m} has the content id of the file's bytes at its offset right now. */
    private static void assertIsTheFile(Repository repo, Manifest m, FileChannel ch, String what) throws Exception {
        assertEquals(ch.size(), m.fileSize(), what + ": size");
        for (int i = 0; i < m.chunks().size(); i++) {
            BlockRef ref = m.chunks().get(i);
            ByteBuffer b = ByteBuffer.allocate(ref.plainLength());
            ch.read(b, Manifest.chunkOffset(i));
            byte[] id = repo.codec().contentId(b.array(), 0, b.position());
            assertArrayEquals(id, ref.id(), what + ": chunk " + i + " is not the file's content");
        }
    }

    /**
     * A live database under a random trading-like workload (small and large inserts, scattered updates, deletes, DDL,
     * an index, a rolled-back bulk insert, with DuckDB's optimistic writes on, and sometimes a reader's transaction
     * open across the checkpoint), snapshotted through one held channel after zero, one or two checkpoints at a time.
     */
    @Test
    void everySnapshotIsExactlyTheFileUnderARandomWorkload() throws Exception {
        Path f = dir.resolve("live.duckdb");
        Repository repo = Repository.create(dir.resolve("repo"), MasterKey.generate());
        Random rnd = new Random(Long.getLong("duckguard.test.seed", 20261127));
        long skippedBefore = Snapshotter.CHUNKS_NOT_READ.sum();
        long caughtBefore = Snapshotter.CHUNKS_CAUGHT_BY_CHECKSUM.sum();
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + f); Statement s = c.createStatement()) {
            s.execute("SET GLOBAL checkpoint_threshold='1000TB'");
            s.execute("CREATE TABLE trades AS SELECT range AS id, range % 997 AS qty, (range * 31 % 10007) / 100.0 AS px,"
                    + " md5(range::VARCHAR) AS ref FROM range(3000000)");
            s.execute("CHECKPOINT");
            try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
                Manifest prev = Snapshotter.snapshot(repo, ch, 1, null, "test", "full");
                assertIsTheFile(repo, prev, ch, "snapshot 1");
                long next = 3_000_000;
                int checkpointsAroundAReader = 0;
                for (int round = 2; round <= 24; round++) {
                    int checkpoints = round % 7 == 0 ? 2 : round % 11 == 0 ? 0 : 1;
                    // Sometimes a reader keeps a transaction (and the blocks it scanned) open across the checkpoint:
                    // DuckDB then frees blocks still in use only later (its free_blocks_in_use).
                    Connection reader = null;
                    if (rnd.nextInt(3) == 0) {
                        reader = ((org.duckdb.DuckDBConnection) c).duplicate();
                        reader.setAutoCommit(false);
                        try (Statement rs = reader.createStatement(); var q = rs.executeQuery("SELECT sum(qty), count(*) FROM trades")) {
                            q.next();
                        }
                    }
                    for (int k = 0; k < checkpoints; k++) {
                        switch (rnd.nextInt(7)) {
                            case 0 -> s.execute("UPDATE trades SET qty = qty + 1 WHERE hash(id, " + rnd.nextInt() + ") % 100 = 0");
                            case 1 -> s.execute("INSERT INTO trades SELECT range, 1, 2.5, 'n' FROM range(" + next + ", " + (next += 200_000) + ")");
                            case 2 -> s.execute("DELETE FROM trades WHERE hash(id, " + rnd.nextInt() + ") % 50 = 0");
                            case 3 -> {
                                s.execute("CREATE OR REPLACE TABLE side AS SELECT range AS k, md5(range::VARCHAR) AS v FROM range(" + rnd.nextInt(400_000) + ")");
                                if (rnd.nextBoolean()) s.execute("CREATE INDEX IF NOT EXISTS side_k ON side(k)");
                            }
                            case 4 -> s.execute("DROP TABLE IF EXISTS side");
                            case 5 -> {
                                c.setAutoCommit(false);
                                s.execute("INSERT INTO trades SELECT range, 3, 1.0, 'r' FROM range(" + next + ", " + (next + 300_000) + ")");
                                c.rollback();
                                c.setAutoCommit(true);
                            }
                            default -> {
                                for (int t = 0; t < 200; t++) {
                                    s.execute("UPDATE trades SET px = px + 0.01 WHERE id = " + rnd.nextInt(3_000_000));
                                }
                            }
                        }
                        try (Statement cs = c.createStatement()) { // DuckDB's JDBC closes a statement that failed
                            cs.execute("CHECKPOINT");
                            if (reader != null) checkpointsAroundAReader++;
                        } catch (java.sql.SQLException e) {
                            // After an UPDATE or DDL DuckDB refuses to checkpoint while another transaction is open
                            // (shared/duckdb-facts.md section 5); after inserts and deletes it checkpoints around it.
                            if (reader == null || !e.getMessage().contains("other write transactions")) throw e;
                            reader.commit();
                            reader.close();
                            reader = null;
                            try (Statement cs = c.createStatement()) {
                                cs.execute("CHECKPOINT");
                            }
                        }
                    }
                    Manifest m = Snapshotter.snapshot(repo, ch, round, prev, "test", "round " + round);
                    assertIsTheFile(repo, m, ch, "snapshot " + round + " after " + checkpoints + " checkpoints");
                    prev = m;
                    if (reader != null) {
                        reader.commit();
                        reader.close();
                    }
                }
                assertTrue(checkpointsAroundAReader > 0, "no checkpoint ran while a reader was open");
            }
        }
        assertTrue(Snapshotter.CHUNKS_NOT_READ.sum() - skippedBefore > 1000, "the block map let snapshots skip chunks");
        // DuckDB's map alone was complete: no block outside it changed (the checksum probe had nothing to catch).
        assertEquals(caughtBefore, Snapshotter.CHUNKS_CAUGHT_BY_CHECKSUM.sum(), "blocks outside DuckDB's map changed");
    }

    private static void flip(Path f, long at, int len, java.util.function.UnaryOperator<ByteBuffer> how) throws Exception {
        try (FileChannel w = FileChannel.open(f, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.allocate(len);
            w.read(b, at);
            w.write(how.apply(b.flip()), at);
        }
    }

    /** A block DuckDB's map does not list. */
    private static long stableBlock(Path f) throws Exception {
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
            DuckDbBlockMap map = DuckDbBlockMap.read(ch);
            for (long b = map.blockCount() / 2; b < map.blockCount(); b++) if (!map.mayChange(b)) return b;
        }
        throw new AssertionError("no stable block");
    }

    private Path checkpointedFile() throws Exception {
        Path f = dir.resolve("t.duckdb");
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + f); Statement s = c.createStatement()) {
            s.execute("CREATE TABLE t AS SELECT range AS id, md5(range::VARCHAR) AS h FROM range(1000000)");
        }
        return f;
    }

    /** A block rewritten outside DuckDB's map with a new checksum (what the map cannot see) is read, not skipped. */
    @Test
    void aBlockChangedOutsideTheMapIsCaughtByItsDuckDbChecksum() throws Exception {
        Path f = checkpointedFile();
        Repository repo = Repository.create(dir.resolve("repo"), MasterKey.generate());
        long block = stableBlock(f);
        long at = Manifest.HEADER_BYTES + block * Manifest.CHUNK;
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
            Manifest m1 = Snapshotter.snapshot(repo, ch, 1, null, "test", "full");
            // Another content and its own valid checksum, as DuckDB would write a reused block.
            flip(f, at + 8, 64, b -> ByteBuffer.wrap(new byte[64]));
            flip(f, at, Manifest.CHUNK, b -> {
                b.order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(0, io.duckguard.runtime.util.DuckDbChecksum.of(b, 8, Manifest.CHUNK - 8));
                return b;
            });
            Manifest m2 = Snapshotter.snapshot(repo, ch, 2, m1, "test", "after a write outside the map");
            assertIsTheFile(repo, m2, ch, "snapshot 2");
            assertFalse(java.util.Arrays.equals(m1.chunks().get((int) block + 1).id(), m2.chunks().get((int) block + 1).id()));
        }
    }

    /**
     * A change that keeps DuckDB's weak checksum (two 8-byte words swapped) is what the plan cannot see; the audit
     * that reads everything every {@value SkipPlan#AUDIT_EVERY}th snapshot finds it, and from then on this file is
     * always read in full.
     */
    @Test
    void theAuditFindsWhatTheChecksumMissesAndStopsSkipping() throws Exception {
        Path f = checkpointedFile();
        Repository repo = Repository.create(dir.resolve("repo"), MasterKey.generate());
        long block = stableBlock(f);
        long at = Manifest.HEADER_BYTES + block * Manifest.CHUNK + 4096;
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
            Manifest prev = Snapshotter.snapshot(repo, ch, 1, null, "test", "full");
            flip(f, at, 16, b -> ByteBuffer.allocate(16).putLong(b.getLong(8)).putLong(b.getLong(0)).flip());
            int epoch = 2;
            Manifest stale = Snapshotter.snapshot(repo, ch, epoch++, prev, "test", "skips the swapped block");
            assertArrayEquals(prev.chunks().get((int) block + 1).id(), stale.chunks().get((int) block + 1).id(),
                    "the limit this test is about: the checksum did not change, so the block was not read");
            prev = stale;
            while (SkipPlan.LAST_READ.get(ch).trusted()) {
                assertTrue(epoch <= SkipPlan.AUDIT_EVERY + 2, "no audit within " + SkipPlan.AUDIT_EVERY + " snapshots");
                prev = Snapshotter.snapshot(repo, ch, epoch++, prev, "test", "until the audit");
            }
            assertIsTheFile(repo, prev, ch, "the audit snapshot");
            long skipped = Snapshotter.CHUNKS_NOT_READ.sum();
            Manifest after = Snapshotter.snapshot(repo, ch, epoch, prev, "test", "after the audit");
            assertEquals(skipped, Snapshotter.CHUNKS_NOT_READ.sum(), "nothing skipped once the audit found a miss");
            assertIsTheFile(repo, after, ch, "after the audit");
        }
    }

    @Test
    void twoCheckpointsOrAnotherPreviousMeanReadingEverything() throws Exception {
        Path f = checkpointedFile();
        Repository repo = Repository.create(dir.resolve("repo"), MasterKey.generate());
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
            Manifest m1 = Snapshotter.snapshot(repo, ch, 1, null, "test", "full");
            SkipPlan.LastRead last = SkipPlan.LAST_READ.get(ch);
            DuckDbBlockMap map = DuckDbBlockMap.read(ch);
            assertNotNull(SkipPlan.of(last, m1, map), "same file, no checkpoint since");
            Manifest other = new Manifest(m1.epoch(), m1.createdMillis(), m1.fileSize(), new byte[32], m1.headerSha256(),
                    m1.headerIteration(), m1.duckdbVersion(), m1.reason(), m1.chunks(), -1, m1.fingerprints());
            assertNull(SkipPlan.of(last, other, map), "a previous snapshot other than the one this channel last read");
            assertNull(SkipPlan.of(null, m1, map), "another channel");
            SkipPlan.LastRead older = new SkipPlan.LastRead(last.epoch(), last.fileSha(), mapAtIteration(f, -2),
                    last.blockChecksums(), 0, true);
            assertNull(SkipPlan.of(older, m1, map), "two checkpoints since");
        }
    }

    /** The file's map as if read {@code delta} checkpoints later (a copy with the header iteration changed). */

    private DuckDbBlockMap mapAtIteration(Path f, long delta) throws Exception {
        Path g = dir.resolve("iter.duckdb");
        Files.copy(f, g, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        try (FileChannel w = FileChannel.open(g, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            for (int at : new int[] {4096, 8192}) {
                ByteBuffer h = ByteBuffer.allocate(4096).order(java.nio.ByteOrder.LITTLE_ENDIAN);
                w.read(h, at);
                h.putLong(8, h.getLong(8) + delta);
                h.putLong(0, io.duckguard.runtime.util.DuckDbChecksum.of(h, 8, 4096 - 8));
                w.write(h.clear(), at);
            }
            return DuckDbBlockMap.read(w);
        }
    }
}
