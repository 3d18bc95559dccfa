package io.duckguard.runtime.repository;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.runtime.crypto.CorruptObjectException;
import io.duckguard.runtime.crypto.MasterKey;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The log of one WAL epoch holds every acknowledged commit (invariant 1). A crash may tear its last frame, and
 * only that may be dropped; any other damage must be an error naming the log and offset (invariant 6).
 */
class WalLogTest {
    @TempDir
    Path tmp;

    private static final byte[] BASE = new byte[32];
    private Repository repo;
    private DatabaseHistory history;
    private Path file;
    /** What was appended: record i covers WAL bytes [starts[i], starts[i+1]). */
    private final List<byte[]> walChunks = new ArrayList<>();

    static {
        Arrays.fill(BASE, (byte) 0x5a);
    }

    @BeforeEach
    void setUp() throws Exception {
        repo = Repository.create(tmp.resolve("repo"), MasterKey.generate());
        history = repo.database("trades.duckdb");
        history.createWalLog(1, BASE);
        file = history.epochDir(1).resolve("wal");
    }

    /** Appends {@code n} records of 1..3 commits each, with distinct random WAL bytes. */
    private void appendRecords(int n) throws Exception {
        Random r = new Random(n);
        try (WalLog.Writer w = history.openWalLogForAppend(1)) {
            for (int i = 0; i < n; i++) appendOne(w, r, 100 + r.nextInt(3000));
        }
    }

    private void appendOne(WalLog.Writer w, Random r, int len) throws Exception {
        byte[] wal = new byte[len];
        r.nextBytes(wal);
        long start = w.walEnd();
        List<CommitMark> marks = new ArrayList<>();
        int commits = 1 + r.nextInt(3);
        for (int c = 1; c <= commits; c++) marks.add(new CommitMark(start + (long) len * c / commits, 1_700_000_000_000L + start + c));
        w.append(start, start + len, marks, wal, 0, len);
        walChunks.add(wal);
    }

    private WalLog.Contents read() throws Exception {
        return history.readWalLog(1);
    }

    /** Start offsets of every frame in the file: [0] is the header frame, then the records. */
    private List<Integer> frameOffsets() throws Exception {
        byte[] all = Files.readAllBytes(file);
        List<Integer> out = new ArrayList<>();
        int pos = 0;
        while (pos < all.length) {
            out.add(pos);
            pos += 8 + ByteBuffer.wrap(all, pos, 4).getInt(); // u32 length, u32 crc32c(length), body
        }
        assertEquals(all.length, pos, "test helper: the file is whole");
        return out;
    }

    private void assertFirstRecordsIntact(WalLog.Contents c, int n) {
        assertEquals(n, c.records().size());
        long start = 0;
        for (int i = 0; i < n; i++) {
            WalRecord rec = c.records().get(i);
            assertEquals(start, rec.walStart());
            assertArrayEquals(walChunks.get(i), rec.walBytes());
            start = rec.walEnd();
        }
    }

