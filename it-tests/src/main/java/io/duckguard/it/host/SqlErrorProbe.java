package io.duckguard.it.host;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;

/**
 * Runs statements that fail in the ways apps meet every day and prints each failure as
 * {@code ERR <exception class> <SQLState> <message>}, so a test can compare the output with and without the agent:
 * the agent must let the app's own exceptions through unchanged.
 */
public final class SqlErrorProbe {
    private SqlErrorProbe() {}

    public static void main(String[] args) throws Exception {
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + args[0]); Statement s = c.createStatement()) {
            s.execute("CREATE TABLE acct(id INTEGER PRIMARY KEY, cash DECIMAL(18,2) CHECK (cash >= 0))");
            s.execute("INSERT INTO acct VALUES (1, 10)");
            String[] bad = {
                "SELEC 1",
                "INSERT INTO acct VALUES (1, 5)",
                "UPDATE acct SET cash = -1 WHERE id = 1",
                "SELECT * FROM no_such_table",
                "INSERT INTO acct VALUES ('x', 1)",
            };
            for (String sql : bad) {
                try (Statement each = c.createStatement()) { // DuckDB closes a statement whose execution failed
                    each.execute(sql);
                    System.out.println("OK " + sql);
                } catch (SQLException e) {
                    System.out.println("ERR " + e.getClass().getName() + " " + e.getSQLState() + " "
                            + e.getMessage().replace('\n', ' '));
                }
            }
            c.setAutoCommit(false);
            try (Statement t = c.createStatement()) {
                t.execute("INSERT INTO acct VALUES (2, 1)");
            }
            try (Statement t = c.createStatement()) {
                t.execute("INSERT INTO acct VALUES (2, 1)");
            } catch (SQLException e) {
                System.out.println("ERR-IN-TXN " + e.getClass().getName() + " " + e.getMessage().replace('\n', ' '));
            }
            try {
                c.commit();
                System.out.println("COMMIT-OK");
            } catch (SQLException e) {
                System.out.println("COMMIT-ERR " + e.getMessage().replace('\n', ' '));
            }
            c.rollback();
            c.setAutoCommit(true);
            try (Statement t = c.createStatement(); var rs = t.executeQuery("SELECT count(*), sum(cash) FROM acct")) {
                rs.next();
                System.out.println("STATE " + rs.getLong(1) + " " + rs.getBigDecimal(2));
            }
        }
        System.out.println("DONE");
    }
}
