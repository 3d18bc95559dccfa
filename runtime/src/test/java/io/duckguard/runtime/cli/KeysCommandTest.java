package io.duckguard.runtime.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.runtime.crypto.MasterKey;
import io.duckguard.runtime.restore.RecordedHistory;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code keys list | rotate | retire} as an operator runs them, on a repository written by the real capture path. */
class KeysCommandTest {
    @TempDir
    Path tmp;

    private static CliRun cli(String... args) {
        return CliRun.of(args);
    }

    @AfterEach
    void restoreEnv() {
        KeysCommand.env = System::getenv;
    }

    @Test
    void rotateListRetireThroughTheCli() throws Exception {
        RecordedHistory h = RecordedHistory.produce(tmp.resolve("h"), "");
        String repo = h.repository.toString();
        String oldKey = h.keyFile.toString();
        String oldId = MasterKey.load(h.keyFile).keyId();
        Path newKey = tmp.resolve("keys").resolve("new.key");

        CliRun list = cli("keys", "list", "--repository", repo);
        assertEquals(0, list.code(), list.err());
        assertTrue(list.out().contains(oldId) && list.out().contains("current"), list.out());

        CliRun rot = cli("keys", "rotate", "--repository", repo, "--key-file", oldKey, "--new-key-file", newKey.toString());
        assertEquals(0, rot.code(), rot.err());
        assertTrue(rot.out().contains("data keys re-wrapped") && rot.out().contains("keys/s") && rot.out().contains("no data was re-encrypted"), rot.out());
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(newKey)), "the new key file is created 0600");
        String newId = MasterKey.load(newKey).keyId();
        list = cli("keys", "list", "--repository", repo);
        assertTrue(list.out().matches("(?s).*" + newId + ".*current.*") && list.out().contains("active (not current)"), list.out());

        // Before retire both keys read the repository.
        assertEquals(0, cli("list", "--repository", repo, "--key-file", oldKey).code());
        assertEquals(0, cli("list", "--repository", repo, "--key-file", newKey.toString()).code());

        CliRun refused = cli("keys", "retire", "--repository", repo, "--key-file", newKey.toString(), "--id", newId);
        assertEquals(1, refused.code());
        assertTrue(refused.err().startsWith("duckguard: ") && refused.err().contains("current key"), refused.err());
        CliRun ret = cli("keys", "retire", "--repository", repo, "--key-file", newKey.toString(), "--id", oldId);
        assertEquals(0, ret.code(), ret.err());
        assertTrue(ret.out().contains("retired master key " + oldId) && ret.out().contains("destroy every copy"), ret.out());

        CliRun oldFails = cli("list", "--repository", repo, "--key-file", oldKey);
        assertEquals(1, oldFails.code());
        assertTrue(oldFails.err().contains("retired") && oldFails.err().contains(newId), oldFails.err());
        CliRun restored = cli("restore", "--repository", repo, "--key-file", newKey.toString(), "--output", tmp.resolve("r.duckdb").toString());
        assertEquals(0, restored.code(), restored.err());
        list = cli("keys", "list", "--repository", repo);
        assertTrue(list.out().contains("retired "), list.out());

        // And on to a passphrase, with the variable read from the environment.
        KeysCommand.env = Map.of("DG_PASS", "correct horse battery staple")::get;
        CliRun toPass = cli("keys", "rotate", "--repository", repo, "--key-file", newKey.toString(), "--new-passphrase-env", "DG_PASS");
        assertEquals(0, toPass.code(), toPass.err());
        assertEquals(0, cli("list", "--repository", repo, "--passphrase-env", "DG_PASS").code());
        KeysCommand.env = Map.of("DG_PASS", "wrong horse battery staple")::get;
        CliRun wrong = cli("list", "--repository", repo, "--passphrase-env", "DG_PASS");
        assertEquals(1, wrong.code());
        assertTrue(wrong.err().contains("wrong passphrase"), wrong.err());
    }

    @Test
    void keyOptionsThatContradictEachOtherAreUsageErrors() throws Exception {
        RecordedHistory h = RecordedHistory.produce(tmp.resolve("h"), "");
        CliRun both = cli("keys", "rotate", "--repository", h.repository.toString(), "--key-file", h.keyFile.toString(),
                "--new-key-file", tmp.resolve("n.key").toString(), "--new-passphrase-env", "X");
        assertEquals(1, both.code());
        assertTrue(both.err().contains("only one of --new-key-file"), both.err());
        assertFalse(Files.exists(tmp.resolve("n.key")));
        CliRun none = cli("keys", "rotate", "--repository", h.repository.toString(), "--key-file", h.keyFile.toString());
        assertEquals(1, none.code());
        assertTrue(none.err().contains("give the new key"), none.err());
        CliRun ks = cli("list", "--repository", h.repository.toString(), "--keystore", tmp.resolve("x.p12").toString());
        assertEquals(1, ks.code());
        assertTrue(ks.err().contains("--keystore-password-env"), ks.err());
        CliRun same = cli("keys", "rotate", "--repository", h.repository.toString(), "--key-file", h.keyFile.toString(),
                "--new-key-file", h.keyFile.toString());
        assertEquals(1, same.code());
        assertTrue(same.err().contains("give a new key"), same.err());
    }
}
