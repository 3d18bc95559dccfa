package io.duckguard.runtime.crypto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.runtime.crypto.MasterKey.KeyException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Base64;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The key file: losing or leaking it loses the backups, so every problem with it must be a clear message. */
class MasterKeyTest {
    @TempDir
    Path tmp;

    private Path keyFile(String text, String perms) throws Exception {
        Path f = tmp.resolve("k.key");
        Files.writeString(f, text, StandardCharsets.US_ASCII);
        Files.setPosixFilePermissions(f, PosixFilePermissions.fromString(perms));
        return f;
    }

    private static String message(Path f) {
        return assertThrows(KeyException.class, () -> MasterKey.load(f)).getMessage();
    }

    @Test
    void storedKeyLoadsBackAsTheSameKey() throws Exception {
        MasterKey k = MasterKey.generate();
        Path f = tmp.resolve("keys").resolve("repo.key");
        k.store(f);
        MasterKey back = MasterKey.load(f);
        assertEquals(k.keyId(), back.keyId());
        assertArrayEquals(k.derive("duckguard object encryption v1"), back.derive("duckguard object encryption v1"));
        assertTrue(Files.readString(f).startsWith("duckguard-key-v1 "));
        // Keys differ from one another, and derived sub-keys differ by purpose.
        assertFalse(k.keyId().equals(MasterKey.generate().keyId()));
        assertFalse(java.util.Arrays.equals(k.derive("a"), k.derive("b")));
    }

    @Test
    void storedKeyFileIsOwnerOnly() throws Exception {
        Path f = tmp.resolve("new-dir").resolve("repo.key");
        MasterKey.generate().store(f);
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(f)));
        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(f.getParent())),
                "a directory created for the key is private too");
    }

    @Test
    void storeNeverOverwritesAnExistingKey() throws Exception {
        Path f = tmp.resolve("repo.key");
        MasterKey first = MasterKey.generate();
        first.store(f);
        byte[] before = Files.readAllBytes(f);
        KeyException e = assertThrows(KeyException.class, () -> MasterKey.generate().store(f));
        assertTrue(e.getMessage().contains("already exists"), e.getMessage());
        assertArrayEquals(before, Files.readAllBytes(f), "the original key is untouched");
        assertEquals(first.keyId(), MasterKey.load(f).keyId());
    }

    @Test
    void groupOrWorldReadableKeyFileIsRefusedWithTheFix() throws Exception {
        Path f = tmp.resolve("repo.key");
        MasterKey.generate().store(f);
        for (String perms : new String[] {"rw-r--r--", "rw-r-----", "rw----r--"}) {
            Files.setPosixFilePermissions(f, PosixFilePermissions.fromString(perms));
            String m = message(f);
            assertTrue(m.contains("chmod 600 " + f), m);
        }
        Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("r--------"));
        MasterKey.load(f); // owner read-only is fine
    }

    @Test
    void garbageIsNotAKey() throws Exception {
        String m = message(keyFile("hello world\n", "rw-------"));
        assertTrue(m.contains("not a duckguard key"), m);
        assertTrue(message(keyFile("", "rw-------")).contains("not a duckguard key"));
    }

    @Test
    void wrongLengthIsReported() throws Exception {
        String b64 = Base64.getEncoder().encodeToString(new byte[16]);
        String m = message(keyFile("duckguard-key-v1 " + b64 + "\n", "rw-------"));
        assertTrue(m.contains("16 bytes, expected 32"), m);
    }

    @Test
    void badBase64IsReportedAsDamaged() throws Exception {
        String m = message(keyFile("duckguard-key-v1 !!!not base64!!!\n", "rw-------"));
        assertTrue(m.contains("damaged"), m);
    }

    @Test
    void missingFileIsReported() {
        Path f = tmp.resolve("absent.key");
        String m = message(f);
        assertTrue(m.contains(f.toString()) && m.contains("does not exist"), m);
    }
}
