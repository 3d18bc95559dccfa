package io.duckguard.it.host;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;

/**
 * Opens a database written by {@link TradingApp} and reports on it, so a test can check a database with a DuckDB
 * version other than its own (run it in a child JVM with that version's driver) or without holding the file open
 * in the test JVM.
 *
 * <pre>
 *   DbInspector --db PATH [--ack-log PATH] [--digest] [--canonical] [--no-checkpoint-on-close]
 * </pre>
 * Opens read-write, so a leftover {@code <db>.wal} is replayed exactly as the app's next start would. Prints
 * {@link ReferenceState.Verification#toLine()} followed by {@code # }-prefixed details when {@code --ack-log} is
 * given, {@code DIGEST <hex>} with {@code --digest}, {@code CANON <line>} per line with {@code --canonical}.
 * Exit code 0 = fine, 3 = verification failed, 2 = error, 64 = usage.
 */
public final class DbInspector {
    private DbInspector() {
    }

    public static void main(String[] args) {
        Path db = null;
        Path ackLog = null;
        boolean digest = false;
        boolean canonical = false;
        boolean noCheckpoint = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--db" -> db = Path.of(args[++i]).toAbsolutePath();
                case "--ack-log" -> ackLog = Path.of(args[++i]).toAbsolutePath();
                case "--digest" -> digest = true;
                case "--canonical" -> canonical = true;
                case "--no-checkpoint-on-close" -> noCheckpoint = true;
                default -> {
                    System.err.println("unknown argument " + args[i]);
                    System.exit(64);
                }
            }
        }
        if (db == null) {
            System.err.println("usage: DbInspector --db PATH [--ack-log PATH] [--digest] [--canonical]"
                    + " [--no-checkpoint-on-close]");
            System.exit(64);
        }
        int code = 0;
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + db)) {
            if (noCheckpoint) {
                // Leaves the file and WAL as the open left them (replayed in memory only), for later inspection.
                try (Statement s = c.createStatement()) {
                    s.execute("PRAGMA disable_checkpoint_on_shutdown");
                }
            }
            if (ackLog != null) {
                ReferenceState.Verification v = ReferenceState.verify(ackLog, c);
                System.out.println(v.toLine());
                for (String line : v.describe().split("\n")) {
                    System.out.println("# " + line);
                }
                if (!v.ok()) {
                    code = 3;
                }
            }
            if (canonical) {
                for (String line : StateDigest.canonical(c).split("\n")) {
                    System.out.println("CANON " + line);
                }
            }
            if (digest) {
                System.out.println("DIGEST " + StateDigest.digest(c));
            }
        } catch (Exception e) {
            e.printStackTrace();
            System.out.println("ERROR " + e);
            code = 2;
        }
        System.out.flush();
        System.exit(code);
    }
}
