package io.duckguard.runtime.capture;

import io.duckguard.bootstrap.HookListener;
import io.duckguard.runtime.config.AgentConfig;
import io.duckguard.runtime.repository.Repository;
import io.duckguard.runtime.util.Log;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;

/**
 * The hook listener: maps DuckDB connections to the {@link ProtectedDatabase} of their instance.
 *
 * <p>Concurrency: hook methods run on app threads. The per-call path ({@link #beforeCall}/{@link #afterCall}) is
 * one ConcurrentHashMap lookup by connection identity (DuckDBConnection does not override equals/hashCode).
 * Opening and closing connections, which may start or stop a database's protection, serialize on this object.
 * A connection opened before the agent was attached is registered lazily at its first call.
 */
public final class DatabaseRegistry implements HookListener {
    /** Marks connections duckguard looked at and does not protect (in-memory, read-only, failed to start). */
    private static final Object IGNORED = new Object();

    private final AgentConfig cfg;
    private final Repository repo;
    private final Map<Object, Object> byConnection = new ConcurrentHashMap<>();
    private final Map<Path, ProtectedDatabase> byPath = new ConcurrentHashMap<>();
    private final Map<String, String> failures = new ConcurrentHashMap<>();
    private final Consumer<String> onNewDatabase;

    public DatabaseRegistry(AgentConfig cfg, Repository repo, Consumer<String> onNewDatabase) {
        this.cfg = cfg;
        this.repo = repo;
        this.onNewDatabase = onNewDatabase;
    }

    @Override
    public void connectionOpened(Object connection, String url, boolean readOnly) {
        register(connection, url, readOnly);
    }

    @Override
    public void connectionDuplicated(Object original, Object duplicate) {
        Object pd = byConnection.get(original);
        if (pd == null) {
            register(original, DuckDbAccess.url(original), false);
            pd = byConnection.get(original);
        }
        if (pd instanceof ProtectedDatabase p) {
            synchronized (this) {
                p.addAppConnection(duplicate);
                byConnection.put(duplicate, p);
            }
        } else {
            byConnection.put(duplicate, IGNORED);
        }
    }

    @Override
    public void beforeCall(Object connection) {
        ProtectedDatabase pd = lookup(connection);
        if (pd != null) pd.beforeCall(connection);
    }

    @Override
    public void afterCall(Object connection) {
        if (connection == null) {
            // A call site that does not know its connection (single-value appender): check every database.
            for (ProtectedDatabase pd : byPath.values()) pd.afterCall(null);
            return;
        }
        Object pd = byConnection.get(connection);
        if (pd instanceof ProtectedDatabase p) p.afterCall(connection);
    }

    @Override
    public void connectionClosed(Object connection) {
        Object pd = byConnection.remove(connection);
        if (!(pd instanceof ProtectedDatabase p)) return;
        synchronized (this) {
            if (p.removeAppConnection(connection) == 0 && !p.isClosed()) {
                Log.info(p.name + ": the app closed its last connection; shipping the rest and stopping");
                p.shutdown();
                byPath.remove(p.dbPath, p);
            }
        }
    }

    private ProtectedDatabase lookup(Object connection) {
        if (connection == null) return null;
        Object pd = byConnection.get(connection);
        if (pd == null) {
            // Opened before duckguard was attached (agentmain): register it now, before this call runs.
            boolean readOnly;
            try {
                readOnly = ((java.sql.Connection) connection).isReadOnly();
            } catch (Exception e) {
                readOnly = false;
            }
            register(connection, DuckDbAccess.url(connection), readOnly);
            pd = byConnection.get(connection);
        }
        return pd instanceof ProtectedDatabase p ? p : null;
    }

    private synchronized void register(Object connection, String url, boolean readOnly) {
        if (byConnection.containsKey(connection)) return;
        Path file = DuckDbAccess.fileOf(url);
        if (file == null || readOnly) {
            byConnection.put(connection, IGNORED);
            return;
        }
        try {
            if (Files.exists(file)) file = file.toRealPath();
        } catch (java.io.IOException e) {
            // keep the normalized path
        }
        ProtectedDatabase pd = byPath.get(file);
        if (pd == null || pd.isClosed()) {
            try {
                pd = ProtectedDatabase.start(connection, file, cfg, repo);
                byPath.put(file, pd);
                failures.remove(file.getFileName().toString());
                Log.info(pd.name + ": protected (" + cfg.mode.name().toLowerCase() + " mode) -> " + repo.root());
                onNewDatabase.accept(pd.name);
            } catch (Exception e) {
                String name = file.getFileName().toString();
                failures.put(name, "not protected: " + e.getMessage());
                Log.error(name + ": NOT protected: " + e.getMessage(), null);
                byConnection.put(connection, IGNORED);
                onNewDatabase.accept(name);
                return;
            }
        }
        pd.addAppConnection(connection);
        byConnection.put(connection, pd);
    }

    /** Status of the database with this file name: live, or the reason it is not protected; null if unknown. */
    public DatabaseStatusView status(String name) {
        for (ProtectedDatabase pd : byPath.values()) if (pd.name.equals(name)) return pd.status();
        String f = failures.get(name);
        if (f == null) return null;
        return new DatabaseStatusView(name, "", false, f, cfg.mode.name().toLowerCase(), 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    }

    /** The live protected database with this file name, or null. */
    ProtectedDatabase get(String name) {
        for (ProtectedDatabase pd : byPath.values()) if (pd.name.equals(name)) return pd;
        return null;
    }

    /** Checkpoint now and wait for the snapshot that opens the next epoch; returns that epoch. */
    public long snapshotNow(String name, java.time.Duration timeout) throws Exception {
        ProtectedDatabase pd = get(name);
        if (pd == null) throw new IllegalStateException("database " + name + " is not open");
        return pd.checkpointAndWait(timeout);
    }

    /** A DuckDB driver from the app's own class loader (JMX restores run inside the app). */
    public io.duckguard.runtime.restore.DuckDbDriver appDriver(String name) throws Exception {
        ProtectedDatabase pd = get(name);
        if (pd == null) throw new IllegalStateException("database " + name + " is not open");
        return pd.appDriver();
    }

    public Repository repository() {
        return repo;
    }

    public AgentConfig config() {
        return cfg;
    }

    public boolean drillNow(String name) {
        ProtectedDatabase pd = get(name);
        if (pd == null) return false;
        pd.requestDrill();
        return true;
    }

    /** {last drill time (epoch millis), last drill result line, last verified restorable commit}; null if unknown. */
    public Object[] drillStatus(String name) {
        ProtectedDatabase pd = get(name);
        return pd == null ? null : new Object[] {pd.lastDrillTime(), pd.lastDrillLine(), pd.lastVerifiedCommit()};
    }

    public boolean checkpointNow(String name) {
        for (ProtectedDatabase pd : byPath.values()) {
            if (pd.name.equals(name)) {
                pd.requestCheckpoint();
                return true;
            }
        }
        return false;
    }

    public List<String> names() {
        List<String> n = new ArrayList<>();
        for (ProtectedDatabase pd : byPath.values()) n.add(pd.name);
        n.addAll(failures.keySet());
        return n;
    }

    /** Ship what is left on every database (JVM shutdown hook). */
    public void shutdownAll() {
        for (ProtectedDatabase pd : byPath.values()) pd.shutdown();
    }
}
