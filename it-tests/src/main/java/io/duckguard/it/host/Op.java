package io.duckguard.it.host;

import java.util.Locale;

/**
 * The kinds of transaction the {@link TradingApp} runs. The lower-case name is the op column of the ack log.
 *
 * <p>{@code marker} tells whether the transaction writes its own row into {@code applied_txns} (with the number of
 * rows it wrote) inside the same DuckDB transaction. Autocommit operations (a single INSERT, an autocommit
 * executeBatch, an autocommit Appender flush) cannot: they touch one table in one statement, so their row count
 * lives only in the ack log (and, for ticks, in each row's {@code batch_rows}).
 */
public enum Op {
    /** Schema + initial balances, one transaction. */
    SETUP(true),
    /** Autocommit {@code executeUpdate} of one order. */
    NEW_ORDER(false),
    /** Autocommit {@code PreparedStatement.executeBatch} of several orders (the driver wraps it in one txn). */
    ORDER_BATCH(false),
    /** Autocommit DuckDB Appender into {@code ticks}, fewer than 2048 rows so its close() is one commit. */
    TICKS(false),
    /** Explicit txn: fill an open order (update), insert fills, upsert the position, update the balance. */
    TRADE(true),
    /** Explicit txn: a new order, then its fills through an Appender ({@code flush()}), then the balance. */
    FILLS_APPEND(true),
    /** Explicit txn: cancel some open orders (updates). */
    CANCEL(true),
    /** Explicit txn: delete some cancelled orders. */
    PURGE(true),
    /** Explicit txn: {@code executeBatch} of orders inside a transaction. */
    BATCH_TXN(true),
    /** Explicit txn that always ends in {@code rollback()}: logged, never acknowledged, must never be present. */
    ROLLBACK(true),
    /** Explicit txn with more than one row group (122,880 rows) of fills through an Appender, once per run. */
    BIG_TXN(true),
    /** Explicit txn: ALTER TABLE orders ADD COLUMN, once per run with --ddl. */
    DDL_ALTER(true),
    /** Explicit txn: CREATE INDEX, once per run with --ddl. */
    DDL_INDEX(true);

    private final boolean marker;

    Op(boolean marker) {
        this.marker = marker;
    }

    public boolean writesMarker() {
        return marker;
    }

    public String logName() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static Op fromLogName(String name) {
        return valueOf(name.toUpperCase(Locale.ROOT));
    }
}
