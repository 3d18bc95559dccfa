package io.duckguard.runtime.testing;

import io.duckguard.runtime.capture.DatabaseRegistry;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;

/**
 * The test plays the agent's advice: every JDBC call of the "app" goes through the registry's hook methods, as the
 * Byte Buddy advice does in a real host, so the runtime can be exercised in one JVM.
 */
public final class AppCalls {
    private AppCalls() {}

    /** Executes one statement as an app would, between beforeCall and afterCall. */
    public static void exec(DatabaseRegistry reg, Connection c, String sql) throws Exception {
        reg.beforeCall(c);
        try (Statement s = c.createStatement()) {
            s.execute(sql);
        } finally {
            reg.afterCall(c);
        }
    }

    /** The first column of the first row of {@code sql}, as a long. */
    public static long count(Connection c, String sql) throws Exception {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        }
    }
}
