package io.duckguard.runtime.snapshot;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import io.duckguard.runtime.crypto.MasterKey;
import io.duckguard.runtime.repository.BlockRef;
import io.duckguard.runtime.repository.Manifest;
import io.duckguard.runtime.repository.Packs;
import io.duckguard.runtime.repository.Repository;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Block-incremental snapshots with the change fingerprint: what changed is stored, what did not is reused, and
 * every snapshot reads back as the file it was taken of. The files are synthetic (DuckDB's layout: a 12 KiB header
 * area, then 256 KiB blocks): the snapshotter does not interpret blocks.
 */
class SnapshotterTest {
    @TempDir
    Path dir;

    private final Random random = new Random(11);

    private Path file(int blocks) throws Exception {
        byte[] b = new byte[Manifest.HEADER_BYTES + blocks * Manifest.CHUNK];
        random.nextBytes(b);
        // Some all-zero blocks too: they compress, and several share one id.
        Arrays.fill(b, Manifest.HEADER_BYTES + 3 * Manifest.CHUNK, Manifest.HEADER_BYTES + 5 * Manifest.CHUNK, (byte) 0);
        Path f = dir.resolve("db.duckdb");
        Files.write(f, b);
        return f;
    }

    private static Manifest snapshot(Repository repo, Path f, long epoch, Manifest previous) throws Exception {
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
            return Snapshotter.snapshot(repo, ch, epoch, previous, "test", "test");
        }
    }

    /** Every chunk reads back (authenticated, id checked) as the file's bytes at its offset. */
    private static void assertRestoresTo(Repository repo, Manifest m, Path f) throws Exception {
        byte[] want = Files.readAllBytes(f);
        assertEquals(want.length, m.fileSize());
        long off = 0;
        for (BlockRef ref : m.chunks()) {
            byte[] got = Packs.readBlock(repo, ref);
            assertArrayEquals(Arrays.copyOfRange(want, (int) off, (int) off + got.length), got, "chunk at " + off);
            off += got.length;
        }
        assertEquals(want.length, off);
    }

    private static void change(Path f, long at, byte[] bytes) throws Exception {
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(bytes), at);
        }
    }

    private static byte[] read(Path f, long at, int len) throws Exception {
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(len);
            ch.read(b, at);
            return b.array();
        }
    }

    @Test
    void incrementalStoresExactlyTheChangedBlocksAndRestoresTheNewFile() throws Exception {
        Repository repo = Repository.create(dir.resolve("repo"), MasterKey.generate());
        Path f = file(24);
        Manifest first = snapshot(repo, f, 1, null);
        assertRestoresTo(repo, first, f);
        for (int i = 0; i < first.chunks().size(); i++) assertNull(first.fingerprint(i), "a first snapshot records none");
        // The next snapshot that reads every block (no skip plan: another channel) hashes them once, stores nothing
        // new, and records their fingerprints.
        long packBytes = treeSize(repo.packsDir());
        Manifest m1 = snapshot(repo, f, 2, first);
        assertRestoresTo(repo, m1, f);
        assertEquals(packBytes, treeSize(repo.packsDir()));
        assertArrayEquals(first.fileSha256(), m1.fileSha256());
        assertEquals(m1.chunks().size(), m1.fingerprints().size());
        for (int i = 0; i < m1.chunks().size(); i++) assertNotNull(m1.fingerprint(i));

        // Block 7: two 8-byte words swapped (DuckDB's own checksum would not change); block 12: one bit flipped;
        // the header area: changed as every checkpoint does; two blocks appended.
        long b7 = Manifest.chunkOffset(8);
        byte[] w1 = read(f, b7 + 1000, 8);
        byte[] w2 = read(f, b7 + 50000, 8);
        change(f, b7 + 1000, w2);
        change(f, b7 + 50000, w1);
        long b12 = Manifest.chunkOffset(13) + 4242;
        byte[] one = read(f, b12, 1);
        one[0] ^= 4;
        change(f, b12, one);
        change(f, 4096 + 8, new byte[] {9, 9, 9});
        byte[] tail = new byte[2 * Manifest.CHUNK];
        random.nextBytes(tail);
        change(f, Files.size(f), tail);

        Manifest m2 = snapshot(repo, f, 3, m1);
        assertRestoresTo(repo, m2, f);
        assertEquals(m1.chunks().size() + 2, m2.chunks().size());
        for (int i = 0; i < m1.chunks().size(); i++) {
            boolean changed = i == 0 || i == 8 || i == 13;
            if (changed) {
                assertFalse(Arrays.equals(m1.chunks().get(i).id(), m2.chunks().get(i).id()), "chunk " + i + " changed");
            } else {
                assertSame(m1.chunks().get(i), m2.chunks().get(i), "chunk " + i + " is reused as it was");
            }
        }

        // The same file from scratch (no previous): the same ids, hence the same file identity.
        Manifest fresh = snapshot(repo, f, 4, null);
        assertArrayEquals(fresh.fileSha256(), m2.fileSha256());
        Manifest again = snapshot(repo, f, 5, fresh);
        for (int i = 0; i < fresh.chunks().size(); i++) {
            assertArrayEquals(fresh.chunks().get(i).id(), m2.chunks().get(i).id());
            assertArrayEquals(again.fingerprint(i), m2.fingerprint(i), "fingerprints depend on content and key only");
        }
    }

    /**
     * GC removes a pack only when nothing references it and never rewrites one: the chunks left in a mostly
     * rewritten pack are stored anew, so the old pack goes once the snapshots before expire. A pack still mostly in
     * use is referenced as before.
     */
    @Test
    void chunksLeftInASparsePackAreStoredAnewSoThatPackCanGo() throws Exception {
        Repository repo = Repository.create(dir.resolve("repo"), MasterKey.generate());
        Path f = file(40);
        Manifest m1 = snapshot(repo, f, 1, null);
        java.util.Set<String> oldPacks = new java.util.HashSet<>();
        for (BlockRef b : m1.chunks()) oldPacks.add(b.pack());

        // Half the blocks rewritten: the old pack(s) are still half in use; kept as they are.
        for (int b = 1; b <= 20; b++) change(f, Manifest.chunkOffset(b), randomBlock());
        Manifest m2 = snapshot(repo, f, 3, m1);
        assertRestoresTo(repo, m2, f);
        int stillOld = 0;
        for (int i = 21; i < m2.chunks().size(); i++) {
            assertSame(m1.chunks().get(i), m2.chunks().get(i), "chunk " + i + " is reused as it was");
            stillOld++;
        }
        assertEquals(20, stillOld);

        // Then 35 of 40 rewritten since m1: the old pack is 5/40 in use, sparse. Nothing of m3 may stay in it.
        for (int b = 21; b <= 35; b++) change(f, Manifest.chunkOffset(b), randomBlock());
        Manifest m3 = snapshot(repo, f, 3, m2);
        assertRestoresTo(repo, m3, f);
        for (int i = 0; i < m3.chunks().size(); i++) {
            BlockRef r = m3.chunks().get(i);
            assertFalse(oldPacks.contains(r.pack()), "chunk " + i + " still in the sparse pack " + r.pack());
            if (i < 21 || i > 35) assertArrayEquals(m2.chunks().get(i).id(), r.id(), "same content, same id: chunk " + i);
        }

        // And so, once only m3 is retained, garbage collection removes the old pack(s), and m3 still restores.
        io.duckguard.runtime.repository.DatabaseHistory h = repo.database("db.duckdb");
        java.util.Properties info = new java.util.Properties();
        info.setProperty("name", "db.duckdb");
        h.writeInfo(info);
        for (Manifest m : List.of(m1, m2, m3)) h.writeManifest(m);
        Thread.sleep(5);
        new io.duckguard.runtime.retention.GarbageCollector(repo, java.time.Duration.ZERO, line -> { })
                .run(new io.duckguard.runtime.retention.RetentionPolicy(java.time.Duration.ofMillis(1), 1, 0, 0), false);
        for (String p : oldPacks) assertEquals(-1, Packs.size(repo, p), "pack " + p + " removed");
        assertRestoresTo(repo, m3, f);
    }

    private byte[] randomBlock() {
        byte[] b = new byte[Manifest.CHUNK];
        random.nextBytes(b);
        return b;
    }

    @Test
    void aPreviousManifestWithoutFingerprintsIsHashedInFullAndStillDeduplicated() throws Exception {
        Repository repo = Repository.create(dir.resolve("repo"), MasterKey.generate());
        Path f = file(10);
        Manifest m1 = snapshot(repo, f, 1, null);
        Manifest old = new Manifest(m1.epoch(), m1.createdMillis(), m1.fileSize(), m1.fileSha256(), m1.headerSha256(),
                m1.headerIteration(), m1.duckdbVersion(), m1.reason(), m1.chunks()); // as written before fingerprints
        assertNull(old.fingerprint(0));
        long packBytes = treeSize(repo.packsDir());
        Manifest m2 = snapshot(repo, f, 2, old);
        assertRestoresTo(repo, m2, f);
        assertEquals(packBytes, treeSize(repo.packsDir()), "nothing new was stored");
        for (int i = 0; i < m2.chunks().size(); i++) assertArrayEquals(m1.chunks().get(i).id(), m2.chunks().get(i).id());
    }

    @Test
    void fingerprintsSurviveTheManifestsRoundTripThroughTheRepository() throws Exception {
        Repository repo = Repository.create(dir.resolve("repo"), MasterKey.generate());
        Path f = file(6);
        Manifest m = snapshot(repo, f, 1, snapshot(repo, f, 0, null)); // a second snapshot: it records fingerprints
        assertNotNull(m.fingerprint(2));
        repo.database("db.duckdb").writeManifest(m);
        Manifest back = repo.database("db.duckdb").readManifest(1);
        assertEquals(m.fingerprints().size(), back.fingerprints().size());
        for (int i = 0; i < m.fingerprints().size(); i++) assertArrayEquals(m.fingerprint(i), back.fingerprint(i));
        // A manifest with a chunk that has no fingerprint (null) round-trips as null.
        List<byte[]> some = new java.util.ArrayList<>(m.fingerprints());
        some.set(1, null);
        Manifest partial = new Manifest(2, m.createdMillis(), m.fileSize(), m.fileSha256(), m.headerSha256(),
                m.headerIteration(), m.duckdbVersion(), m.reason(), m.chunks(), 5, some);
        repo.database("db.duckdb").writeManifest(partial);
        Manifest pb = repo.database("db.duckdb").readManifest(2);
        assertNull(pb.fingerprint(1));
        assertArrayEquals(m.fingerprint(2), pb.fingerprint(2));
        assertEquals(5, pb.previousWalEnd());
    }

    private static long treeSize(Path d) throws Exception {
        try (var s = Files.walk(d)) {
            return s.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
        }
    }
}
