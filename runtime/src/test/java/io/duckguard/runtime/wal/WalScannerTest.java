package io.duckguard.runtime.wal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.runtime.wal.WalScanner.Result;
import io.duckguard.runtime.wal.WalScanner.WalFormatException;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.util.Arrays;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The scanner decides where the shipper may cut the WAL: a wrong boundary ships half a transaction (restore
 * replays garbage or stops early), a missed one delays a sync-mode commit. Checked against WALs written by the
 * real DuckDB (1.5.6, or 2.0 in the build's second run) with the agent's settings.
 */
class WalScannerTest {
    @TempDir
    static Path tmp;

    /** A real WAL with {@link #TRANSACTIONS} committed transactions, and the file size after each commit. */
    private static byte[] wal;
    private static long[] sizeAfterCommit;
    /** The WAL's header length: 8 bytes on 1.5.6 default files, longer on 2.0 (it names the database). */
    private static int header;
    private static String duckdbVersion;
    private static final int TRANSACTIONS = 8;

    @BeforeAll
    static void writeARealWal() throws Exception {
        Path db = tmp.resolve("scan.duckdb");
        Path walFile = Path.of(db + ".wal");
        sizeAfterCommit = new long[TRANSACTIONS];
        int t = 0;
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + db); Statement s = c.createStatement()) {
            try (java.sql.ResultSet rs = s.executeQuery("SELECT version()")) {
                rs.next();
                duckdbVersion = rs.getString(1);
            }
            // The agent's settings (invariant 3): no auto-checkpoint, no optimistic writes, WAL kept at close.
            s.execute("SET GLOBAL checkpoint_threshold='1000TB'");
            s.execute("SET GLOBAL enable_optimistic_write=false");
            s.execute("PRAGMA disable_checkpoint_on_shutdown");
            s.execute("CREATE TABLE t(i INTEGER PRIMARY KEY, s VARCHAR)");
            sizeAfterCommit[t++] = Files.size(walFile);
            for (int i = 0; i < 3; i++) {
                s.execute("INSERT INTO t VALUES (" + i + ", 'row " + i + "')");
                sizeAfterCommit[t++] = Files.size(walFile);
            }
            s.execute("BEGIN");
            s.execute("INSERT INTO t SELECT i, 'bulk ' || i FROM range(10, 20010) r(i)");
            s.execute("UPDATE t SET s = 'touched' WHERE i % 7 = 0");
            s.execute("COMMIT");
            sizeAfterCommit[t++] = Files.size(walFile);
            s.execute("BEGIN");
            s.execute("INSERT INTO t VALUES (-1, 'rolled back')");
            s.execute("ROLLBACK"); // writes nothing to the WAL
            s.execute("UPDATE t SET s = 'u' WHERE i < 3");
            sizeAfterCommit[t++] = Files.size(walFile);
            s.execute("CREATE SEQUENCE seq");
            sizeAfterCommit[t++] = Files.size(walFile);
            s.execute("CREATE VIEW v AS SELECT count(*) AS n, nextval('seq') AS q FROM t");
            sizeAfterCommit[t++] = Files.size(walFile);
        }
        assertEquals(TRANSACTIONS, t);
        wal = Files.readAllBytes(walFile);
        header = WalScanner.headerLength(wal, wal.length);
    }

    private static Result scan(byte[] buf, int len, long start) throws WalFormatException {
        return WalScanner.scan(buf, len, start);
    }

    private static long[] ends(Result r) {
        return Arrays.copyOf(r.commitEnds, r.count);
    }

    @Test
    void theRealHeaderIsTheOneDocumented() throws Exception {
        // duckdb-facts.md section 1: 1.5.6 default files start with {100: 98, 101: 2} and 0xFFFF; 2.0 adds fields
        // 102 (the database identifier) and 103 (the checkpoint iteration) before the 0xFFFF.
        assertArrayEquals(new byte[] {0x64, 0, 0x62, 0x65, 0, 2}, Arrays.copyOf(wal, 6));
        if (duckdbVersion.startsWith("v1.5")) {
            assertEquals(8, header);
        } else {
            assertEquals(0x66, wal[6], "field 102 follows on " + duckdbVersion);
            assertTrue(header > 8 + 16, "header of " + header + " bytes on " + duckdbVersion);
        }
        assertArrayEquals(new byte[] {(byte) 0xff, (byte) 0xff}, Arrays.copyOfRange(wal, header - 2, header));
    }

    @Test
    void findsOneCommitPerTransactionEndingAtTheFileSizes() throws Exception {
        Result r = scan(wal, wal.length, 0);
        assertArrayEquals(sizeAfterCommit, ends(r), "each commit ends where the WAL ended after it");
        assertEquals(wal.length, r.lastCommitEnd(-1));
        for (int i = 1; i < r.count; i++) assertTrue(r.commitEnds[i] > r.commitEnds[i - 1]);
        assertFalse(r.rowGroupData, "optimistic writes are off: no block pointers in the WAL");
        assertFalse(r.checkpointMarker);
    }

    @Test
    void aPrefixCutAnywhereYieldsExactlyTheCommitsInsideIt() throws Exception {
        // The shipper reads the WAL while DuckDB is still writing it: any length is possible.
        for (int len = 0; len <= wal.length; len++) {
            Result r = scan(wal, len, 0);
            int expected = 0;
            while (expected < sizeAfterCommit.length && sizeAfterCommit[expected] <= len) expected++;
            assertEquals(expected, r.count, "prefix of " + len + " bytes");
            assertArrayEquals(Arrays.copyOf(sizeAfterCommit, expected), ends(r), "prefix of " + len + " bytes");
            assertEquals(expected == 0 ? -1 : sizeAfterCommit[expected - 1], r.lastCommitEnd(-1));
        }
    }

    @Test
    void scanningFromACommitBoundaryGivesAbsoluteOffsets() throws Exception {
        for (int k = 0; k < sizeAfterCommit.length; k++) {
            int from = (int) sizeAfterCommit[k];
            byte[] rest = Arrays.copyOfRange(wal, from, wal.length);
            Result r = scan(rest, rest.length, from);
            assertArrayEquals(Arrays.copyOfRange(sizeAfterCommit, k + 1, sizeAfterCommit.length), ends(r), "from " + from);
            // ... and a prefix of the rest, cut inside the next commit, finds nothing yet.
            if (k + 1 < sizeAfterCommit.length) {
                int inside = (int) (sizeAfterCommit[k + 1] - from - 1);
                assertEquals(0, scan(rest, inside, from).count);
            }
        }
    }

    @Test
    void resultGrowsBeyondItsInitialCapacity() throws Exception {
        // 40 copies of the commits after the header: more than the 16 slots the result starts with.
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        o.write(wal, 0, header);
        for (int i = 0; i < 40; i++) o.write(wal, header, wal.length - header);
        byte[] many = o.toByteArray();
        Result r = scan(many, many.length, 0);
        assertEquals(40 * TRANSACTIONS, r.count);
        assertEquals(many.length, r.lastCommitEnd(-1));
    }

    // ---------------------------------------------------------------- the 2.0 / 'latest' header

    /** {100: 98, 101: 2, 102: 16 varints (a db identifier), 103: 0} 0xFFFF, with some two-byte varints. */
    private static byte[] header20() {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        o.writeBytes(new byte[] {0x64, 0x00, 0x62, 0x65, 0x00, 0x02, 0x66, 0x00, 0x10});
        for (int i = 0; i < 16; i++) {
            if (i % 3 == 0) o.writeBytes(new byte[] {(byte) 0x85, 0x01}); // 133 as a two-byte varint
            else o.write(i + 1);
        }
        o.writeBytes(new byte[] {0x67, 0x00, 0x00, (byte) 0xff, (byte) 0xff});
        return o.toByteArray();
    }

    @Test
    void parsesTheFullerHeaderOfNewerFiles() throws Exception {
        byte[] h = header20();
        assertEquals(h.length, WalScanner.headerLength(h, h.length));
        for (int len = 0; len < h.length; len++) assertEquals(-1, WalScanner.headerLength(h, len), "incomplete at " + len);
        // The same entries behind that header: the same commits, shifted by the header's extra length.
        byte[] spliced = new byte[h.length + wal.length - header];
        System.arraycopy(h, 0, spliced, 0, h.length);
        System.arraycopy(wal, header, spliced, h.length, wal.length - header);
        Result r = scan(spliced, spliced.length, 0);
        long[] expected = Arrays.stream(sizeAfterCommit).map(e -> e + h.length - header).toArray();
        assertArrayEquals(expected, ends(r));
    }

    @Test
    void aLargeCheckpointIterationVarintIsSkipped() throws Exception {
        byte[] h = {0x64, 0x00, 0x62, 0x65, 0x00, 0x03, 0x67, 0x00, (byte) 0xff, (byte) 0xff, 0x7f, (byte) 0xff, (byte) 0xff};
        // 103 = 0xff 0xff 0x7f (a three-byte varint), then the end marker.
        assertEquals(h.length, WalScanner.headerLength(h, h.length));
    }

    // ---------------------------------------------------------------- not a WAL

    @Test
    void garbageIsAFormatErrorNotAnEmptyResult() {
        byte[] text = "this is certainly not a DuckDB write-ahead log".getBytes(StandardCharsets.US_ASCII);
        assertThrows(WalFormatException.class, () -> scan(text, text.length, 0));

        // A valid header followed by an implausible entry size.
        byte[] badSize = Arrays.copyOf(wal, header + 16);
        Arrays.fill(badSize, header, header + 8, (byte) 0xff);
        WalFormatException e = assertThrows(WalFormatException.class, () -> scan(badSize, badSize.length, 0));
        assertTrue(e.getMessage().contains("offset " + header), e.getMessage());

        // An entry whose payload does not start with its type field.
        byte[] noType = Arrays.copyOf(wal, wal.length);
        noType[header + 16] = 0x65;
        assertThrows(WalFormatException.class, () -> scan(noType, noType.length, 0));

        // Starting in the middle of an entry (not at a commit boundary) is caught, not mis-cut.
        int mid = (int) sizeAfterCommit[3] + 5;
        byte[] rest = Arrays.copyOfRange(wal, mid, wal.length);
        assertThrows(WalFormatException.class, () -> scan(rest, rest.length, mid));
    }

    @Test
    void anUnknownHeaderFieldIsAFormatErrorNamingIt() {
        byte[] h = {0x64, 0x00, 0x62, 0x68, 0x00, 0x01, (byte) 0xff, (byte) 0xff};
        WalFormatException e = assertThrows(WalFormatException.class, () -> WalScanner.headerLength(h, h.length));
        assertTrue(e.getMessage().contains("104"), e.getMessage());
    }
}
