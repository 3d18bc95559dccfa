package io.duckguard.bootstrap;

/**
 * What the runtime implements to receive DuckDB JDBC events from the advice.
 *
 * <p>Concurrency contract: every method is called on the host application's own thread that made the JDBC call,
 * synchronously, from inside advice inlined into {@code org.duckdb} classes. Implementations may block (the commit
 * gate, sync-mode waits) but must never throw: {@link DuckGuardHooks} catches anything that escapes anyway and counts
 * it. While a method runs, the calling thread is marked internal, so JDBC calls the runtime itself makes on that
 * thread (duplicate(), SET GLOBAL ...) do not re-enter the listener.
 *
 * <p>Objects are passed as {@code Object}: the runtime is loaded by duckguard's own class loader and reaches DuckDB
 * classes only through {@code java.sql} interfaces and reflection.
 */
public interface HookListener {
    /** A new connection was opened through {@code DuckDBConnection.newConnection}; {@code url} is the JDBC URL. */
    void connectionOpened(Object connection, String url, boolean readOnly);

    /** {@code original.duplicate()} returned {@code duplicate}: same database instance. */
    void connectionDuplicated(Object original, Object duplicate);

    /**
     * Before an outermost JDBC call that may write or commit (statement execution, batch, commit, rollback,
     * setAutoCommit, appender flush/close) runs. This is where the checkpoint gate holds new commits.
     * {@code connection} may be null when the call site does not know its connection (single-value appender).
     */
    void beforeCall(Object connection);

    /**
     * After that outermost call returned or threw. The WAL, not the call's outcome, tells whether something
     * committed; in sync mode this waits until every commit the WAL holds now is durable in the repository.
     */
    void afterCall(Object connection);

    /** After {@code DuckDBConnection.close()} returned or threw. */
    void connectionClosed(Object connection);
}
