package io.duckguard.runtime.crypto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Random;
import javax.crypto.AEADBadTagException;
import org.junit.jupiter.api.Test;

/** The envelope: data keys wrapped for master keys, objects that name their data key, and never a plaintext write. */
class EnvelopeCryptoTest {
    private static final MasterKey A = MasterKey.generate();
    private static final MasterKey B = MasterKey.generate();

    private static ObjectCodec codecOf(DataKey... keys) {
        Map<String, DataKey> m = new java.util.HashMap<>();
        for (DataKey k : keys) m.put(k.id(), k);
        return new ObjectCodec((id, name) -> {
            DataKey k = m.get(id);
            if (k == null) throw new CorruptObjectException(name, "its data key " + id + " does not exist");
            return k;
        }, keys[0], DataKey.generate("id"), 3);
    }

    @Test
    void aWrapOpensOnlyWithItsMasterKeyAndOnlyForItsDataKeyId() throws Exception {
        DataKey k = DataKey.generate("p-0123");
        byte[] wa = KeyWrap.wrap(k, A.keyId(), A.publicKey());
        assertEquals(KeyWrap.LENGTH, wa.length);
        DataKey back = KeyWrap.unwrap("p-0123", wa, A);
        assertArrayEquals(k.raw(), back.raw());
        // Wrapping needs only the public key: B's wrap is made without B's secret and opens with B alone.
        byte[] wb = KeyWrap.wrap(k, B.keyId(), B.publicKey());
        assertArrayEquals(k.raw(), KeyWrap.unwrap("p-0123", wb, B).raw());
        assertThrows(AEADBadTagException.class, () -> KeyWrap.unwrap("p-0123", wa, B), "another master key");
        assertThrows(AEADBadTagException.class, () -> KeyWrap.unwrap("p-9999", wa, A), "moved to another data key id");
        for (int i = 0; i < wa.length; i++) {
            byte[] bad = wa.clone();
            bad[i] ^= 0x01;
            assertThrows(java.security.GeneralSecurityException.class, () -> KeyWrap.unwrap("p-0123", bad, A), "byte " + i);
        }
        assertFalse(java.util.Arrays.equals(wa, KeyWrap.wrap(k, A.keyId(), A.publicKey())), "wraps are randomised");
        assertFalse(new String(wa, StandardCharsets.ISO_8859_1).contains(new String(k.raw(), StandardCharsets.ISO_8859_1)));
    }

    @Test
    void theMasterKeysPublicKeyIsStableAndTheSecretNeverShows() throws Exception {
        assertArrayEquals(A.publicKey(), A.publicKey());
        assertFalse(java.util.Arrays.equals(A.publicKey(), B.publicKey()));
        java.nio.file.Path f = java.nio.file.Files.createTempDirectory("dg").resolve("k.key");
        A.store(f);
        assertArrayEquals(A.publicKey(), MasterKey.load(f).publicKey());
        assertFalse(DataKey.generate("x").toString().matches(".*[0-9a-f]{64}.*"));
    }

    @Test
    void objectsNameTheirDataKeyAndOpenWhicheverKeySealedThem() throws Exception {
        DataKey k1 = DataKey.generate("w-1");
        DataKey k2 = DataKey.generate("m-2");
        ObjectCodec c = codecOf(k1, k2);
        byte[] o1 = c.seal(k1, "first".getBytes(StandardCharsets.UTF_8), "a");
        byte[] o2 = c.seal(k2, "second".getBytes(StandardCharsets.UTF_8), "b");
        assertEquals("w-1", ObjectCodec.keyIdOf(o1));
        assertEquals("m-2", ObjectCodec.keyIdOf(o2));
        assertEquals("first", new String(c.open(o1, "a"), StandardCharsets.UTF_8));
        assertEquals("second", new String(c.open(o2, "b"), StandardCharsets.UTF_8));
        // A codec without k1 (its key was destroyed) cannot open o1, and says which key is missing.
        CorruptObjectException e = assertThrows(CorruptObjectException.class, () -> codecOf(k2).open(o1, "a"));
        assertEquals("a", e.objectName());
        assertTrue(e.getMessage().contains("w-1") && e.getMessage().contains("does not exist"), e.getMessage());
        // Naming another existing key in the header does not help: the header is authenticated.
        byte[] forged = c.seal(k1, "x".getBytes(StandardCharsets.UTF_8), "a");
        byte[] forgedTo2 = new byte[forged.length];
        System.arraycopy(forged, 0, forgedTo2, 0, forged.length);
        forgedTo2[5] = 'm';
        forgedTo2[7] = '2';
        assertEquals("m-2", ObjectCodec.keyIdOf(forgedTo2));
        assertThrows(CorruptObjectException.class, () -> c.open(forgedTo2, "a"));
    }

    @Test
    void anEncryptedCodecNeverWritesPlaintext() {
        ObjectCodec c = codecOf(DataKey.generate("meta"));
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> c.seal(null, "secret".getBytes(StandardCharsets.UTF_8), 0, 6, "obj", 3));
        assertTrue(e.getMessage().contains("refusing") && e.getMessage().contains("obj"), e.getMessage());
        ObjectCodec noDefault = new ObjectCodec((id, n) -> null, null, null, 3);
        assertThrows(IllegalStateException.class, () -> noDefault.seal("secret".getBytes(StandardCharsets.UTF_8), "obj"));
        // A plain codec ignores keys and writes the CRC format; an encrypted codec refuses such objects.
        ObjectCodec plain = new ObjectCodec((MasterKey) null, 3);
        byte[] p = plain.seal(DataKey.generate("w-1"), "x".getBytes(StandardCharsets.UTF_8), "obj");
        assertNull(ObjectCodec.keyIdOf(p));
        CorruptObjectException down = assertThrows(CorruptObjectException.class, () -> c.open(p, "obj"));
        assertTrue(down.getMessage().contains("not encrypted"), down.getMessage());
    }

    @Test
    void rekeyMovesASealedBlockToAnotherKeyWithoutChangingItsContent() throws Exception {
        DataKey from = DataKey.generate("p-aa");
        DataKey to = DataKey.generate("p-bb");
        ObjectCodec c = codecOf(to);
        byte[] data = new byte[300_000];
        new Random(1).nextBytes(data);
        for (int i = 0; i < 100_000; i++) data[i] = 7; // compressible part: the zstd flag must survive
        byte[] sealed = c.seal(from, data, 0, data.length, "block:1", 1);
        byte[] moved = c.rekey(sealed, "block:1", from, to);
        assertEquals("p-bb", ObjectCodec.keyIdOf(moved));
        assertArrayEquals(data, c.open(moved, "block:1"));
        assertThrows(CorruptObjectException.class, () -> c.rekey(sealed, "block:2", from, to), "the name is still checked");
        assertThrows(CorruptObjectException.class, () -> c.rekey(sealed, "block:1", to, DataKey.generate("p-cc")));
    }

    @Test
    void dataKeyIdsAreFileNameSafe() {
        for (String ok : new String[] {"id", "meta", "legacy", "p-0123abcd", "w-" + "a".repeat(32)}) assertTrue(DataKey.isValidId(ok), ok);
        for (String bad : new String[] {"", "../x", "a/b", "A", "-x", ".lock", "x".repeat(65), "p_1", "a b"}) {
            assertFalse(DataKey.isValidId(bad), bad);
        }
        assertThrows(IllegalArgumentException.class, () -> DataKey.generate("../../etc/passwd"));
    }
}
