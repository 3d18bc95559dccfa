package io.duckguard.runtime.repository;

import static io.duckguard.runtime.testing.AppCalls.exec;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.runtime.capture.DatabaseRegistry;
import io.duckguard.runtime.crypto.CorruptObjectException;
import io.duckguard.runtime.crypto.DataKey;
import io.duckguard.runtime.crypto.MasterKey;
import io.duckguard.runtime.crypto.ObjectCodec;
import io.duckguard.runtime.retention.GarbageCollector;
import io.duckguard.runtime.retention.RetentionPolicy;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real repository, written in-process by the capture pipeline (the test plays the agent's advice, as in
 * InProcessCaptureTest): no plaintext of the app's data anywhere in it, and what garbage collection removes is
 * crypto-shredded: the data keys go with the objects, so saved copies of the objects cannot be opened any more.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CryptoShreddingTest {
    static final String DB = "orders.duckdb";
    static final String SECRET = "ZEBRA-ACCOUNT-77113";
    static final long NUMBER = 7_340_123_456_789L;
    static final int EPOCHS = 4;

    @TempDir
    static Path tmp;

    Path repoDir;
    Path keyFile;
    final List<Long> epochs = new ArrayList<>();
    boolean sourceWalHeldTheSecret;


    @BeforeAll
    void workload() throws Exception {
        repoDir = tmp.resolve("repo");
        keyFile = tmp.resolve("repo.key");
        DatabaseRegistry reg = io.duckguard.runtime.testing.AppCalls.agent(repoDir, keyFile, "");
        Path db = tmp.resolve(DB);
        String url = "jdbc:duckdb:" + db;
        try (Connection c = DriverManager.getConnection(url)) {
            reg.connectionOpened(c, url, false);
            exec(reg, c, "CREATE TABLE orders(id BIGINT, account VARCHAR, note VARCHAR, qty BIGINT)");
            for (int e = 0; e < EPOCHS; e++) {
                for (int i = 0; i < 40; i++) {
                    exec(reg, c, "INSERT INTO orders VALUES (" + (e * 1000 + i) + ", '" + SECRET + "', 'note " + SECRET
                            + " epoch " + e + " row " + i + "', " + (NUMBER + e) + ")");
                }
                exec(reg, c, "INSERT INTO orders SELECT range, '" + SECRET + "-' || range, md5(range::VARCHAR), " + NUMBER
                        + " FROM range(" + (e * 100000) + ", " + (e * 100000 + 20000) + ")");
                Path srcWal = Path.of(db + ".wal");
                if (Files.exists(srcWal)) sourceWalHeldTheSecret |= indexOf(Files.readAllBytes(srcWal), bytes(SECRET)) >= 0;
                epochs.add(reg.snapshotNow(DB, Duration.ofMinutes(1)));
            }
            exec(reg, c, "INSERT INTO orders VALUES (-1, '" + SECRET + "', 'last', " + NUMBER + ")");
            reg.connectionClosed(c);
        }
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int k = 0; k < needle.length; k++) if (hay[i + k] != needle[k]) continue outer;
            return i;
        }
        return -1;
    }

    private Repository open() throws Exception {
        return RepositoryOpener.openExisting(repoDir, keyFile);
    }

    @Test
    void noPlaintextOfTheAppsDataAnywhereInTheRepository() throws Exception {
        assertTrue(sourceWalHeldTheSecret, "sanity: the app's own WAL holds the string, so the scan below can fail");
        List<byte[]> needles = new ArrayList<>();
        needles.add(bytes(SECRET));
        needles.add(bytes("ZEBRA-ACC"));
        needles.add(bytes(Long.toString(NUMBER)));
        needles.add(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(NUMBER).array());
        needles.add(ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(NUMBER).array());
        int files = 0;
        try (Stream<Path> s = Files.walk(repoDir)) {
            for (Path p : s.filter(Files::isRegularFile).toList()) {
                byte[] content = Files.readAllBytes(p);
                files++;
                for (byte[] n : needles) {
                    assertEquals(-1, indexOf(content, n), "plaintext " + new String(n, StandardCharsets.ISO_8859_1) + " in " + p);
                }
            }
        }
        assertTrue(files > 10, "scanned " + files + " files");
    }

    @Test
    void garbageCollectionDestroysTheKeysOfWhatItRemovesSoSavedCopiesCannotBeOpened() throws Exception {
        Path work = io.duckguard.runtime.testing.TestFiles.copyTree(repoDir, tmp.resolve("gc-copy"));
        Path stale = io.duckguard.runtime.testing.TestFiles.copyTree(repoDir, tmp.resolve("stale-copy")); // e.g. an old snapshot of the backup volume
        Repository repo = RepositoryOpener.openExisting(work, keyFile);
        DatabaseHistory h = repo.database(DB);
        long victim = epochs.get(0);
        String walName = "databases/" + DB + "/epochs/" + String.format("%010d", victim) + "/wal";
        String manifestName = "databases/" + DB + "/epochs/" + String.format("%010d", victim) + "/manifest";
        Path savedWal = tmp.resolve("saved.wal");
        Path savedManifest = tmp.resolve("saved.manifest");
        Files.copy(h.epochDir(victim).resolve("wal"), savedWal, StandardCopyOption.REPLACE_EXISTING);
        Files.copy(h.epochDir(victim).resolve("manifest"), savedManifest, StandardCopyOption.REPLACE_EXISTING);
        String walKey = DataKeys.walKeyId(DB, victim);
        String manifestKey = DataKeys.manifestKeyId(DB, victim);
        assertTrue(repo.keys().exists(walKey) && repo.keys().exists(manifestKey));
        assertTrue(WalLog.read(repo.codec(), savedWal, walName).commitCount() > 0, "the saved copy opens while its key exists");
        List<String> packsBefore = packs(work);

        GarbageCollector.Report r = new GarbageCollector(repo, Duration.ZERO, m -> { })
                .run(new RetentionPolicy(Duration.ofMillis(1), 2, 0, 0), false);
        assertTrue(r.removedEpochs().contains(DB + " epoch " + victim), r.toString());
        assertFalse(Files.exists(h.epochDir(victim)));
        assertFalse(repo.keys().exists(walKey), "the WAL log's data key record is gone");
        assertFalse(repo.keys().exists(manifestKey), "the manifest's data key record is gone");
        assertTrue(r.keysDestroyed() >= 2, r.toString());
        // Every removed pack took its key along; every remaining pack still has its key.
        List<String> packsAfter = packs(work);
        assertTrue(packsAfter.size() < packsBefore.size(), "some packs went: " + packsBefore.size() + " -> " + packsAfter.size());
        for (String p : packsBefore) assertEquals(packsAfter.contains(p), repo.keys().exists(DataKeys.packKeyId(p)), p);

        // The saved copies cannot be opened with the repository's keys, in this process or a fresh one.
        for (Repository x : new Repository[] {repo, RepositoryOpener.openExisting(work, keyFile)}) {
            CorruptObjectException e = assertThrows(CorruptObjectException.class, () -> WalLog.read(x.codec(), savedWal, walName));
            assertTrue(e.getMessage().contains(walKey) && e.getMessage().contains("does not exist"), e.getMessage());
            byte[] manifest = Files.readAllBytes(savedManifest);
            assertThrows(CorruptObjectException.class, () -> x.codec().open(manifest, manifestName));
        }

        // A stale copy of the whole repository still holds the old wraps: with the master key of that time it
        // opens (this is why keys.max-age rotation matters). Once the key has been rotated and the old one
        // retired and destroyed, the current key cannot open the stale records.
        Repository staleRepo = RepositoryOpener.openExisting(stale, keyFile);
        assertTrue(WalLog.read(staleRepo.codec(), savedWal, walName).commitCount() > 0);
        Path newKey = tmp.resolve("new.key");
        MasterKey b = MasterKey.generate();
        b.store(newKey);
        KeyRotation.rotate(repo, b, s -> { });
        KeyRotation.retire(RepositoryOpener.openExisting(work, newKey), MasterKey.load(keyFile).keyId(), s -> { });
        DataKeys staleKeysWithNewKey = new DataKeys(stale, () -> MasterKeys.from(Repository.readProps(stale)), List.of(b));
        CorruptObjectException e = assertThrows(CorruptObjectException.class, () -> staleKeysWithNewKey.resolve(walKey, walName));
        assertTrue(e.getMessage().contains("not wrapped for master key " + b.keyId()), e.getMessage());
        // ... while the live repository, after rotation and retirement, restores with the new key alone.
        Repository live = RepositoryOpener.openExisting(work, newKey);
        long newest = epochs.get(epochs.size() - 1);
        assertTrue(live.database(DB).readWalLog(newest).commitCount() > 0);
        for (var ref : live.database(DB).readManifest(newest).chunks()) Packs.readBlock(live, ref);
    }

    @Test
    void keysLeftBehindByACrashAreDestroyedOnceTheirObjectIsGone() throws Exception {
        Path work = io.duckguard.runtime.testing.TestFiles.copyTree(repoDir, tmp.resolve("orphan-copy"));
        Repository repo = RepositoryOpener.openExisting(work, keyFile);
        String ghostPack = "ee" + "1".repeat(30);
        repo.keys().store(DataKey.generate(DataKeys.packKeyId(ghostPack)), "pack", ghostPack);
        String ghostWal = DataKeys.walKeyId(DB, 999);
        repo.keys().store(DataKey.generate(ghostWal), "wal", "databases/" + DB + "/epochs/0000000999/wal");
        // Young: a snapshot may be about to write the pack. Kept.
        GarbageCollector.Report young = new GarbageCollector(repo, Duration.ofMinutes(15), m -> { })
                .run(new RetentionPolicy(Duration.ofHours(1), 100, 0, 0), false);
        assertEquals(0, young.keysDestroyed());
        assertTrue(repo.keys().exists(DataKeys.packKeyId(ghostPack)));
        for (String id : List.of(DataKeys.packKeyId(ghostPack), ghostWal)) {
            Files.setLastModifiedTime(repo.keys().dir().resolve(id), FileTime.from(Instant.now().minus(Duration.ofHours(1))));
        }
        GarbageCollector.Report dry = new GarbageCollector(repo, Duration.ofMinutes(15), m -> { })
                .run(new RetentionPolicy(Duration.ofHours(1), 100, 0, 0), true);
        assertEquals(2, dry.keysDestroyed());
        assertTrue(repo.keys().exists(ghostWal), "a dry run destroys nothing");
        GarbageCollector.Report old = new GarbageCollector(repo, Duration.ofMinutes(15), m -> { })
                .run(new RetentionPolicy(Duration.ofHours(1), 100, 0, 0), false);
        assertEquals(2, old.keysDestroyed());
        assertFalse(repo.keys().exists(DataKeys.packKeyId(ghostPack)) || repo.keys().exists(ghostWal));
        // Nothing a live object needs was touched.
        for (long e : epochs) {
            assertTrue(repo.database(DB).readWalLog(e).commitCount() >= 0);
            for (var ref : repo.database(DB).readManifest(e).chunks()) Packs.readBlock(repo, ref);
        }
        assertTrue(repo.keys().exists(DataKeys.ID_KEY) && repo.keys().exists(DataKeys.META_KEY));
    }

    @Test
    void theObjectsOfEachEpochAndPackUseTheirOwnKeys() throws Exception {
        Repository repo = open();
        DatabaseHistory h = repo.database(DB);
        for (long e : epochs) {
            assertEquals(DataKeys.manifestKeyId(DB, e), ObjectCodec.keyIdOf(Files.readAllBytes(h.epochDir(e).resolve("manifest"))));
            byte[] log = Files.readAllBytes(h.epochDir(e).resolve("wal"));
            int len = ByteBuffer.wrap(log, 0, 4).getInt();
            assertEquals(DataKeys.walKeyId(DB, e), ObjectCodec.keyIdOf(log, 8, len));
            for (var ref : h.readManifest(e).chunks()) {
                byte[] pack = Files.readAllBytes(repo.packsDir().resolve(ref.pack().substring(0, 2)).resolve(ref.pack()));
                assertEquals(DataKeys.packKeyId(ref.pack()), ObjectCodec.keyIdOf(pack, (int) ref.packOffset(), ref.storedLength()));
            }
        }
    }

    private static List<String> packs(Path repo) throws Exception {
        try (Stream<Path> s = Files.walk(repo.resolve("packs"))) {
            return s.filter(Files::isRegularFile).map(p -> p.getFileName().toString()).toList();
        }
    }
}
