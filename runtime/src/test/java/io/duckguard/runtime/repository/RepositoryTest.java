package io.duckguard.runtime.repository;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.runtime.crypto.MasterKey;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Properties;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Opening and creating repositories: wrong key, missing key, no repository, wrong place. Each must be a clear
 * error an operator can act on, never a repository silently opened with the wrong settings.
 */
class RepositoryTest {
    @TempDir
    Path tmp;

    private static final boolean ROOT = "root".equals(System.getProperty("user.name"));

    private static String message(Class<? extends Exception> type, ThrowingRunnable r) {
        return assertThrows(type, r::run).getMessage();
    }

    interface ThrowingRunnable {
        void run() throws Exception;
    }

    /** Runs {@code body} with user.home pointing at {@code home}: the default key location lives there. */
    private static void withHome(Path home, ThrowingRunnable body) throws Exception {
        String saved = System.getProperty("user.home");
        System.setProperty("user.home", home.toString());
        try {
            body.run();
        } finally {
            System.setProperty("user.home", saved);
        }
    }

    @Test
    void createdRepositoryOpensWithItsKey() throws Exception {
        MasterKey key = MasterKey.generate();
        Path dir = tmp.resolve("repo");
        Repository created = Repository.create(dir, key);
        Repository opened = Repository.open(dir, key);
        assertEquals(created.id(), opened.id());
        assertTrue(opened.codec().encrypted());
        assertTrue(Repository.exists(dir));
        assertEquals(dir, opened.root());
        assertTrue(opened.databaseNames().isEmpty());
        String props = Files.readString(dir.resolve(Repository.PROPS));
        assertTrue(props.contains("key-id=" + key.keyId()), props);
    }

    @Test
    void unencryptedRepositoryOpensWithoutKey() throws Exception {
        Path dir = tmp.resolve("plain");
        Repository.create(dir, null);
        Repository r = Repository.open(dir, null);
        assertFalse(r.codec().encrypted());
    }

    @Test
    void wrongKeyIsReportedAsSuch() throws Exception {
        MasterKey key = MasterKey.generate();
        MasterKey other = MasterKey.generate();
        Path dir = tmp.resolve("repo");
        Repository.create(dir, key);
        String m = message(RepositoryException.class, () -> Repository.open(dir, other));
        assertTrue(m.contains("wrong key"), m);
        assertTrue(m.contains(key.keyId()) && m.contains(other.keyId()), "shows both key ids: " + m);
    }

    @Test
    void encryptedRepositoryWithoutKeySaysToGiveOne() throws Exception {
        MasterKey key = MasterKey.generate();
        Path dir = tmp.resolve("repo");
        Repository.create(dir, key);
        String m = message(RepositoryException.class, () -> Repository.open(dir, null));
        assertTrue(m.contains("encrypted") && m.contains("key-file"), m);
        assertTrue(m.contains(key.keyId()), "names the key id to look for: " + m);
    }

    @Test
    void directoryWithoutRepositoryIsReported() throws Exception {
        Files.createDirectories(tmp.resolve("empty"));
        String m = message(RepositoryException.class, () -> Repository.open(tmp.resolve("empty"), null));
        assertTrue(m.contains("no duckguard repository"), m);
        String m2 = message(RepositoryException.class, () -> RepositoryOpener.openExisting(tmp.resolve("missing"), null));
        assertTrue(m2.contains("no duckguard repository") && m2.contains("does not exist"), m2);
    }

    @Test
    void newerFormatIsRefused() throws Exception {
        Path dir = tmp.resolve("repo");
        Repository.create(dir, null);
        Path props = dir.resolve(Repository.PROPS);
        Files.writeString(props, Files.readString(props).replace("format=" + Repository.FORMAT, "format=" + (Repository.FORMAT + 1)));
        String m = message(RepositoryException.class, () -> Repository.open(dir, null));
        assertTrue(m.contains("format " + (Repository.FORMAT + 1)), m);
    }

    @Test
    void createRefusesANonEmptyDirectoryAndAnExistingRepository() throws Exception {
        Path dir = tmp.resolve("data");
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("precious.txt"), "do not mix backups into me");
        String m = message(RepositoryException.class, () -> Repository.create(dir, null));
        assertTrue(m.contains("not empty"), m);
        assertFalse(Repository.exists(dir));

