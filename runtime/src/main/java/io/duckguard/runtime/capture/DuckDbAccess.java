package io.duckguard.runtime.capture;

import java.lang.reflect.Field;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;

/**
 * What duckguard needs from the host's DuckDB JDBC classes, reached reflectively: the runtime is loaded by its own
 * class loader and must work with whichever duckdb_jdbc the host brings (1.5.6.0 and 2.0.0.1 are tested).
 */
final class DuckDbAccess {
    private DuckDbAccess() {}

    /** {@code DuckDBConnection.duplicate()}: a new connection on the same database instance. */
    static Connection duplicate(Object duckDbConnection) throws SQLException {
        try {
            return (Connection) duckDbConnection.getClass().getMethod("duplicate").invoke(duckDbConnection);
        } catch (java.lang.reflect.InvocationTargetException e) {
            if (e.getCause() instanceof SQLException s) throw s;
            throw new SQLException("duplicate() failed", e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new SQLException("this duckdb_jdbc has no DuckDBConnection.duplicate()", e);
        }
    }

    private static final ClassValue<Field> TRANSACTION_RUNNING = new ClassValue<>() {
        @Override
        protected Field computeValue(Class<?> type) {
            try {
                Field f = type.getDeclaredField("transactionRunning");
                f.setAccessible(true);
                return f;
            } catch (ReflectiveOperationException | RuntimeException e) {
                return null;
            }
        }
    };

    /**
     * Whether the app's connection is inside a JDBC transaction ({@code DuckDBConnection.transactionRunning}, set
     * when autoCommit=false has begun one). Unknown is reported as false.
     */
    static boolean inTransaction(Object duckDbConnection) {
        Field f = TRANSACTION_RUNNING.get(duckDbConnection.getClass());
        if (f == null) return false;
        try {
            return f.getBoolean(duckDbConnection);
        } catch (IllegalAccessException | RuntimeException e) {
            return false;
        }
    }

    /** The JDBC URL a connection was opened with ({@code DuckDBConnection.url}), for connections opened before attach. */
    static String url(Object duckDbConnection) {
        try {
            Field f = duckDbConnection.getClass().getDeclaredField("url");
            f.setAccessible(true);
            return (String) f.get(duckDbConnection);
        } catch (ReflectiveOperationException | RuntimeException e) {
            return null;
        }
    }

    /**
     * The database file a JDBC URL names, or null for in-memory and non-file databases. URL options follow ';'
     * (duckdb-facts.md section 6).
     */
    static Path fileOf(String url) {
        if (url == null || !url.startsWith("jdbc:duckdb:")) return null;
        String rest = url.substring("jdbc:duckdb:".length());
        int semi = rest.indexOf(';');
        if (semi >= 0) rest = rest.substring(0, semi);
        rest = rest.trim();
        if (rest.isEmpty() || rest.startsWith(":memory:") || rest.startsWith("md:") || rest.startsWith("motherduck:")) {
            return null;
        }
        return Path.of(rest).toAbsolutePath().normalize();
    }

    /** The settings that make the agent the owner of checkpoints (invariant 3). GLOBAL and not persisted. */
    static void takeOverCheckpoints(Connection agentConn) throws SQLException {
        try (Statement s = agentConn.createStatement()) {
            s.execute("SET GLOBAL checkpoint_threshold='1000TB'");
            s.execute("SET GLOBAL enable_optimistic_write=false");
            s.execute("PRAGMA disable_checkpoint_on_shutdown");
            try (ResultSet rs = s.executeQuery("SELECT current_setting('enable_optimistic_write')::VARCHAR")) {
                rs.next();
                if (!"false".equalsIgnoreCase(rs.getString(1))) {
                    throw new SQLException("enable_optimistic_write is still " + rs.getString(1));
                }
            }
        }
    }

    static String version(Connection c) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT library_version FROM pragma_version()")) {
            rs.next();
            return rs.getString(1);
        }
    }

    /** Where the host's duckdb_jdbc jar is, so the CLI can use the same DuckDB to restore. */
    static String driverJar(Object duckDbConnection) {
        try {
            return Path.of(duckDbConnection.getClass().getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
        } catch (Exception e) {
            return "";
        }
    }
}
