package io.duckguard.runtime.drill;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A logical fingerprint of a database at one commit: per table its row count and an order-independent content
 * hash (XOR and sum of DuckDB's hash of each row). Two databases with the same rows, in any physical layout, have
 * the same fingerprint; a lost, changed or extra row changes it.
 */
public record Fingerprint(long epoch, int commits, long timeMillis, Map<String, String> tables) {

    /** Computes the fingerprint of what {@code c} sees (its current transaction). */
    public static Map<String, String> tablesOf(Connection c) throws SQLException {
        List<String> names = new ArrayList<>();
        try (Statement s = c.createStatement();
             ResultSet rs = s.executeQuery("SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT internal"
                     + " AND database_name = current_database() ORDER BY 1, 2")) {
            while (rs.next()) names.add(quote(rs.getString(1)) + "." + quote(rs.getString(2)));
        }
        Map<String, String> out = new TreeMap<>();
        for (String t : names) {
            try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(
                    "SELECT count(*), coalesce(bit_xor(hash(r)), 0)::VARCHAR, coalesce(sum(hash(r) % 1000000007), 0)::VARCHAR FROM " + t + " r")) {
                rs.next();
                out.put(t, rs.getLong(1) + " rows, xor " + rs.getString(2) + ", sum " + rs.getString(3));
            }
        }
        return out;
    }

    private static String quote(String ident) {
        return '"' + ident.replace("\"", "\"\"") + '"';
    }

    /** What differs between this (expected) and {@code actual}, one line per table; empty when equal. */
    public List<String> differences(Map<String, String> actual) {
        List<String> d = new ArrayList<>();
        for (Map.Entry<String, String> e : tables.entrySet()) {
            String got = actual.get(e.getKey());
            if (got == null) d.add(e.getKey() + ": missing in the restore");
            else if (!got.equals(e.getValue())) d.add(e.getKey() + ": expected " + e.getValue() + ", restored " + got);
        }
        for (String t : actual.keySet()) if (!tables.containsKey(t)) d.add(t + ": in the restore but not in the live database");
        return d;
    }

    public byte[] encode() {
        try {
            ByteArrayOutputStream bo = new ByteArrayOutputStream();
            DataOutputStream o = new DataOutputStream(bo);
            o.writeInt(1);
            o.writeLong(epoch);
            o.writeInt(commits);
            o.writeLong(timeMillis);
            o.writeInt(tables.size());
            for (Map.Entry<String, String> e : tables.entrySet()) {
                o.writeUTF(e.getKey());
                o.writeUTF(e.getValue());
            }
            o.flush();
            return bo.toByteArray();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    public static Fingerprint decode(byte[] b) throws IOException {
        DataInputStream in = new DataInputStream(new ByteArrayInputStream(b));
        if (in.readInt() != 1) throw new IOException("unknown fingerprint version");
        long epoch = in.readLong();
        int commits = in.readInt();
        long time = in.readLong();
        int n = in.readInt();
        Map<String, String> t = new TreeMap<>();
        for (int i = 0; i < n; i++) t.put(in.readUTF(), in.readUTF());
        return new Fingerprint(epoch, commits, time, t);
    }
}
