package io.duckguard.runtime.snapshot;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.runtime.repository.Manifest;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The block map read from real DuckDB files (the suite runs on both DuckDB versions) agrees with what DuckDB itself
 * reports about the same file, and anything that is not a plain DuckDB file is refused rather than misread.
 */
class DuckDbBlockMapTest {
    @TempDir
    Path dir;

    /** DuckDB's own numbers for a file just opened: its free list is then exactly the one in the header. */
    private static long[] pragmaSizes(Path f) throws Exception {
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + f);
             Statement s = c.createStatement();
             ResultSet rs = s.executeQuery("SELECT total_blocks, free_blocks FROM pragma_database_size()")) {
            rs.next();
            return new long[] {rs.getLong(1), rs.getLong(2)};
        }
    }

    private static DuckDbBlockMap map(Path f) throws Exception {
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
            return DuckDbBlockMap.read(ch);
        }
    }

    @Test
    void freeAndTotalBlocksMatchWhatDuckDbReports() throws Exception {
        Path f = dir.resolve("t.duckdb");
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + f); Statement s = c.createStatement()) {
            s.execute("CREATE TABLE t AS SELECT range AS id, range * 7 % 1000 AS v, md5(range::VARCHAR) AS h FROM range(2000000)");
            s.execute("CHECKPOINT");
            s.execute("CREATE TABLE u AS SELECT * FROM t WHERE id % 3 = 0");
            s.execute("CHECKPOINT");
            s.execute("DELETE FROM t WHERE id % 2 = 0");
            s.execute("DROP TABLE u");
            s.execute("CHECKPOINT");
        }
        DuckDbBlockMap m = map(f);
        long[] duck = pragmaSizes(f);
        assertEquals(duck[0], m.blockCount(), "total blocks");
        assertEquals(duck[1], m.freeBlocks(), "free blocks");
        assertTrue(m.freeBlocks() > 10, "the dropped table's blocks are free: " + m.freeBlocks());
        assertTrue(m.metadataBlocks() >= 1, "metadata blocks");
        int mayChange = 0;
        for (long b = 0; b < m.blockCount(); b++) if (m.mayChange(b)) mayChange++;
        assertEquals(m.freeBlocks() + m.metadataBlocks(), mayChange);
        assertTrue(m.mayChange(m.blockCount()), "past the end");
    }

    @Test
    void aFreshFileHasNothingToMapAndAnythingElseIsRefused() throws Exception {
        Path f = dir.resolve("fresh.duckdb");
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + f)) {
            c.createStatement().execute("SELECT 1");
        }
        assertEquals(0, map(f).blockCount());

        Path g = dir.resolve("g.duckdb");
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + g); Statement s = c.createStatement()) {
            s.execute("CREATE TABLE t AS SELECT range AS id FROM range(100000)");
        }
        DuckDbBlockMap ok = map(g);
        assertTrue(ok.blockCount() > 0);
        // A changed byte in the metadata: DuckDB's checksum no longer holds, so the map is refused.
        Path bad = dir.resolve("bad.duckdb");
        Files.copy(g, bad);
        int metadata = -1;
        for (int b = 0; b < ok.blockCount(); b++) if (ok.mayChange(b)) metadata = b; // free or metadata; flip in all
        try (FileChannel ch = FileChannel.open(bad, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            for (int b = 0; b < ok.blockCount(); b++) {
                if (!ok.mayChange(b)) continue;
                ch.write(ByteBuffer.wrap(new byte[] {0x5a}), Manifest.HEADER_BYTES + (long) b * Manifest.CHUNK + 5000);
            }
        }
        assertTrue(metadata >= 0);
        DuckDbBlockMap.Unmapped e = assertThrows(DuckDbBlockMap.Unmapped.class, () -> map(bad));
        assertTrue(e.getMessage().contains("checksum"), e.getMessage());

        // Another block size: the 256 KiB chunks no longer are DuckDB's blocks, so there is no map (every chunk is read).
        Path small = dir.resolve("small.duckdb");
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:"); Statement s = c.createStatement()) {
            s.execute("ATTACH '" + small + "' AS small (BLOCK_SIZE 16384)");
            s.execute("CREATE TABLE small.t AS SELECT range AS id FROM range(20000)");
            s.execute("DETACH small");
        }
        DuckDbBlockMap.Unmapped sized = assertThrows(DuckDbBlockMap.Unmapped.class, () -> map(small));
        assertTrue(sized.getMessage().contains("block size 16384"), sized.getMessage());

        Path notDuck = dir.resolve("x.duckdb");
        Files.write(notDuck, new byte[20000]);
        assertThrows(DuckDbBlockMap.Unmapped.class, () -> map(notDuck));
    }
}
