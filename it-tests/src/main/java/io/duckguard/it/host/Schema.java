package io.duckguard.it.host;

import java.util.List;

/**
 * The trading schema. Every data table has a {@code txn_id} column: the id of the transaction that last inserted
 * or updated the row. A transaction that updates or deletes rows first records, in {@code superseded}, how many
 * rows of which earlier transaction it overwrote, so for every transaction X at any time:
 * <pre>
 *   rows with txn_id = X (all data tables)  +  sum(superseded.n_rows where old_txn_id = X)  ==  rows X wrote
 * </pre>
 * which is what lets {@link ReferenceState} prove a restored transaction is complete, not just present.
 * Nothing stores wall-clock time (timestamps are derived from the txn id), so runs are reproducible.
 */
public final class Schema {
    private Schema() {
    }

    /** Tables whose rows carry the writing transaction's id, in the order the verification reads them. */
    public static final List<String> DATA_TABLES = List.of("orders", "fills", "positions", "balances", "ticks",
            "superseded");

    public static final String SEQUENCE = "order_id_seq";
    public static final String VIEW = "account_exposure";
    /** Created with the schema, before any ALTER: an index that exists while the app runs. */
    public static final String SETUP_INDEX = "orders_account_idx";
    /** Created at run time by the --ddl op. */
    public static final String DDL_INDEX = "orders_symbol_idx";
    /** Added at run time by the --ddl op. */
    public static final String DDL_COLUMN = "client_tag";

    static final List<String> CREATE = List.of(
            "CREATE SEQUENCE " + SEQUENCE + " START 1",
            "CREATE TABLE applied_txns(txn_id BIGINT PRIMARY KEY, op VARCHAR NOT NULL, thread INTEGER NOT NULL,"
                    + " row_count BIGINT NOT NULL, logical_ts TIMESTAMP NOT NULL)",
            // order_id comes from nextval() in each INSERT, deliberately not from a column DEFAULT: DuckDB 1.5.6
            // cannot replay a WAL holding an ALTER TABLE of a table with a DEFAULT nextval() column ("INTERNAL
            // Error: Failure while replaying WAL file ... GetDefaultDatabase with no default database set"), so a
            // kill after the --ddl ALTER would leave a database that no longer opens. 2.0 replays it.
            "CREATE TABLE orders(order_id BIGINT PRIMARY KEY,"
                    + " txn_id BIGINT NOT NULL, account INTEGER NOT NULL, symbol VARCHAR NOT NULL,"
                    + " side VARCHAR NOT NULL, qty INTEGER NOT NULL, price DECIMAL(18,4) NOT NULL,"
                    + " status VARCHAR NOT NULL, filled_qty INTEGER NOT NULL DEFAULT 0,"
                    + " created_ts TIMESTAMP NOT NULL, updated_ts TIMESTAMP NOT NULL)",
            // No primary key: the big transaction appends 130k rows here and must stay fast.
            "CREATE TABLE fills(fill_id BIGINT NOT NULL, txn_id BIGINT NOT NULL, order_id BIGINT NOT NULL,"
                    + " account INTEGER NOT NULL, symbol VARCHAR NOT NULL, side VARCHAR NOT NULL, qty INTEGER NOT NULL,"
                    + " price DECIMAL(18,4) NOT NULL, ts TIMESTAMP NOT NULL)",
            "CREATE TABLE positions(account INTEGER NOT NULL, symbol VARCHAR NOT NULL, txn_id BIGINT NOT NULL,"
                    + " qty BIGINT NOT NULL, cost DECIMAL(18,4) NOT NULL, PRIMARY KEY(account, symbol))",
            "CREATE TABLE balances(account INTEGER PRIMARY KEY, txn_id BIGINT NOT NULL, cash DECIMAL(18,4) NOT NULL)",
            // Market data written by an autocommit Appender: each row repeats its batch size so even an
            // unacknowledged batch can be checked for completeness.
            "CREATE TABLE ticks(txn_id BIGINT NOT NULL, seq INTEGER NOT NULL, batch_rows INTEGER NOT NULL,"
                    + " symbol VARCHAR NOT NULL, bid DOUBLE NOT NULL, ask DOUBLE NOT NULL, ts TIMESTAMP NOT NULL)",
            "CREATE TABLE superseded(txn_id BIGINT NOT NULL, old_txn_id BIGINT NOT NULL, table_name VARCHAR NOT NULL,"
                    + " n_rows BIGINT NOT NULL)",
            // Index on a column that is never updated: DuckDB turns updates of indexed columns into delete+insert.
            "CREATE INDEX " + SETUP_INDEX + " ON orders(account)",
            "CREATE VIEW " + VIEW + " AS SELECT p.account, count(*) AS symbols, sum(p.qty) AS net_qty,"
                    + " sum(p.cost) AS cost, any_value(b.cash) AS cash"
                    + " FROM positions p JOIN balances b USING (account) GROUP BY p.account");

    static final List<String> SYMBOLS = List.of("AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "ORCL",
            "SAP", "ASML");
}
