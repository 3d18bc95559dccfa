package io.duckguard.it.host;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * An order-independent fingerprint of a whole DuckDB database's logical state, for "these two databases are the
 * same": every user table (its CREATE statement, columns with types, defaults and nullability, row count and a
 * SHA-256 of its rows in sorted order), every sequence (including its current value), view, index and constraint.
 * Physical layout (row order, blocks, checkpoints, internal oids, the file name) does not enter it.
 *
 * <p>Rows are hashed in Java from their JDBC string form after {@code ORDER BY ALL}, not with DuckDB's
 * {@code hash()}, so the digest does not depend on DuckDB's hash function; compare digests produced by the same
 * DuckDB version (sort order and value formatting are the version's).
 */
public final class StateDigest {
    private StateDigest() {
    }

    /** Hex SHA-256 of {@link #canonical(Connection)}. */
    public static String digest(Connection c) throws SQLException {
        return sha256Hex(canonical(c).getBytes(StandardCharsets.UTF_8));
    }

    /**
     * The text the digest is taken of, one line per object, sorted by kind and name. Print two of these side by
     * side to see where two databases differ.
     */
    public static String canonical(Connection c) throws SQLException {
        StringBuilder sb = new StringBuilder();
        List<String[]> tables = new ArrayList<>();
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(
                "SELECT schema_name, table_name, sql FROM duckdb_tables() WHERE database_name = current_database()"
                        + " AND NOT internal AND NOT temporary ORDER BY schema_name, table_name")) {
            while (rs.next()) {
                tables.add(new String[] {rs.getString(1), rs.getString(2), rs.getString(3)});
            }
        }
        for (String[] t : tables) {
            String qualified = quote(t[0]) + "." + quote(t[1]);
            sb.append("table ").append(t[0]).append('.').append(t[1]).append(" sql=").append(t[2]).append('\n');
            try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(
                    "SELECT column_name, data_type, column_default, is_nullable FROM duckdb_columns()"
                            + " WHERE database_name = current_database() AND schema_name = " + literal(t[0])
                            + " AND table_name = " + literal(t[1]) + " ORDER BY column_index")) {
                while (rs.next()) {
                    sb.append("  column ").append(rs.getString(1)).append(' ').append(rs.getString(2))
                            .append(" default=").append(rs.getString(3)).append(" nullable=")
                            .append(rs.getBoolean(4)).append('\n');
                }
            }
            sb.append("  ").append(rowsDigest(c, qualified)).append('\n');
        }
        // Not last_value: on 1.5.6 it is stale after a WAL replay and off by one after a checkpoint, so it would
        // tell a replayed copy from the original. The sql text carries the real counter as "START <next value>".
        appendQuery(c, sb, "sequence", "SELECT schema_name, sequence_name, sql FROM duckdb_sequences()"
                + " WHERE database_name = current_database() AND NOT temporary ORDER BY schema_name, sequence_name");
        appendQuery(c, sb, "view", "SELECT schema_name, view_name, sql FROM duckdb_views()"
                + " WHERE database_name = current_database() AND NOT internal AND NOT temporary"
                + " ORDER BY schema_name, view_name");
        appendQuery(c, sb, "index", "SELECT schema_name, table_name, index_name, is_unique, is_primary, sql"
                + " FROM duckdb_indexes() WHERE database_name = current_database()"
                + " ORDER BY schema_name, table_name, index_name");
        appendQuery(c, sb, "constraint", "SELECT schema_name, table_name, constraint_type, constraint_text"
                + " FROM duckdb_constraints() WHERE database_name = current_database()"
                + " ORDER BY schema_name, table_name, constraint_index");
        return sb.toString();
    }

    /**
     * The value the next {@code nextval()} of {@code sequence} will return, read without calling it (so without
     * changing the database), from the {@code START n} that {@code duckdb_sequences().sql} renders for the
     * sequence's current counter. Throws if the sequence does not exist.
     */
    public static long sequenceNextValue(Connection c, String sequence) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT sql FROM duckdb_sequences()"
                + " WHERE database_name = current_database() AND sequence_name = " + literal(sequence))) {
            if (!rs.next()) {
                throw new SQLException("no sequence " + sequence);
            }
            Matcher m = START.matcher(rs.getString(1));
            if (!m.find()) {
                throw new SQLException("no START in the sql of sequence " + sequence + ": " + rs.getString(1));
            }
            return Long.parseLong(m.group(1));
        }
    }

    private static final Pattern START = Pattern.compile("\\bSTART (?:WITH )?(-?\\d+)");

    /** {@code rows=<n> sha256=<hex>} over the table's rows in {@code ORDER BY ALL} order. */
    private static String rowsDigest(Connection c, String qualifiedTable) throws SQLException {
        MessageDigest md = sha256();
        long n = 0;
        StringBuilder row = new StringBuilder();
        try (Statement s = c.createStatement();
             ResultSet rs = s.executeQuery("SELECT * FROM " + qualifiedTable + " ORDER BY ALL")) {
            int cols = rs.getMetaData().getColumnCount();
            while (rs.next()) {
                row.setLength(0);
                for (int i = 1; i <= cols; i++) {
                    String v = rs.getString(i);
                    // Unit separator between fields and a distinct NULL marker keep ("a","") apart from ("","a").
                    row.append(v == null ? "\u2400" : v).append('\u001f');
                }
                row.append('\n');
                md.update(row.toString().getBytes(StandardCharsets.UTF_8));
                n++;
            }
        }
        return "rows=" + n + " sha256=" + HexFormat.of().formatHex(md.digest());
    }

    private static void appendQuery(Connection c, StringBuilder sb, String kind, String sql) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            ResultSetMetaData m = rs.getMetaData();
            while (rs.next()) {
                sb.append(kind);
                for (int i = 1; i <= m.getColumnCount(); i++) {
                    sb.append(' ').append(m.getColumnName(i)).append('=').append(rs.getString(i));
                }
                sb.append('\n');
            }
        }
    }

    private static String quote(String ident) {
        return '"' + ident.replace("\"", "\"\"") + '"';
    }

    private static String literal(String s) {
        return "'" + s.replace("'", "''") + "'";
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static String sha256Hex(byte[] data) {
        return HexFormat.of().formatHex(sha256().digest(data));
    }
}
