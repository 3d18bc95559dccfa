package io.duckguard.runtime.crypto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The CLI's native AES-GCM is the same cipher as the JDK's: objects sealed by either open with the other, a changed
 * byte is refused with the object's name either way, and it is used only where the process allowed it.
 */
class NativeAesGcmTest {
    private final ObjectCodec codec = new ObjectCodec(MasterKey.generate(), 3);

    @AfterEach
    void backToTheJdk() {
        NativeAesGcm.resetForTests();
    }

    private static boolean linuxX64() {
        return System.getProperty("os.name").equalsIgnoreCase("linux")
                && List.of("amd64", "x86_64").contains(System.getProperty("os.arch"));
    }

    private static List<byte[]> objects() {
        List<byte[]> out = new ArrayList<>();
        Random r = new Random(7);
        for (int n : new int[] {0, 1, 65, 4096, 256 * 1024}) {
            byte[] b = new byte[n];
            r.nextBytes(b);
            out.add(b);
        }
        return out;
    }

    @Test
    void objectsSealedByEitherOpenWithTheOther() throws Exception {
        assumeTrue(linuxX64(), "the native build is bundled for Linux x86_64 only");
        List<byte[]> plain = objects();
        List<byte[]> byJdk = new ArrayList<>();
        for (int i = 0; i < plain.size(); i++) byJdk.add(codec.seal(plain.get(i), "block:" + i));
        assertFalse(codec.cipherProvider().getName().contains("Corretto"), "this thread's cipher is the JDK's so far");

        NativeAesGcm.allowInThisProcess();
        assertTrue(NativeAesGcm.load(), NativeAesGcm.status());
        assertTrue(NativeAesGcm.status().startsWith("native (Amazon Corretto Crypto Provider "), NativeAesGcm.status());
        // The thread's existing cipher was the JDK's: it must switch, or the CLI's pool threads would stay slow.
        assertEquals(NativeAesGcm.provider(), codec.cipherProvider());
        List<byte[]> byNative = new ArrayList<>();
        for (int i = 0; i < plain.size(); i++) {
            assertArrayEquals(plain.get(i), codec.open(byJdk.get(i), "block:" + i), "JDK-sealed object " + i + ", opened natively");
            byNative.add(codec.seal(plain.get(i), "block:" + i));
        }
        byte[] changed = byNative.get(3).clone();
        changed[changed.length / 2] ^= 1;
        CorruptObjectException e = assertThrows(CorruptObjectException.class, () -> codec.open(changed, "block:3"));
        assertTrue(e.getMessage().contains("block:3"), e.getMessage());
        assertThrows(CorruptObjectException.class, () -> codec.open(byNative.get(2), "block:4"), "bound to its name");

        NativeAesGcm.resetForTests();
        assertNull(NativeAesGcm.provider());
        assertFalse(codec.cipherProvider().getName().contains("Corretto"));
        for (int i = 0; i < plain.size(); i++) {
            assertArrayEquals(plain.get(i), codec.open(byNative.get(i), "block:" + i), "natively sealed object " + i + ", opened by the JDK");
        }
    }

    @Test
    void notLoadedUnlessTheProcessAllowsIt() {
        // A host application never calls allowInThisProcess: a restore there (JMX restoreTo) stays on the JDK's.
        assertFalse(NativeAesGcm.load());
        assertNull(NativeAesGcm.provider());
        assertEquals("JDK", NativeAesGcm.status());
    }

    @Test
    void theSwitchTurnsItOff() {
        System.setProperty(NativeAesGcm.DISABLE_PROPERTY, "false");
        try {
            NativeAesGcm.allowInThisProcess();
            assertFalse(NativeAesGcm.load());
            assertNull(NativeAesGcm.provider());
            assertEquals("JDK (-Dduckguard.native-crypto=false)", NativeAesGcm.status());
        } finally {
            System.clearProperty(NativeAesGcm.DISABLE_PROPERTY);
        }
    }
}
