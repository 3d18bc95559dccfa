package io.duckguard.runtime.repository;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.runtime.crypto.CorruptObjectException;
import io.duckguard.runtime.crypto.DataKey;
import io.duckguard.runtime.crypto.MasterKey;
import io.duckguard.runtime.crypto.ObjectCodec;
import io.duckguard.runtime.util.Bytes;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Envelope encryption in a repository: wrong keys, rotation (old and new key both work until the old one is
 * retired; after that only the new one), rotation while objects are being written, retirement refusals, key age,
 * fail-closed settings, and format-1 repositories (read as they are, upgraded by a writer, rotated afterwards).
 */
class KeyRotationTest {
    static final String DB = "trades.duckdb";

    @TempDir
    Path tmp;

    /** What was written: per epoch the manifest's blocks and the WAL bytes, to check every object reads back. */
    final Map<Long, List<byte[]>> blocks = new HashMap<>();
    final Map<Long, byte[]> wal = new HashMap<>();

    private void writeEpoch(Repository repo, long epoch, int nBlocks, Random rnd) throws Exception {
        DatabaseHistory h = repo.database(DB);
        if (!h.exists()) {
            Properties p = new Properties();
            p.setProperty("source-path", "/data/" + DB);
            h.writeInfo(p);
        }
        List<BlockRef> refs = new ArrayList<>();
        List<byte[]> datas = new ArrayList<>();
        try (Packs.Writer w = new Packs.Writer(repo)) {
            for (int i = 0; i < nBlocks; i++) {
                byte[] data = new byte[4096];
                rnd.nextBytes(data);
                byte[] id = repo.codec().contentId(data, 0, data.length);
                byte[] sealed = repo.codec().seal(w.sealingKey(), data, 0, data.length, "block:" + Bytes.hex(id), 1);
                refs.add(w.add(id, sealed, data.length));
                datas.add(data);
            }
            w.finish();
        }
        blocks.put(epoch, datas);
        byte[] sha = new byte[32];
        rnd.nextBytes(sha);
        h.writeManifest(new Manifest(epoch, System.currentTimeMillis(), nBlocks * 4096L, sha, new byte[32], epoch, "1.5.6",
                "test", refs));
        h.createWalLog(epoch, sha);
        byte[] bytes = new byte[3000];
        rnd.nextBytes(bytes);
        try (WalLog.Writer w = h.openWalLogForAppend(epoch)) {
            w.append(0, 1000, List.of(new CommitMark(1000, 1)), bytes, 0, 1000);
            w.append(1000, 3000, List.of(new CommitMark(3000, 2)), bytes, 1000, 2000);
        }
        wal.put(epoch, bytes);
    }

    /** Every manifest, block and WAL record of every epoch written reads back exactly. */
    private void assertEverythingReads(Repository repo) throws Exception {
        DatabaseHistory h = repo.database(DB);
        for (long e : blocks.keySet()) {
            Manifest m = h.readManifest(e);
            for (int i = 0; i < m.chunks().size(); i++) assertArrayEquals(blocks.get(e).get(i), Packs.readBlock(repo, m.chunks().get(i)));
            WalLog.Contents c = h.readWalLog(e);
            byte[] got = new byte[(int) c.walEnd()];
            for (WalRecord r : c.records()) System.arraycopy(r.walBytes(), 0, got, (int) r.walStart(), r.walBytes().length);
            assertArrayEquals(wal.get(e), got, "WAL of epoch " + e);
        }
    }

    private static String message(Class<? extends Exception> t, org.junit.jupiter.api.function.Executable e) {
        return assertThrows(t, e).getMessage();
    }