    private void flip(long offset, int mask) throws Exception {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.allocate(1);
            ch.read(b, offset);
            b.put(0, (byte) (b.get(0) ^ mask)).rewind();
            ch.write(b, offset);
        }
    }

    @Test
    void appendedRecordsReadBackIdentically() throws Exception {
        appendRecords(6);
        WalLog.Contents c = read();
        assertEquals(1, c.epoch());
        assertArrayEquals(BASE, c.baseSha256());
        assertFalse(c.tornTail());
        assertEquals(Files.size(file), c.validLength());
        assertFirstRecordsIntact(c, 6);
        long total = walChunks.stream().mapToLong(b -> b.length).sum();
        assertEquals(total, c.walEnd());
        int commits = 0;
        for (WalRecord rec : c.records()) {
            for (CommitMark m : rec.commits()) {
                assertTrue(m.walEnd() > rec.walStart() && m.walEnd() <= rec.walEnd());
                commits++;
            }
            assertEquals(rec.walEnd(), rec.commits().get(rec.commits().size() - 1).walEnd());
        }
        assertEquals(commits, c.commitCount());
        // A writer reopened on an intact log continues where it ended.
        try (WalLog.Writer w = history.openWalLogForAppend(1)) {
            assertEquals(total, w.walEnd());
            assertEquals(Files.size(file), w.sizeBytes());
        }
    }

    @Test
    void anEmptyLogHasNoCommits() throws Exception {
        WalLog.Contents c = read();
        assertEquals(0, c.records().size());
        assertEquals(0, c.walEnd());
        assertFalse(c.tornTail());
    }

    @Test
    void writerRefusesAGapOrOverlap() throws Exception {
        appendRecords(1);
        try (WalLog.Writer w = history.openWalLogForAppend(1)) {
            long end = w.walEnd();
            assertThrows(IllegalStateException.class, () -> w.append(end + 1, end + 10, List.of(), new byte[9], 0, 9));
            assertThrows(IllegalStateException.class, () -> w.append(end - 1, end + 10, List.of(), new byte[11], 0, 11));
        }
        assertFirstRecordsIntact(read(), 1);
    }

    @Test
    void everyCutInsideTheLastFrameIsATornTail() throws Exception {
        appendRecords(4);
        byte[] whole = Files.readAllBytes(file);
        int lastFrame = frameOffsets().get(4);
        // Every cut near both ends of the frame (length prefix, header, nonce, tag), a sample in between.
        for (int cut = lastFrame + 1; cut < whole.length; cut += (cut - lastFrame < 48 || whole.length - cut < 48) ? 1 : 37) {
            Files.write(file, Arrays.copyOf(whole, cut));
            WalLog.Contents c = read();
            assertTrue(c.tornTail(), "cut at " + cut);
            assertEquals(lastFrame, c.validLength());
            assertFirstRecordsIntact(c, 3);
        }
        // Cut exactly at a frame boundary: no torn tail, just fewer records.
        Files.write(file, Arrays.copyOf(whole, lastFrame));
        WalLog.Contents c = read();
        assertFalse(c.tornTail());
        assertFirstRecordsIntact(c, 3);
    }

    @Test
    void zerosLeftAfterTheLastFrameAreATornTail() throws Exception {
        appendRecords(3);
        byte[] whole = Files.readAllBytes(file);
        for (int zeros : new int[] {1, 3, 4, 5, 100, 4096}) {
            Files.write(file, whole);
            Files.write(file, new byte[zeros], StandardOpenOption.APPEND);
            WalLog.Contents c = read();
            assertTrue(c.tornTail(), zeros + " zeros");
            assertEquals(whole.length, c.validLength());
            assertFirstRecordsIntact(c, 3);
        }
    }

    @Test
    void aPartlyWrittenFrameAfterTheLastIsATornTail() throws Exception {
        appendRecords(3);
        byte[] three = Files.readAllBytes(file);
        try (WalLog.Writer w = history.openWalLogForAppend(1)) {
            appendOne(w, new Random(99), 5000);
        }
        byte[] four = Files.readAllBytes(file);
        for (int extra : new int[] {1, 4, 5, 100, four.length - three.length - 1}) {
            Files.write(file, Arrays.copyOf(four, three.length + extra));
            WalLog.Contents c = read();
            assertTrue(c.tornTail());
            assertFirstRecordsIntact(c, 3);
        }
    }

    @Test
    void writerCutsATornTailAndAppendsAfterIt() throws Exception {
        appendRecords(3);
        long good = Files.size(file);
        Files.write(file, new byte[] {0, 0, 1, 0, 42, 42, 42}, StandardOpenOption.APPEND); // a frame cut short
        assertTrue(read().tornTail());
        try (WalLog.Writer w = history.openWalLogForAppend(1)) {
            assertEquals(good, Files.size(file), "the torn tail is cut before anything is appended");
            Random r = new Random(7);
            appendOne(w, r, 700);
            appendOne(w, r, 900);
        }
        WalLog.Contents c = read();
        assertFalse(c.tornTail());
        assertFirstRecordsIntact(c, 5);
    }

    @Test
    void aChangedByteInAMiddleRecordIsAnErrorNamingItsOffset() throws Exception {
        appendRecords(5);
        List<Integer> frames = frameOffsets();
        int victim = frames.get(2); // the second record
        for (int delta : new int[] {8, 9, 20, frames.get(3) - victim - 1}) { // body bytes (after length + crc)
            flip(victim + delta, 0x10);
            CorruptObjectException e = assertThrows(CorruptObjectException.class, this::read);
            assertTrue(e.getMessage().contains("record at byte " + victim), e.getMessage());
            assertTrue(e.getMessage().contains("databases/trades.duckdb/epochs/0000000001/wal"), e.getMessage());
            flip(victim + delta, 0x10);
        }
        for (int delta : new int[] {4, 7}) { // the length's checksum: damage, not a torn tail
            flip(victim + delta, 0x10);
            CorruptObjectException e = assertThrows(CorruptObjectException.class, this::read);
            assertTrue(e.getMessage().contains("frame at byte " + victim), e.getMessage());
            flip(victim + delta, 0x10);
        }
        assertFirstRecordsIntact(read(), 5);
        // The writer refuses to append to a log it cannot trust (it would bury the damage).
        flip(victim + 30, 1);
        assertThrows(CorruptObjectException.class, () -> history.openWalLogForAppend(1));
    }

    @Test
    void aChangedLowByteOfAMiddleFrameLengthIsAnError() throws Exception {
        appendRecords(5);
        int victim = frameOffsets().get(2);
        flip(victim + 3, 0x01); // length off by one: the record no longer authenticates
        assertThrows(CorruptObjectException.class, this::read);
    }

    /**
     * The length prefix of a frame is not authenticated. Its high byte changed makes the length run past the end
     * of the file, which the reader takes for a torn tail: it silently drops that record and every later one
     * (acknowledged, fsynced commits), and the next Writer truncates them away. This is DuckDB's own
     * "damaged LENGTH looks like a torn tail" trap (duckdb-facts.md section 3) repeated in duckguard's format.
     */
    @Test
    void aChangedHighByteOfAMiddleFrameLengthIsAnErrorNotATornTail() throws Exception {
        appendRecords(5);
        int victim = frameOffsets().get(2);
        flip(victim, 0x01);
        assertThrows(CorruptObjectException.class, this::read,
                "a log with 3 intact records after the damage must not read as a torn tail");
        assertThrows(CorruptObjectException.class, () -> history.openWalLogForAppend(1).close(),
                "the writer must not truncate acknowledged records");
    }

    /**
     * A byte flip in the LAST record cannot be told from a crash while appending it; the reader drops it as a torn
     * tail, but it must at least say so (restore and list can then warn).
     */
    @Test
    void aChangedByteInTheLastRecordIsAtLeastReportedAsTorn() throws Exception {
        appendRecords(3);
        int last = frameOffsets().get(3);
        flip(last + 40, 0x04);
        WalLog.Contents c = read();
        assertTrue(c.tornTail());
        assertFirstRecordsIntact(c, 2);
    }

    @Test
    void swappedRecordsAreAnError() throws Exception {
        // Each record is sealed with its WAL position: two records of equal size exchanged must not authenticate.
        Random r = new Random(3);
        try (WalLog.Writer w = history.openWalLogForAppend(1)) {
            for (int i = 0; i < 4; i++) appendOne(w, r, 1000);
        }
        List<Integer> f = frameOffsets();
        byte[] all = Files.readAllBytes(file);
        int len1 = f.get(2) - f.get(1);
        int len2 = f.get(3) - f.get(2);
        assertEquals(len1, len2, "test setup: equal frame sizes");
        byte[] swapped = all.clone();
        System.arraycopy(all, f.get(1), swapped, f.get(2), len1);
        System.arraycopy(all, f.get(2), swapped, f.get(1), len2);
        Files.write(file, swapped);
        CorruptObjectException e = assertThrows(CorruptObjectException.class, this::read);
        assertTrue(e.getMessage().contains("record at byte " + f.get(1)), e.getMessage());
    }

    @Test
    void aRecordRemovedFromTheMiddleIsAnError() throws Exception {
        appendRecords(4);
        List<Integer> f = frameOffsets();
        byte[] all = Files.readAllBytes(file);
        byte[] without = new byte[all.length - (f.get(3) - f.get(2))];
        System.arraycopy(all, 0, without, 0, f.get(2));
        System.arraycopy(all, f.get(3), without, f.get(2), all.length - f.get(3));
        Files.write(file, without);
        assertThrows(CorruptObjectException.class, this::read);
    }

    @Test
    void aLogCopiedToAnotherEpochIsRefused() throws Exception {
        appendRecords(2);
        history.createWalLog(2, BASE);
        Path other = history.epochDir(2).resolve("wal");
        Files.copy(file, other, StandardCopyOption.REPLACE_EXISTING);
        CorruptObjectException e = assertThrows(CorruptObjectException.class, () -> history.readWalLog(2));
        assertTrue(e.getMessage().contains("epochs/0000000002/wal"), e.getMessage());
        // Same for the same epoch number of another database in the repository.
        DatabaseHistory h2 = repo.database("other.duckdb");
        h2.createWalLog(1, BASE);
        Files.copy(file, h2.epochDir(1).resolve("wal"), StandardCopyOption.REPLACE_EXISTING);
        assertThrows(CorruptObjectException.class, () -> h2.readWalLog(1));
    }

    @Test
    void aMissingLogIsNamed() throws Exception {
        CorruptObjectException e = assertThrows(CorruptObjectException.class, () -> history.readWalLog(7));
        assertTrue(e.getMessage().contains("epochs/0000000007/wal") && e.getMessage().contains("missing"), e.getMessage());
    }

    @Test
    void createWalLogNeverReplacesAnExistingLog() throws Exception {
        appendRecords(2);
        byte[] before = Files.readAllBytes(file);
        history.createWalLog(1, new byte[32]);
        assertArrayEquals(before, Files.readAllBytes(file));
        assertArrayEquals(BASE, read().baseSha256());
    }
}
