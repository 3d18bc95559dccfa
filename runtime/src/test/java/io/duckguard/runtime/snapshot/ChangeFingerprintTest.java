package io.duckguard.runtime.snapshot;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

class ChangeFingerprintTest {
    private static final int LEN = 262144;
    private final Random random = new Random(7);
    private final ChangeFingerprint fp = new ChangeFingerprint(seed(1), LEN);

    private static byte[] seed(int v) {
        byte[] s = new byte[32];
        s[0] = (byte) v;
        return s;
    }

    private byte[] block() {
        byte[] b = new byte[LEN];
        random.nextBytes(b);
        return b;
    }

    private byte[] of(ChangeFingerprint f, byte[] data) {
        ByteBuffer direct = ByteBuffer.allocateDirect(data.length);
        direct.put(data);
        byte[] viaDirect = f.of(direct, data.length);
        assertArrayEquals(viaDirect, f.of(ByteBuffer.wrap(data), data.length), "heap and direct buffers agree");
        return viaDirect;
    }

    @Test
    void equalContentHasEqualFingerprintsAcrossInstancesWithTheSameSeed() {
        byte[] b = block();
        assertArrayEquals(of(fp, b), of(new ChangeFingerprint(seed(1), LEN), b.clone()));
        assertEquals(ChangeFingerprint.BYTES, of(fp, b).length);
    }

    @Test
    void everySingleBitFlipIsSeen() {
        byte[] b = block();
        byte[] before = of(fp, b);
        for (int pos : new int[] {0, 7, 8, 4095, 131072, LEN - 9, LEN - 1}) {
            for (int bit = 0; bit < 8; bit += 3) {
                byte[] c = b.clone();
                c[pos] ^= (byte) (1 << bit);
                assertFalse(Arrays.equals(before, of(fp, c)), "flip at " + pos + " bit " + bit);
            }
        }
    }

    @Test
    void swappedWordsAreSeenUnlikeDuckDbsOwnChecksum() {
        // DuckDB's block checksum is position independent: swapping two 8-byte words keeps it (duckdb-facts 7).
        byte[] b = block();
        byte[] c = b.clone();
        System.arraycopy(b, 800, c, 8000, 8);
        System.arraycopy(b, 8000, c, 800, 8);
        assertFalse(Arrays.equals(of(fp, b), of(fp, c)));
        // Swapping the two words of one NH pair, too.
        byte[] d = b.clone();
        System.arraycopy(b, 64, d, 72, 8);
        System.arraycopy(b, 72, d, 64, 8);
        assertFalse(Arrays.equals(of(fp, b), of(fp, d)));
    }

    @Test
    void structuredBlocksDoNotCollide() {
        // Zero blocks with one varying word, the shape of sparse DuckDB blocks: all distinct.
        Set<String> seen = new HashSet<>();
        for (int i = 0; i < 2000; i++) {
            byte[] b = new byte[LEN];
            ByteBuffer.wrap(b).putLong((i % 40) * 8 * 800, i);
            seen.add(Arrays.toString(of(fp, b)));
        }
        assertEquals(2000, seen.size());
    }

    @Test
    void anotherSeedGivesAnotherFingerprint() {
        byte[] b = block();
        assertFalse(Arrays.equals(of(fp, b), of(new ChangeFingerprint(seed(2), LEN), b)));
    }

    @Test
    void lengthsItCannotFingerprintGiveNull() {
        assertNull(fp.of(ByteBuffer.allocate(LEN), 100));
        assertNull(fp.of(ByteBuffer.allocate(2 * LEN), 2 * LEN));
        assertEquals(ChangeFingerprint.BYTES, fp.of(ByteBuffer.allocate(12288), 12288).length);
    }
}