    @Test
    void everyObjectNamesItsOwnDataKeyAndEachKeyIsWrappedNotStored() throws Exception {
        MasterKey a = MasterKey.generate();
        Repository repo = Repository.create(tmp.resolve("repo"), a);
        writeEpoch(repo, 1, 3, new Random(1));
        writeEpoch(repo, 2, 2, new Random(2));
        assertEverythingReads(Repository.open(repo.root(), a));
        DatabaseHistory h = repo.database(DB);
        assertEquals(DataKeys.manifestKeyId(DB, 1), ObjectCodec.keyIdOf(Files.readAllBytes(h.epochDir(1).resolve("manifest"))));
        assertEquals(DataKeys.walKeyId(DB, 2), ObjectCodec.keyIdOf(Arrays2.frameObject(Files.readAllBytes(h.epochDir(2).resolve("wal")))));
        Manifest m = h.readManifest(1);
        String pack = m.chunks().get(0).pack();
        assertTrue(repo.keys().exists(DataKeys.packKeyId(pack)));
        List<String> ids = repo.keys().ids();
        assertTrue(ids.containsAll(List.of("id", "meta", DataKeys.walKeyId(DB, 1), DataKeys.manifestKeyId(DB, 2))), ids.toString());
        // Records hold wraps only: the id key, which the test can recompute through contentId, never appears raw.
        for (String id : ids) {
            DataKeys.Record r = repo.keys().read(id);
            assertEquals(List.of(a.keyId()), new ArrayList<>(r.wraps().keySet()));
        }
        String props = Files.readString(repo.root().resolve(Repository.PROPS));
        assertTrue(props.contains("format=2") && props.contains("key-id=" + a.keyId()) && props.contains("master." + a.keyId() + ".public="), props);
    }

