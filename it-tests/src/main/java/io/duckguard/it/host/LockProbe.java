package io.duckguard.it.host;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;

/**
 * Another process trying to open a database file. Prints {@code LOCKED <message>} when DuckDB refuses (the
 * owner's POSIX lock is intact) or {@code OPENED} when it got in (the lock was lost: a data-corruption hazard).
 */
public final class LockProbe {
    private LockProbe() {}

    public static void main(String[] args) {
        boolean readOnly = args.length > 1 && args[1].equals("--read-only");
        java.util.Properties p = new java.util.Properties();
        if (readOnly) p.setProperty("duckdb.read_only", "true");
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + args[0], p)) {
            System.out.println("OPENED");
        } catch (SQLException e) {
            System.out.println("LOCKED " + e.getMessage().replace('\n', ' '));
        }
    }
}
