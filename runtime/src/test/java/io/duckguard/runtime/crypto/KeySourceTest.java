package io.duckguard.runtime.crypto;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.runtime.crypto.MasterKey.KeyException;
import io.duckguard.runtime.repository.Repository;
import io.duckguard.runtime.repository.RepositoryException;
import io.duckguard.runtime.repository.RepositoryOpener;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The three master key sources, each through the path the agent takes (RepositoryOpener), each problem a clear error. */
class KeySourceTest {
    @TempDir
    Path tmp;

    private final Map<String, String> env = new HashMap<>();

    private static String message(Class<? extends Exception> type, org.junit.jupiter.api.function.Executable e) {
        return assertThrows(type, e).getMessage();
    }

    private static java.util.Properties props(Path dir) throws Exception {
        java.util.Properties p = new java.util.Properties();
        p.load(new java.io.StringReader(Files.readString(dir.resolve("repository.properties"))));
        return p;
    }

    private byte[] roundTrip(Repository r) throws Exception {
        byte[] sealed = r.codec().seal("hello".getBytes(StandardCharsets.UTF_8), "obj");
        return r.codec().open(sealed, "obj");
    }

    @Test
    void keystoreHoldsTheKeyUnderItsIdAndAWrongPasswordIsAClearError() throws Exception {
        Path ks = tmp.resolve("secrets").resolve("duckguard.p12");
        Path dir = tmp.resolve("repo");
        env.put("KS_PW", "correct horse battery staple");
        KeySource source = KeySource.keystore(ks, "KS_PW", env::get);
        Repository r = RepositoryOpener.openOrCreateWith(dir, true, source);
        assertTrue(Files.isRegularFile(ks));
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(ks)));
        String keyId = r.keyStatus().currentKeyId();
        java.security.KeyStore loaded = java.security.KeyStore.getInstance("PKCS12");
        try (var in = Files.newInputStream(ks)) {
            loaded.load(in, "correct horse battery staple".toCharArray());
        }
        assertTrue(loaded.containsAlias("duckguard-" + keyId), "entry duckguard-<key id>");
        assertEquals("keystore", props(dir).getProperty("master." + keyId + ".source"));

        // Reopened by the agent and by the CLI path.
        assertEquals(r.id(), RepositoryOpener.openOrCreateWith(dir, true, source).id());
        assertEquals("hello", new String(roundTrip(RepositoryOpener.openExisting(dir, source, false)), StandardCharsets.UTF_8));

        env.put("KS_PW", "wrong password");
        String m = message(KeyException.class, () -> RepositoryOpener.openExisting(dir, source, false));
        assertTrue(m.contains("wrong password") && m.contains(ks.toString()), m);
        env.remove("KS_PW");
        m = message(KeyException.class, () -> RepositoryOpener.openExisting(dir, source, false));
        assertTrue(m.contains("KS_PW") && m.contains("not set"), m);

        // A keystore that does not hold this repository's key.
        env.put("KS_PW", "pw2-pw2-pw2-pw2");
        Path other = tmp.resolve("other.p12");
        KeySource.keystore(other, "KS_PW", env::get).loadOrCreate(List.of());
        m = message(KeyException.class, () -> RepositoryOpener.openExisting(dir, KeySource.keystore(other, "KS_PW", env::get), false));
        assertTrue(m.contains("holds no key of this repository") && m.contains("duckguard-" + keyId), m);
    }

    @Test
    void passphraseKeysAreDerivedWithArgon2idAndTheParametersAreRecorded() throws Exception {
        Path dir = tmp.resolve("repo");
        env.put("DG_PASS", "a long and unguessable passphrase");
        KeySource source = KeySource.passphrase("DG_PASS", env::get); // the real costs: 64 MiB, 3 passes
        long t0 = System.nanoTime();
        Repository r = RepositoryOpener.openOrCreateWith(dir, true, source);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        String props = Files.readString(dir.resolve("repository.properties"));
        String id = r.keyStatus().currentKeyId();
        java.util.Properties p = props(dir);
        assertEquals("passphrase", p.getProperty("master." + id + ".source"), props);
        assertTrue(p.getProperty("master." + id + ".kdf").matches("argon2id\\$v=19\\$m=65536,t=3,p=1\\$[0-9a-f]{32}"), props);
        assertFalse(props.contains("a long and unguessable passphrase"));
        assertTrue(ms > 20, "Argon2id with 64 MiB is not free: " + ms + " ms");

        Repository again = RepositoryOpener.openExisting(dir, source, false);
        assertEquals("hello", new String(roundTrip(again), StandardCharsets.UTF_8));

        env.put("DG_PASS", "a long and unguessable passphrasE");
        String m = message(KeyException.class, () -> RepositoryOpener.openExisting(dir, source, false));
        assertTrue(m.contains("wrong passphrase") && m.contains("DG_PASS"), m);
        env.put("DG_PASS", "");
        m = message(KeyException.class, () -> RepositoryOpener.openExisting(dir, source, false));
        assertTrue(m.contains("DG_PASS") && m.contains("not set or empty"), m);
    }

    @Test
    void aNewPassphraseMustNotBeShortAndCheapCostsAreHonoured() throws Exception {
        env.put("P", "short");
        String m = message(KeyException.class,
                () -> RepositoryOpener.openOrCreateWith(tmp.resolve("r1"), true, KeySource.passphrase("P", env::get)));
        assertTrue(m.contains("at least " + KeySource.MIN_PASSPHRASE), m);
        assertFalse(Repository.exists(tmp.resolve("r1")));
        env.put("P", "twelve chars!");
        KeySource cheap = KeySource.passphrase("P", env::get, new KeySource.Argon2(1024, 1, 1));
        Repository r = RepositoryOpener.openOrCreateWith(tmp.resolve("r2"), true, cheap);
        assertTrue(props(tmp.resolve("r2")).getProperty("master." + r.keyStatus().currentKeyId() + ".kdf").contains("m=1024,t=1,p=1"));
        // Opening uses the recorded costs, whatever the source was told for new keys.
        assertEquals(r.id(), RepositoryOpener.openExisting(tmp.resolve("r2"), KeySource.passphrase("P", env::get), false).id());
    }

    @Test
    void aPassphraseCannotOpenAKeyFileRepositoryAndViceVersa() throws Exception {
        Path dir = tmp.resolve("repo");
        RepositoryOpener.openOrCreate(dir, true, tmp.resolve("k.key"));
        env.put("P", "a long and unguessable passphrase");
        String m = message(KeyException.class, () -> RepositoryOpener.openExisting(dir, KeySource.passphrase("P", env::get), false));
        assertTrue(m.contains("no passphrase key"), m);
        Path dir2 = tmp.resolve("repo2");
        RepositoryOpener.openOrCreateWith(dir2, true, KeySource.passphrase("P", env::get, new KeySource.Argon2(1024, 1, 1)));
        m = message(RepositoryException.class, () -> RepositoryOpener.openExisting(dir2, tmp.resolve("k.key")));
        assertTrue(m.contains("wrong key"), m);
    }

    @Test
    void aWorldReadableKeyFileIsRefusedBeforeAnythingIsOpened() throws Exception {
        Path dir = tmp.resolve("repo");
        Path kf = tmp.resolve("k.key");
        RepositoryOpener.openOrCreate(dir, true, kf);
        Files.setPosixFilePermissions(kf, PosixFilePermissions.fromString("rw-r--r--"));
        String m = message(KeyException.class, () -> RepositoryOpener.openOrCreate(dir, true, kf));
        assertTrue(m.contains("readable by group or others") && m.contains("chmod 600 " + kf), m);
        m = message(KeyException.class, () -> RepositoryOpener.openExisting(dir, kf));
        assertTrue(m.contains("chmod 600"), m);
    }
}