    @Test
    void aWrongKeyIsAClearErrorAndWritesNothing() throws Exception {
        MasterKey a = MasterKey.generate();
        Path dir = tmp.resolve("repo");
        Repository.create(dir, a);
        long before = Files.walk(dir).count();
        MasterKey other = MasterKey.generate();
        String m = message(RepositoryException.class, () -> Repository.open(dir, other));
        assertTrue(m.contains("wrong key") && m.contains(other.keyId()) && m.contains(a.keyId()), m);
        assertEquals(before, Files.walk(dir).count());
        // A key record swapped under another id does not open either.
        Files.copy(dir.resolve("keys/meta"), dir.resolve("keys/id"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        m = message(RepositoryException.class, () -> Repository.open(dir, a));
        assertTrue(m.contains("keys/id"), m);
    }

    @Test
    void rotationReWrapsWithoutReEncryptingThenRetireLeavesOnlyTheNewKey() throws Exception {
        MasterKey a = MasterKey.generate();
        MasterKey b = MasterKey.generate();
        Path dir = tmp.resolve("repo");
        Repository repo = Repository.create(dir, a);
        for (long e = 1; e <= 3; e++) writeEpoch(repo, e, 4, new Random(e));
        Map<Path, byte[]> dataBefore = dataObjects(dir);
        int keysBefore = repo.keys().ids().size();

        List<String> progress = new ArrayList<>();
        KeyRotation.RotateReport rep = KeyRotation.rotate(repo, b, progress::add);
        assertEquals(a.keyId(), rep.oldKeyId());
        assertEquals(b.keyId(), rep.newKeyId());
        assertEquals(keysBefore, rep.rewrapped());
        assertTrue(rep.keysPerSecond() > 0);
        // Not one data object changed: only the key records did.
        Map<Path, byte[]> dataAfter = dataObjects(dir);
        assertEquals(dataBefore.keySet(), dataAfter.keySet());
        for (Path p : dataBefore.keySet()) assertArrayEquals(dataBefore.get(p), dataAfter.get(p), p.toString());

        // Before retire: both keys open everything; b is current.
        assertEverythingReads(Repository.open(dir, a));
        assertEverythingReads(Repository.open(dir, b));
        assertEquals(b.keyId(), Repository.open(dir, a).keyStatus().currentKeyId());
        assertEquals(2, Repository.open(dir, a).keyStatus().activeKeys());
        // A repository opened with the old key keeps writing, and what it writes is wrapped for the new key too.
        Repository stillOld = Repository.open(dir, a);
        writeEpoch(stillOld, 4, 2, new Random(4));
        assertEquals(2, stillOld.keys().read(DataKeys.walKeyId(DB, 4)).wraps().size());

        List<KeyRotation.KeyLine> lines = KeyRotation.list(dir);
        assertEquals(2, lines.size());
        assertTrue(lines.get(1).current() && lines.get(1).id().equals(b.keyId()));
        assertEquals(lines.get(0).wrappedDataKeys(), lines.get(1).wrappedDataKeys());

        // Retire: refused for the current key, and when opened with the key being retired.
        Repository withB = Repository.open(dir, b);
        String m = message(RepositoryException.class, () -> KeyRotation.retire(withB, b.keyId(), s -> { }));
        assertTrue(m.contains("current key"), m);
        m = message(RepositoryException.class, () -> KeyRotation.retire(Repository.open(dir, a), a.keyId(), s -> { }));
        assertTrue(m.contains("key that stays"), m);
        KeyRotation.RetireReport rr = KeyRotation.retire(withB, a.keyId(), s -> { });
        assertEquals(rr.dataKeys(), rr.wrapsRemoved());

        // After retire: the old key alone fails with a clear message; the new key opens everything.
        m = message(RepositoryException.class, () -> Repository.open(dir, a));
        assertTrue(m.contains("retired") && m.contains(b.keyId()), m);
        assertEverythingReads(Repository.open(dir, b));
        for (String id : withB.keys().ids()) assertEquals(List.of(b.keyId()), new ArrayList<>(withB.keys().read(id).wraps().keySet()));
        // Even with the retired key's secret, the records no longer hold anything it opens.
        DataKeys withA = new DataKeys(dir, () -> MasterKeys.from(Repository.readProps(dir)), List.of(a));
        CorruptObjectException ce = assertThrows(CorruptObjectException.class, () -> withA.resolve("meta", "keys/meta"));
        assertTrue(ce.getMessage().contains("not wrapped for master key " + a.keyId()), ce.getMessage());
        // Retiring again is harmless; rotating back to a retired key is refused.
        assertEquals(0, KeyRotation.retire(withB, a.keyId(), s -> { }).wrapsRemoved());
        m = message(RepositoryException.class, () -> KeyRotation.rotate(withB, a, s -> { }));
        assertTrue(m.contains("retired"), m);
    }

    @Test
    void retireIsRefusedWhileADataKeyHasNoOtherWrap() throws Exception {
        MasterKey a = MasterKey.generate();
        MasterKey b = MasterKey.generate();
        Path dir = tmp.resolve("repo");
        Repository repo = Repository.create(dir, a);
        writeEpoch(repo, 1, 2, new Random(1));
        KeyRotation.rotate(repo, b, s -> { });
        // A record that (as if written by an agent that never saw b) has a's wrap only.
        String victim = DataKeys.walKeyId(DB, 1);
        DataKeys.Record r = repo.keys().read(victim);
        Map<String, byte[]> onlyA = new java.util.TreeMap<>(r.wraps());
        onlyA.remove(b.keyId());
        repo.keys().write(new DataKeys.Record(r.id(), r.kind(), r.owner(), r.created(), onlyA));
        Repository withB = Repository.open(dir, b);
        String m = message(RepositoryException.class, () -> KeyRotation.retire(withB, a.keyId(), s -> { }));
        assertTrue(m.contains("refusing to retire") && m.contains(victim) && m.contains("keys rotate again"), m);
        assertTrue(Repository.open(dir, a).keys().read(victim).wraps().containsKey(a.keyId()), "nothing was removed");
        // The fix the message names: rotate again (same new key) completes it, then retire works.
        KeyRotation.RotateReport again = KeyRotation.rotate(Repository.open(dir, a), b, s -> { });
        assertEquals(1, again.rewrapped());
        KeyRotation.retire(withB, a.keyId(), s -> { });
        assertEverythingReads(Repository.open(dir, b));
    }

    /** The agent keeps shipping (new WAL records, new epochs, new packs) while another process rotates. */
    @Test
    void rotationWhileObjectsAreBeingWrittenLosesNothing() throws Exception {
        MasterKey a = MasterKey.generate();
        MasterKey b = MasterKey.generate();
        Path dir = tmp.resolve("repo");
        Repository agent = Repository.create(dir, a);
        writeEpoch(agent, 1, 2, new Random(1));
        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread writer = new Thread(() -> {
            try {
                for (long e = 2; !stop.get() || e < 6; e++) writeEpoch(agent, e, 2, new Random(e));
            } catch (Throwable t) {
                failure.set(t);
            }
        });
        writer.start();
        Thread.sleep(30);
        Repository cli = Repository.open(dir, a);
        KeyRotation.rotate(cli, b, s -> { });
        Thread.sleep(30);
        stop.set(true);
        writer.join();
        if (failure.get() != null) throw new AssertionError(failure.get());
        // Whatever the agent created around the rotation is wrapped for b (or a second rotate run finds it).
        KeyRotation.rotate(Repository.open(dir, a), b, s -> { });
        KeyRotation.retire(Repository.open(dir, b), a.keyId(), s -> { });
        assertTrue(blocks.size() >= 5, "epochs written: " + blocks.size());
        assertEverythingReads(Repository.open(dir, b));
    }

    @Test
    void keyAgeIsReportedAndWarnedAboutOnceOverTheMaximum() throws Exception {
        MasterKey a = MasterKey.generate();
        Path dir = tmp.resolve("repo");
        Repository repo = Repository.create(dir, a);
        KeyStatus s = repo.keyStatus();
        assertTrue(s.encrypted());
        assertEquals(0, s.keyAgeDays());
        assertEquals(a.keyId(), s.currentKeyId());
        assertEquals(a.keyId(), s.openedWithKeyId());
        assertFalse(s.exceeds(Duration.ofDays(90)));
        assertNull(KeyAgeMonitor.check(repo, Duration.ofDays(90)));
        // Age the key: rewrite its creation date 100 days back.
        Properties p = Repository.readProps(dir);
        p.setProperty("master." + a.keyId() + ".created", Instant.now().minus(Duration.ofDays(100)).toString());
        Repository.writeProps(dir, p, true);
        KeyStatus old = repo.keyStatus();
        assertEquals(100, old.keyAgeDays());
        assertTrue(old.exceeds(Duration.ofDays(90)));
        String w = KeyAgeMonitor.check(repo, Duration.ofDays(90));
        assertNotNull(w);
        assertTrue(w.contains("100 days old") && w.contains("keys rotate"), w);
        // Rotation makes the age go back to zero, for the process still holding the old key too.
        KeyRotation.rotate(repo, MasterKey.generate(), x -> { });
        assertEquals(0, repo.keyStatus().keyAgeDays());
        assertNull(KeyAgeMonitor.check(repo, Duration.ofDays(90)));
        assertFalse(Repository.create(tmp.resolve("plain"), null).keyStatus().encrypted());
    }

    @Test
    void anEncryptedRepositoryIsNeverTreatedAsUnencrypted() throws Exception {
        MasterKey a = MasterKey.generate();
        Path dir = tmp.resolve("repo");
        Repository.create(dir, a);
        Path props = dir.resolve(Repository.PROPS);
        Files.writeString(props, Files.readString(props).replace("encryption=aes-256-gcm", "encryption=none"));
        String m = message(RepositoryException.class, () -> Repository.open(dir, null));
        assertTrue(m.contains("refusing") && m.contains("encryption=none"), m);
        m = message(Exception.class, () -> RepositoryOpener.openOrCreate(dir, false, null));
        assertTrue(m.contains("refusing"), m);
    }

    @Test
    void aKeyInUseIsKeptFromTheOrphanSweepAndPutBackIfItsRecordVanished() throws Exception {
        MasterKey a = MasterKey.generate();
        Repository repo = Repository.create(tmp.resolve("repo"), a);
        writeEpoch(repo, 1, 1, new Random(1));
        String id = DataKeys.walKeyId(DB, 1);
        Path rec = repo.keys().dir().resolve(id);
        Files.setLastModifiedTime(rec, java.nio.file.attribute.FileTime.from(Instant.now().minus(Duration.ofDays(1))));
        repo.walKey(DB, 1); // the agent opens the epoch's log for appending
        assertTrue(Files.getLastModifiedTime(rec).toInstant().isAfter(Instant.now().minus(Duration.ofMinutes(1))));
        Files.delete(rec);
        try (WalLog.Writer w = repo.database(DB).openWalLogForAppend(1)) {
            w.append(3000, 3001, List.of(new CommitMark(3001, 3)), new byte[] {42}, 0, 1);
        }
        assertTrue(Files.exists(rec), "stored again from the key in use");
        assertEquals(3001, Repository.open(repo.root(), a).database(DB).readWalLog(1).walEnd());
    }

    @Test
    void aRepositoryWhoseCreationCrashedBeforeItsPropertiesCanBeCreatedAgain() throws Exception {
        Path dir = tmp.resolve("repo");
        Files.createDirectories(dir.resolve("keys"));
        Files.writeString(dir.resolve("keys/meta"), "half-made");
        Repository r = Repository.create(dir, MasterKey.generate());
        assertTrue(r.keys().exists("meta") && r.keys().exists("id"));
    }

    // ------------------------------------------------------------------------------------------ format 1

    /** An object as duckguard format 1 sealed it: 'D' 'G' 1 flags nonce body, the derived key, AAD header || name. */
    static byte[] sealV1(MasterKey k, byte[] plain, String name) throws Exception {
        byte[] out = new byte[4 + 12 + plain.length + 16];
        out[0] = 'D';
        out[1] = 'G';
        out[2] = 1;
        out[3] = 2;
        byte[] nonce = new byte[12];
        new SecureRandom().nextBytes(nonce);
        System.arraycopy(nonce, 0, out, 4, 12);
        Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
        c.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(k.derive("duckguard object encryption v1"), "AES"), new GCMParameterSpec(128, nonce));
        c.updateAAD(out, 0, 4);
        c.updateAAD(name.getBytes(StandardCharsets.UTF_8));
        c.doFinal(plain, 0, plain.length, out, 16);
        return out;
    }

    /** A repository exactly as format 1 wrote it: one epoch with a block, a manifest and a WAL log of one record. */
    private Path formatOneRepository(MasterKey k) throws Exception {
        Path dir = tmp.resolve("v1");
        String id = "6b1e6a9e-0000-4000-8000-000000000001";
        Files.createDirectories(dir);
        Properties p = new Properties();
        p.setProperty("format", "1");
        p.setProperty("id", id);
        p.setProperty("created", Instant.now().minus(Duration.ofDays(30)).toString());
        p.setProperty("encryption", "aes-256-gcm");
        p.setProperty("key-id", k.keyId());
        p.setProperty("key-check", Bytes.hex(sealV1(k, "duckguard key check".getBytes(StandardCharsets.UTF_8), "key-check:" + id)));
        java.io.StringWriter w = new java.io.StringWriter();
        p.store(w, "format 1");
        Files.writeString(dir.resolve(Repository.PROPS), w.toString());
        Path db = dir.resolve("databases").resolve(DB);
        Files.createDirectories(db.resolve("epochs/0000000001"));
        Files.writeString(db.resolve("database.properties"), "source-path=/data/" + DB + "\n");
        byte[] block = new byte[4096];
        new Random(11).nextBytes(block);
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(k.derive("duckguard object id v1"), "HmacSHA256"));
        byte[] bid = mac.doFinal(block);
        byte[] sealedBlock = sealV1(k, block, "block:" + Bytes.hex(bid));
        String pack = "ab" + "0".repeat(30);
        Files.createDirectories(dir.resolve("packs/ab"));
        Files.write(dir.resolve("packs/ab").resolve(pack), sealedBlock);
        blocks.put(1L, List.of(block));
        byte[] sha = new byte[32];
        Manifest m = new Manifest(1, System.currentTimeMillis(), 4096, sha, new byte[32], 1, "1.5.6", "v1",
                List.of(new BlockRef(bid, pack, 0, sealedBlock.length, 4096)));
        Files.write(db.resolve("epochs/0000000001/manifest"), sealV1(k, m.encode(), "databases/" + DB + "/epochs/0000000001/manifest"));
        String logName = "databases/" + DB + "/epochs/0000000001/wal";
        ByteBuffer header = ByteBuffer.allocate(4 + 8 + 32).putInt(1).putLong(1).put(sha);
        byte[] walBytes = new byte[500];
        new Random(12).nextBytes(walBytes);
        ByteBuffer rec = ByteBuffer.allocate(8 + 8 + 4 + 16 + 500).putLong(0).putLong(500).putInt(1).putLong(500).putLong(7).put(walBytes);
        java.io.ByteArrayOutputStream log = new java.io.ByteArrayOutputStream();
        log.write(WalLog.frame(sealV1(k, header.array(), logName + "#header")).array());
        log.write(WalLog.frame(sealV1(k, rec.array(), logName + "#0")).array());
        Files.write(db.resolve("epochs/0000000001/wal"), log.toByteArray());
        wal.put(1L, walBytes);
        return dir;
    }

