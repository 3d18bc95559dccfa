package io.duckguard.runtime.capture;

import static io.duckguard.runtime.testing.AppCalls.exec;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.runtime.cli.Cli;
import io.duckguard.runtime.repository.Repository;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Restore drills: the agent pins a commit, fingerprints the live database there, restores that point from the
 * repository and compares. A corrupted block is caught by the next drill, and shows in the drill status.
 */
class RestoreDrillTest {
    @TempDir
    Path tmp;


    private static Object[] awaitDrill(DatabaseRegistry reg, String name, long after) throws Exception {
        long deadline = System.currentTimeMillis() + 60_000;
        while (System.currentTimeMillis() < deadline) {
            Object[] d = reg.drillStatus(name);
            if ((Long) d[0] > after) return d;
            Thread.sleep(50);
        }
        throw new AssertionError("no drill result within 60 s");
    }

    @Test
    void aDrillPassesThenCatchesACorruptedBlock() throws Exception {
        DatabaseRegistry reg = io.duckguard.runtime.testing.AppCalls.agent(tmp.resolve("repo"), tmp.resolve("key"), "");
        Repository repo = reg.repository();
        Path db = tmp.resolve("desk.duckdb");
        String url = "jdbc:duckdb:" + db;
        try (Connection c = DriverManager.getConnection(url)) {
            reg.connectionOpened(c, url, false);
            exec(reg, c, "CREATE TABLE pos(acct INTEGER, sym VARCHAR, qty BIGINT)");
            exec(reg, c, "INSERT INTO pos SELECT range % 50, 'S' || (range % 300), range FROM range(200000)");
            reg.snapshotNow("desk.duckdb", java.time.Duration.ofMinutes(1));
            for (int i = 0; i < 30; i++) exec(reg, c, "UPDATE pos SET qty = qty + 1 WHERE acct = " + i);
            assertTrue(reg.drillNow("desk.duckdb"));
            Object[] ok = awaitDrill(reg, "desk.duckdb", 0);
            assertTrue(((String) ok[1]).startsWith("PASS commit:"), (String) ok[1]);
            assertEquals(((String) ok[1]).split(" ")[1], ok[2], "the verified restore point is the drilled one");

            // The CLI drill checks the same recorded fingerprint while the app is stopped or from elsewhere.
            assertEquals(0, Cli.run(new String[] {"drill", "--repository", tmp.resolve("repo").toString(),
                "--key-file", tmp.resolve("key").toString(), "--scratch", tmp.resolve("s").toString()}));

            // Bounded I/O: a drill paced at 1 MB/s cannot read the snapshot faster than that (a lower bound from
            // sleeps, not a speed measurement).
            io.duckguard.runtime.repository.DatabaseHistory h = repo.database("desk.duckdb");
            io.duckguard.runtime.drill.Fingerprint fp = io.duckguard.runtime.drill.RestoreDrill.loadFingerprint(h);
            long size = h.readManifest(fp.epoch()).fileSize();
            long t0 = System.nanoTime();
            io.duckguard.runtime.drill.RestoreDrill.Result paced = io.duckguard.runtime.drill.RestoreDrill.run(h, fp,
                    io.duckguard.runtime.restore.DuckDbDriver.find(null, null, null), tmp.resolve("paced"), 1_000_000);
            assertTrue(paced.passed(), paced.line());
            long minMillis = (size - 262144 - 12288) / 1000 - 50; // the last block may arrive right at the end
            assertTrue((System.nanoTime() - t0) / 1_000_000 >= minMillis, "a drill paced at 1 MB/s read "
                    + size + " bytes in " + (System.nanoTime() - t0) / 1_000_000 + " ms");

            // One flipped byte in one pack: the next drill must fail and name the object.
            Path pack;
            try (Stream<Path> s = Files.walk(repo.packsDir())) {
                pack = s.filter(Files::isRegularFile).max((a, b) -> Long.compare(a.toFile().length(), b.toFile().length())).orElseThrow();
            }
            try (RandomAccessFile f = new RandomAccessFile(pack.toFile(), "rw")) {
                f.seek(f.length() / 3);
                int b = f.read();
                f.seek(f.length() / 3);
                f.write(b ^ 0x01);
            }
            exec(reg, c, "INSERT INTO pos VALUES (1, 'NEW', 1)");
            reg.drillNow("desk.duckdb");
            Object[] bad = awaitDrill(reg, "desk.duckdb", (Long) ok[0]);
            assertTrue(((String) bad[1]).startsWith("FAIL "), (String) bad[1]);
            assertTrue(((String) bad[1]).contains("block:"), "names the damaged object: " + bad[1]);
            assertEquals(ok[2], bad[2], "the last verified point stays the last one that passed");
            assertTrue(reg.status("desk.duckdb").agentErrors() > 0);
            reg.connectionClosed(c);
        }
    }
}