        Path repo = tmp.resolve("repo");
        Repository.create(repo, null);
        String again = message(RepositoryException.class, () -> Repository.create(repo, MasterKey.generate()));
        assertTrue(again.contains("already exists"), again);
    }

    @Test
    void createInAnExistingEmptyDirectoryWorks() throws Exception {
        Path dir = tmp.resolve("mounted-volume");
        Files.createDirectories(dir);
        Repository.create(dir, MasterKey.generate());
        assertTrue(Repository.exists(dir));
    }

    // ---------------------------------------------------------------- RepositoryOpener (the agent's path)

    @Test
    void openOrCreateMakesAKeyOnceAndReusesIt() throws Exception {
        Path dir = tmp.resolve("repo");
        Path kf = tmp.resolve("keys").resolve("repo.key");
        Repository first = RepositoryOpener.openOrCreate(dir, true, kf);
        assertTrue(Files.isRegularFile(kf));
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(kf)));
        Repository second = RepositoryOpener.openOrCreate(dir, true, kf);
        assertEquals(first.id(), second.id());
        assertEquals(first.id(), RepositoryOpener.openExisting(dir, kf).id());
    }

    @Test
    void openOrCreateWithTheDefaultKeyLocation() throws Exception {
        Path home = tmp.resolve("home");
        Files.createDirectories(home);
        Path dir = tmp.resolve("repo");
        withHome(home, () -> {
            Repository r = RepositoryOpener.openOrCreate(dir, true, null);
            Path def = home.resolve(".duckguard").resolve("keys").resolve(r.id() + ".key");
            assertEquals(def, RepositoryOpener.defaultKeyFile(r.id()));
            assertTrue(Files.isRegularFile(def));
            assertEquals(r.id(), RepositoryOpener.openOrCreate(dir, true, null).id());
            assertEquals(r.id(), RepositoryOpener.openExisting(dir, null).id());
        });
    }

    @Test
    void existingEncryptedRepositoryWithAMissingKeyFileIsAClearError() throws Exception {
        Path dir = tmp.resolve("repo");
        Path kf = tmp.resolve("repo.key");
        RepositoryOpener.openOrCreate(dir, true, kf);
        String keyId = MasterKey.load(kf).keyId();
        Files.delete(kf);
        // The agent must not make a fresh key for a repository that already holds backups under another one.
        String m = message(MasterKey.KeyException.class, () -> RepositoryOpener.openOrCreate(dir, true, kf));
        assertTrue(m.contains("does not exist") && m.contains(keyId), m);
        assertFalse(Files.exists(kf), "no new key was made");

        Path home = tmp.resolve("home");
        Files.createDirectories(home);
        withHome(home, () -> {
            String noKey = message(MasterKey.KeyException.class, () -> RepositoryOpener.openOrCreate(dir, true, null));
            assertTrue(noKey.contains("no key-file was given") && noKey.contains(keyId), noKey);
            String cli = message(MasterKey.KeyException.class, () -> RepositoryOpener.openExisting(dir, null));
            assertTrue(cli.contains("--key-file"), cli);
        });
    }

    @Test
    void openingWithAnotherKeyFileIsAWrongKey() throws Exception {
        Path dir = tmp.resolve("repo");
        RepositoryOpener.openOrCreate(dir, true, tmp.resolve("a.key"));
        MasterKey.generate().store(tmp.resolve("b.key"));
        String m = message(RepositoryException.class, () -> RepositoryOpener.openOrCreate(dir, true, tmp.resolve("b.key")));
        assertTrue(m.contains("wrong key"), m);
        String cli = message(RepositoryException.class, () -> RepositoryOpener.openExisting(dir, tmp.resolve("b.key")));
        assertTrue(cli.contains("wrong key"), cli);
    }

    @Test
    void encryptionSettingsThatContradictTheRepositoryAreRefused() throws Exception {
        Path enc = tmp.resolve("enc");
        RepositoryOpener.openOrCreate(enc, true, tmp.resolve("enc.key"));
        String m = message(RepositoryException.class, () -> RepositoryOpener.openOrCreate(enc, false, null));
        assertTrue(m.contains("encrypted"), m);

        Path plain = tmp.resolve("plain");
        RepositoryOpener.openOrCreate(plain, false, null);
        MasterKey.generate().store(tmp.resolve("plain.key"));
        String m2 = message(RepositoryException.class, () -> RepositoryOpener.openOrCreate(plain, true, tmp.resolve("plain.key")));
        assertTrue(m2.contains("encryption=none"), m2);
    }

    /**
     * Forgetting encryption=none when restarting an app whose repository was created with it: the message must
     * say the repository is NOT encrypted, not send the operator looking for a key that never existed.
     */
    @Test
    void unencryptedRepositoryOpenedWithEncryptionOnSaysEncryptionNone() throws Exception {
        Path plain = tmp.resolve("plain");
        RepositoryOpener.openOrCreate(plain, false, null);
        Path home = tmp.resolve("home");
        Files.createDirectories(home);
        withHome(home, () -> {
            Exception e = assertThrows(Exception.class, () -> RepositoryOpener.openOrCreate(plain, true, null));
            assertTrue(e.getMessage().contains("encryption=none"), e.getMessage());
            Exception e2 = assertThrows(Exception.class, () -> RepositoryOpener.openOrCreate(plain, true, tmp.resolve("none.key")));
            assertTrue(e2.getMessage().contains("encryption=none"), e2.getMessage());
        });
    }

    @Test
    void uncreatableRepositoryDirectoryIsAClearError() throws Exception {
        Path dir;
        if (ROOT) {
            // root ignores permissions: make creation impossible by putting the repository under a regular file.
            Path file = tmp.resolve("file.txt");
            Files.writeString(file, "x");
            dir = file.resolve("repo");
        } else {
            Path ro = tmp.resolve("readonly");
            Files.createDirectories(ro);
            Files.setPosixFilePermissions(ro, PosixFilePermissions.fromString("r-xr-xr-x"));
            dir = ro.resolve("repo");
        }
        Path target = dir;
        for (boolean encrypted : new boolean[] {true, false}) {
            IOException e = assertThrows(IOException.class,
                    () -> RepositoryOpener.openOrCreate(target, encrypted, encrypted ? tmp.resolve("k" + encrypted) : null));
            assertTrue(e instanceof RepositoryException, "a RepositoryException, not a raw " + e);
            assertTrue(e.getMessage().contains(target.toString()), e.getMessage());
            assertTrue(e.getMessage().contains("cannot create repository directory"), e.getMessage());
        }
    }

    /** A repository path that names an existing regular file (a typo, or a file where the volume should be). */
    @Test
    void repositoryPathThatIsAFileIsAClearError() throws Exception {
        Path file = tmp.resolve("backup");
        Files.writeString(file, "not a directory");
        IOException e = assertThrows(IOException.class, () -> RepositoryOpener.openOrCreate(file, false, null));
        assertTrue(e instanceof RepositoryException, "a RepositoryException, not a raw " + e);
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        assertEquals("not a directory", Files.readString(file), "the file is untouched");
    }

    /**
     * With no key-file, openOrCreate creates the repository first and stores the default key after. When the key
     * cannot be stored, an encrypted repository whose key exists nowhere is left behind, and every later start
     * fails with "its default key ... does not exist".
     */
    @Test
    void failureToStoreTheDefaultKeyLeavesNoRepositoryBehind() throws Exception {
        Path homeIsAFile = tmp.resolve("home");
        Files.writeString(homeIsAFile, "x"); // ~/.duckguard/keys cannot be created
        Path dir = tmp.resolve("repo");
        withHome(homeIsAFile, () -> {
            assertThrows(Exception.class, () -> RepositoryOpener.openOrCreate(dir, true, null));
            assertFalse(Repository.exists(dir), "a repository encrypted with a key stored nowhere was left behind");
        });
    }

    @Test
    void databaseHistoryRecordsItsIdentity() throws Exception {
        Repository r = Repository.create(tmp.resolve("repo"), MasterKey.generate());
        DatabaseHistory h = r.database("trades.duckdb");
        assertFalse(h.exists());
        String m = message(RepositoryException.class, h::info);
        assertTrue(m.contains("trades.duckdb"), m);
        Properties p = new Properties();
        p.setProperty("source-path", "/data/trades.duckdb");
        h.writeInfo(p);
        assertTrue(h.exists());
        assertEquals("/data/trades.duckdb", r.database("trades.duckdb").info().getProperty("source-path"));
        assertEquals(java.util.List.of("trades.duckdb"), r.databaseNames());
    }
}