    @Test
    void aFormatOneRepositoryIsReadAsItIsAndUpgradedByAWriterThenRotates() throws Exception {
        MasterKey k = MasterKey.generate();
        Path dir = formatOneRepository(k);
        byte[] propsBefore = Files.readAllBytes(dir.resolve(Repository.PROPS));

        // Read-only tools read it unchanged.
        Repository ro = RepositoryOpener.openExisting(dir, writeKey(k));
        assertEquals(1, ro.format());
        assertEverythingReads(ro);
        assertArrayEquals(propsBefore, Files.readAllBytes(dir.resolve(Repository.PROPS)), "reading changed nothing");
        assertFalse(Files.exists(dir.resolve("keys")));
        String m = message(RepositoryException.class, () -> writeEpoch(ro, 2, 1, new Random(2)));
        assertTrue(m.contains("format 1") && m.contains("read-only"), m);
        assertEquals(1, Repository.open(dir, k).format());
        m = message(RepositoryException.class, () -> Repository.open(dir, MasterKey.generate()));
        assertTrue(m.contains("wrong key"), m);

        // The agent upgrades it; old objects stay readable, new ones use data keys, block ids keep their key.
        Repository up = RepositoryOpener.openOrCreate(dir, true, writeKey(k));
        assertEquals(2, up.format());
        assertTrue(Files.readString(dir.resolve(Repository.PROPS)).contains("format=2"));
        assertTrue(up.keys().exists("legacy") && up.keys().exists("id") && up.keys().exists("meta"));
        byte[] oldBlock = blocks.get(1L).get(0);
        assertArrayEquals(ro.codec().contentId(oldBlock, 0, 4096), up.codec().contentId(oldBlock, 0, 4096), "dedup survives the upgrade");
        writeEpoch(up, 2, 2, new Random(2));
        assertEverythingReads(Repository.open(dir, k));
        assertEquals(30, up.keyStatus().keyAgeDays(), "the key is as old as the repository");

        // And it rotates like any other: after retire, the new key alone reads the format-1 objects too.
        MasterKey b = MasterKey.generate();
        KeyRotation.rotate(up, b, s -> { });
        KeyRotation.retire(Repository.open(dir, b), k.keyId(), s -> { });
        assertEverythingReads(Repository.open(dir, b));
        assertThrows(RepositoryException.class, () -> Repository.open(dir, k));
    }

