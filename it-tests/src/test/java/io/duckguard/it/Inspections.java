package io.duckguard.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.it.harness.ChildJvm;
import io.duckguard.it.host.DbInspector;
import io.duckguard.it.host.ReferenceState;
import io.duckguard.it.host.ReferenceState.Verification;
import io.duckguard.it.host.StateDigest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.MatchResult;

/** Checks a database file against the app's ack log, with the DuckDB version that wrote it. */
final class Inspections {
    private static final Duration START = Duration.ofSeconds(60);

    private Inspections() {}

    record Inspection(Verification verification, String digest) {
    }

    /**
     * Verifies (and digests) with the test JVM's own driver when it is that version, else in one child JVM with the
     * right one (a 2.0 file cannot be opened by 1.5.6).
     */
    static Inspection inspect(String version, Path db, Path ack, boolean digest, String ctx)
            throws Exception {
        if (inProcess(version)) {
            try (Connection c = openInProcess(db)) {
                return new Inspection(ReferenceState.verify(ack, c), digest ? StateDigest.digest(c) : null);
            }
        }
        List<String> args = new ArrayList<>(List.of("--db", db.toString(), "--ack-log", ack.toString()));
        if (digest) {
            args.add("--digest");
        }
        try (ChildJvm.Handle h = new ChildJvm().duckdbVersion(version).mainClass(DbInspector.class.getName())
                .args(args).workDir(db.getParent()).start()) {
            MatchResult line = h.waitForLine("^VERIFY .*", START);
            String hex = digest ? h.waitForLine("^DIGEST ([0-9a-f]{64})$", START).group(1) : null;
            int exit = h.waitFor(START);
            Verification v = Verification.fromLine(line.group());
            assertEquals(v.ok() ? 0 : 3, exit, () -> ctx + "\n" + h.output());
            assertTrue(v.ok(), () -> ctx + "\n" + h.output());
            return new Inspection(v, hex);
        }
    }

    /** True when the DuckDB driver on this JVM's class path is {@code version}. */
    static boolean inProcess(String version) {
        return ChildJvm.classpathEntryOf(org.duckdb.DuckDBDriver.class).getFileName().toString()
                .equals("duckdb_jdbc-" + version + ".jar");
    }

    /** The child that wrote {@code db} has exited, so this JVM may open it (DuckDB locks the file per process). */
    static Connection openInProcess(Path db) throws SQLException {
        assertTrue(Files.exists(db), "no database at " + db);
        return DriverManager.getConnection("jdbc:duckdb:" + db.toAbsolutePath());
    }

}