    private Path writeKey(MasterKey k) throws Exception {
        Path f = tmp.resolve("k-" + k.keyId() + ".key");
        if (!Files.exists(f)) k.store(f);
        return f;
    }

    /** Every file outside keys/ and repository.properties, with its content. */
    private static Map<Path, byte[]> dataObjects(Path dir) throws Exception {
        Map<Path, byte[]> out = new HashMap<>();
        try (var s = Files.walk(dir)) {
            for (Path p : s.filter(Files::isRegularFile).toList()) {
                Path rel = dir.relativize(p);
                if (rel.startsWith("keys") || rel.toString().equals(Repository.PROPS)) continue;
                out.put(rel, Files.readAllBytes(p));
            }
        }
        return out;
    }

    /** Helpers for reading a WAL log's first framed object. */
    static final class Arrays2 {
        static byte[] frameObject(byte[] log) {
            int len = ByteBuffer.wrap(log, 0, 4).getInt();
            return java.util.Arrays.copyOfRange(log, 8, 8 + len);
        }
    }

    @Test
    void aFailedSnapshotLeavesNoPackKeyBehindAndBlocksMovedBetweenPacksStayReadable() throws Exception {
        MasterKey a = MasterKey.generate();
        Repository repo = Repository.create(tmp.resolve("repo"), a);
        int keys = repo.keys().ids().size();
        try (Packs.Writer w = new Packs.Writer(repo)) {
            byte[] data = new byte[100];
            byte[] id = repo.codec().contentId(data, 0, data.length);
            w.add(id, repo.codec().seal(w.sealingKey(), data, 0, data.length, "block:" + Bytes.hex(id), 1), data.length);
            assertEquals(keys + 1, repo.keys().ids().size(), "the pack's key is stored before the pack");
            // no finish(): the snapshot failed
        }
        assertEquals(keys, repo.keys().ids().size(), "an unfinished pack takes its key with it");

        // A block sealed for one pack but stored in another is re-encrypted for that pack's key.
        try (Packs.Writer w = new Packs.Writer(repo)) {
            DataKey early = w.sealingKey();
            byte[] d1 = "one".repeat(50).getBytes(StandardCharsets.UTF_8);
            byte[] id1 = repo.codec().contentId(d1, 0, d1.length);
            BlockRef r1 = w.add(id1, repo.codec().seal(early, d1, 0, d1.length, "block:" + Bytes.hex(id1), 1), d1.length);
            assertEquals(DataKeys.packKeyId(r1.pack()), early.id());
            w.finish();
            assertArrayEquals(d1, Packs.readBlock(repo, r1));
        }
    }
}
