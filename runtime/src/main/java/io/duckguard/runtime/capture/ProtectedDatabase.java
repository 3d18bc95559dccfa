package io.duckguard.runtime.capture;

import io.duckguard.runtime.config.AgentConfig;
import io.duckguard.runtime.crypto.CorruptObjectException;
import io.duckguard.runtime.drill.Fingerprint;
import io.duckguard.runtime.drill.RestoreDrill;
import io.duckguard.runtime.repository.CommitMark;
import io.duckguard.runtime.repository.DatabaseHistory;
import io.duckguard.runtime.repository.Manifest;
import io.duckguard.runtime.repository.WalLog;
import io.duckguard.runtime.repository.WalRecord;
import io.duckguard.runtime.snapshot.Snapshotter;
import io.duckguard.runtime.util.Log;
import io.duckguard.runtime.util.Threads;
import io.duckguard.runtime.wal.WalScanner;
import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Objects;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

/**
 * One protected DuckDB database instance (one file) in this JVM: owns its checkpoints and ships its WAL.
 *
 * <p>Threads. App threads call {@link #beforeCall(Object)} / {@link #afterCall(Object)} around each JDBC call that may commit:
 * the first passes the checkpoint gate, the second notes the WAL's new size and, in sync mode, waits until every
 * commit in it is durable in the repository. One thread per database, {@code duckguard-wal-NAME} (the shipper),
 * does everything else, so the epoch state needs no locks: it reconciles with the repository at start, ships
 * new WAL bytes (one record + one fdatasync per batch: group commit), detects checkpoints it did not drive, runs
 * the agent's own checkpoints and takes the snapshot that opens each new epoch. It publishes what is durable
 * as an immutable {@link ShipState}; waiters compare it with what they saw.
 *
 * <p>Why waiters compare the WAL's file identity and not only its size: after a checkpoint DuckDB deletes the
 * WAL and the next commit creates a new file whose offsets start again at 0. A size alone could then look
 * "already shipped". So a waiter is done when the shipper has that very file open, its base snapshot is stored,
 * and everything up to the size the waiter saw is durable; or when the epoch the waiter saw has been closed and
 * the next one's base is stored (a checkpoint absorbed the waiter's commit into that base). A commit made during
 * the app's own concurrent checkpoint sits in {@code <db>.wal.checkpoint} ({@link CheckpointWal}); its waiter waits
 * for that file, the next epoch's WAL.
 */
public final class ProtectedDatabase {
    /** What is durable in the repository now. walKey null = no WAL file in this epoch yet. */
    record ShipState(long epoch, Object walKey, long coveredTo, boolean baseStored) {
        boolean covers(Object key, long size) {
            return baseStored && Objects.equals(walKey, key) && coveredTo >= size;
        }

        /**
         * Whether a commit seen in WAL file {@code key} up to {@code size} while the epoch was {@code seenEpoch} is
         * durable: shipped, or its WAL was retired by a checkpoint into a base that is stored now. Not when its WAL
         * is the one the new epoch follows: commits made while a checkpoint runs go to {@code <db>.wal.checkpoint},
         * which DuckDB renames to the next epoch's {@code <db>.wal}; they are in no base, only shipping covers them.
         */
        boolean durable(long seenEpoch, Object key, long size) {
            return covers(key, size) || (baseStored && epoch > seenEpoch && !Objects.equals(key, walKey));
        }
    }

    private static final long GATE_TIMEOUT_MS = 2000;
    private static final long HEADER_CHECK_INTERVAL_NS = 50_000_000L;

    final String name;
    final Path dbPath;
    final Path walPath;
    private final File walFile;
    private final CheckpointWal checkpointWal;
    private final AgentConfig cfg;
    private final DatabaseHistory history;
    private final CommitGate gate = new CommitGate();
    private final CommitClock clock = new CommitClock();
    private final Set<Object> appConnections = Collections.newSetFromMap(new IdentityHashMap<>());
    private final Connection agentConn;
    private final String duckdbVersion;
    private final Object durableSignal = new Object();
    private final Thread shipper;
    private final long pollNanos;

    private volatile ShipState state = new ShipState(0, null, 0, false);
    /** Tests only: runs on the shipper between storing a new base and shipping the WAL that follows it. */
    static volatile Runnable afterBaseStored = () -> { };
    private volatile boolean stopping;
    private volatile boolean closed;
    private volatile int waiters;

    // Health and metrics (read by JMX from any thread).
    private volatile String alarm; // null = healthy
    private final AtomicLong agentErrors = new AtomicLong();
    private final AtomicLong syncTimeouts = new AtomicLong();
    private final AtomicLong commitsShipped = new AtomicLong();
    private volatile long lastShippedCommitTime;
    private volatile long lastSnapshotTime;
    private volatile long snapshotCount;
    private volatile long checkpointCount;
    private final Recorder syncWaitMicros = new Recorder(3);
    /** How long each agent checkpoint held new transactions at the gate, cumulative (microseconds). */
    private final Histogram gateStallMicros = new Histogram(3);
    private Histogram syncWaitInterval;

    // Shipper-thread state: the current epoch.
    private HeldFiles.Held db;
    private HeldFiles.Held wal;
    private WalLog.Writer writer;
    private long epoch;
    private long shippedEnd;
    private byte[] baseHeaderSha;
    private Manifest lastManifest;
    private long epochStartNanos;
    private long lastHeaderCheck;
    private long nextCheckpointAttempt;
    private volatile boolean checkpointRequested;
    private volatile boolean drillRequested;
    private long nextDrillNanos;
    private volatile String lastDrillLine = "";
    private volatile long lastDrillTime;
    private volatile String lastVerifiedCommit = "";
    private int epochCommits;
    /** Final length of the previous epoch's WAL log (recorded in the next manifest); -1 unknown. */
    private long closedWalEnd = -1;
    private long checkpointBackoffMs;
    private long lastCheckpointWarning;
    private boolean baseNeedsCheckpoint;
    private byte[] readBuf = new byte[1 << 16];

    private ProtectedDatabase(String name, Path dbPath, AgentConfig cfg, DatabaseHistory history, Connection agentConn,
                              String duckdbVersion) {
        this.name = name;
        this.dbPath = dbPath;
        this.walPath = Path.of(dbPath + ".wal");
        this.walFile = walPath.toFile();
        this.checkpointWal = new CheckpointWal(dbPath);
        if (checkpointWal.leftover() != null) {
            Log.warn(name + ": " + checkpointWal.leftover() + " is left over from an earlier run (DuckDB ignores it and"
                    + " removes it at its next checkpoint); sync-mode commits do not wait for it");
        }
        this.cfg = cfg;
        this.history = history;
        this.agentConn = agentConn;
        this.duckdbVersion = duckdbVersion;
        this.pollNanos = cfg.mode == AgentConfig.Mode.SYNC ? 20_000_000L
                : Math.max(5_000_000L, cfg.maxLag.toNanos() / 5);
        this.nextDrillNanos = System.nanoTime() + cfg.drillInterval.toNanos();
        this.shipper = Threads.start("wal-" + name, this::shipLoop);
    }

    /**
     * Takes over a database instance the app just opened, on the app's thread, before the app's first statement:
     * duplicates the app's connection, applies the checkpoint-owning settings through it, records the database in
     * the repository and starts the shipper. Throws if the instance cannot be protected (the caller reports it).
     */
    static ProtectedDatabase start(Object appConnection, Path dbPath, AgentConfig cfg,
                                   io.duckguard.runtime.repository.Repository repo) throws SQLException, IOException {
        String name = dbPath.getFileName().toString();
        DatabaseHistory history = repo.database(name);
        if (history.exists()) {
            String source = history.info().getProperty("source-path", "");
            if (!source.isEmpty() && !source.equals(dbPath.toString())) {
                throw new IOException("repository " + repo.root() + " already protects database '" + name + "' from "
                        + source + ", not " + dbPath + "; give this database its own repository");
            }
        }
        Connection agentConn = DuckDbAccess.duplicate(appConnection);
        try {
            // A duplicate inherits the JDBC autocommit flag: duplicated from an app connection in a manual
            // transaction (agent attached to a running app), our SET GLOBAL and CHECKPOINT would run inside one.
            agentConn.setAutoCommit(true);
            DuckDbAccess.takeOverCheckpoints(agentConn);
            String version = DuckDbAccess.version(agentConn);
            Properties info = history.exists() ? history.info() : new Properties();
            info.setProperty("name", name);
            info.setProperty("source-path", dbPath.toString());
            info.setProperty("duckdb-version", version);
            info.setProperty("duckdb-jar", DuckDbAccess.driverJar(appConnection));
            history.writeInfo(info);
            return new ProtectedDatabase(name, dbPath, cfg, history, agentConn, version);
        } catch (SQLException | IOException | RuntimeException e) {
            try {
                agentConn.close();
            } catch (SQLException ignored) {
                // we are already failing
            }
            throw e;
        }
    }

    // ------------------------------------------------------------------ app threads

    synchronized void addAppConnection(Object c) {
        appConnections.add(c);
    }

    /** Returns how many app connections remain open. */
    synchronized int removeAppConnection(Object c) {
        appConnections.remove(c);
        return appConnections.size();
    }

    void beforeCall(Object appConnection) {
        try {
            gate.enter(DuckDbAccess.inTransaction(appConnection));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * @param appConnection the connection the call ran on, or null when unknown. Inside a running JDBC transaction
     *                      nothing of this connection committed, so a sync-mode waiter has nothing to wait for
     *                      (waiting there would also keep its transaction, and so a checkpoint, from finishing).
     */
    void afterCall(Object appConnection) {
        gate.exit();
        long len = walFile.length(); // one stat; 0 when there is no WAL
        ShipState st = state;
        if (len == 0 && st.walKey() == null && st.baseStored()) return; // nothing written in this epoch
        clock.note(len);
        if (cfg.mode == AgentConfig.Mode.ASYNC) return; // the shipper polls well within max-lag
        if (appConnection != null && DuckDbAccess.inTransaction(appConnection)) return;
        // During the app's concurrent checkpoint this commit may sit in <db>.wal.checkpoint, the next epoch's WAL: wait
        // for that file to be shipped. (If the commit went to the old WAL instead, the next base holds it, and that
        // file ships after the base: later, never wrong.) Checked first, so a rename in between shows up as <db>.wal.
        BasicFileAttributes live = checkpointWal.live();
        Object key = live != null ? live.fileKey() : HeldFiles.keyOf(walPath);
        long size = live != null ? live.size() : key == null ? 0 : walFile.length();
        if (st.durable(st.epoch(), key, size)) return;
        waitDurable(st.epoch(), key, size);
    }

    private void waitDurable(long seenEpoch, Object key, long size) {
        long t0 = System.nanoTime();
        LockSupport.unpark(shipper);
        long deadline = t0 + cfg.syncTimeout.toNanos();
        synchronized (durableSignal) {
            waiters++;
            try {
                while (!state.durable(seenEpoch, key, size) && !closed) {
                    if (alarm != null && cfg.syncFailure == AgentConfig.SyncFailure.DEGRADE) {
                        syncTimeouts.incrementAndGet();
                        return; // documented policy: with the backup volume failing, keep trading (async behaviour)
                    }
                    long left = deadline - System.nanoTime();
                    if (left <= 0) {
                        if (cfg.syncFailure == AgentConfig.SyncFailure.WAIT) {
                            deadline = System.nanoTime() + cfg.syncTimeout.toNanos();
                            Log.warn(name + ": a commit has waited " + cfg.syncTimeout + " to become durable (sync-failure=wait)");
                            continue;
                        }
                        syncTimeouts.incrementAndGet();
                        Log.warn(name + ": commit not durable in the repository after " + cfg.syncTimeout
                                + "; returning to the app (sync-failure=degrade)");
                        return;
                    }
                    durableSignal.wait(Math.max(1, Math.min(left / 1_000_000L, 100)));
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                waiters--;
                syncWaitMicros.recordValue(Math.max(0, (System.nanoTime() - t0) / 1000));
            }
        }
    }

    /**
     * The app closed its last connection: ship what is left, stop the shipper, close the agent's connection (which
     * closes the instance; checkpoint on shutdown is off, so the WAL stays and the epoch continues at the next open).
     */
    void shutdown() {
        stopping = true;
        LockSupport.unpark(shipper);
        try {
            shipper.join(60_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        closed = true;
        synchronized (durableSignal) {
            durableSignal.notifyAll();
        }
        try {
            agentConn.close();
        } catch (SQLException e) {
            Log.warn(name + ": closing the agent connection: " + e.getMessage());
        }
        HeldFiles.releaseIfUnlinked(walPath, wal);
    }

    boolean isClosed() {
        return closed;
    }

    /**
     * Asks for an agent checkpoint and waits until the snapshot of the new epoch is stored. Any thread but the
     * shipper. Throws if the shipper reports a problem or the timeout passes.
     */
    long checkpointAndWait(java.time.Duration timeout) throws Exception {
        long before = state.epoch();
        long deadline = System.nanoTime() + timeout.toNanos();
        requestCheckpoint();
        while (true) {
            ShipState st = state;
            if (st.epoch() > before && st.baseStored()) return st.epoch();
            if (closed) throw new IllegalStateException(name + " was closed");
            if (System.nanoTime() > deadline) {
                throw new java.util.concurrent.TimeoutException("no snapshot within " + timeout
                        + (alarm != null ? ": " + alarm : " (transactions kept the checkpoint from running?)"));
            }
            Thread.sleep(20);
        }
    }

    io.duckguard.runtime.restore.DuckDbDriver appDriver() throws Exception {
        return io.duckguard.runtime.restore.DuckDbDriver.fromClassLoader(agentConn.getClass().getClassLoader());
    }

    /** Ask for a checkpoint at the next opportunity (JMX checkpointNow). */
    void requestCheckpoint() {
        checkpointRequested = true;
        LockSupport.unpark(shipper);
    }

    // ------------------------------------------------------------------ the shipper thread

    private void shipLoop() {
        boolean started = false;
        while (!stopping) {
            try {
                if (!started) {
                    reconcile();
                    started = true;
                    clearAlarm();
                }
                cycle();
                if (alarm != null) clearAlarm();
            } catch (Throwable t) {
                raise(failure(started ? "shipping failed" : "cannot start protecting", t), t);
                LockSupport.parkNanos(1_000_000_000L);
                continue;
            }
            LockSupport.parkNanos(pollNanos);
        }
        if (started) {
            try {
                ship(); // the last commits before the app closed the database
            } catch (Throwable t) {
                raise(failure("final shipping failed", t), t);
            }
        }
        try {
            if (writer != null) writer.close();
        } catch (IOException ignored) {
            // the log is already durable up to its last record
        }
    }

    /** One round: notice foreign checkpoints, ship new commits, checkpoint if due. */
    private void cycle() throws Exception {
        if (writer == null) {
            // No base for this epoch yet: the start found a WAL it cannot ship, or a snapshot failed. Take it now.
            boolean afterCheckpoint = baseNeedsCheckpoint;
            if (afterCheckpoint && !checkpointForNewBase()) return;
            newBase(afterCheckpoint ? "first snapshot after checkpoint" : "retry after a failed snapshot");
            return;
        }
        long now = System.nanoTime();
        if (now - lastHeaderCheck > HEADER_CHECK_INTERVAL_NS) {
            lastHeaderCheck = now;
            if (foreignCheckpointHappened()) {
                handleForeignCheckpoint();
                return;
            }
        }
        ship();
        if (checkpointDue(now)) {
            agentCheckpoint();
        } else if (drillRequested || now - nextDrillNanos > 0) {
            pinDrill();
        }
    }

    /** Ask for a restore drill at the next opportunity (JMX drillNow). */
    void requestDrill() {
        drillRequested = true;
        LockSupport.unpark(shipper);
    }

    /**
     * Pins a commit position for a restore drill: with the gate closed for every call (a few milliseconds), ship all
     * that is committed, note (epoch, commits) and start a read transaction on a new connection, which sees exactly
     * those commits. The fingerprint scan and the restore then run on duckguard-drill while the app trades on.
     */
    private void pinDrill() throws Exception {
        if (!gate.close(GATE_TIMEOUT_MS, true)) return; // retried next cycle
        Connection pinned = null;
        long pinnedEpoch;
        int pinnedCommits;
        try {
            ship();
            pinnedEpoch = epoch;
            pinnedCommits = epochCommits;
            pinned = DuckDbAccess.duplicate(agentConn);
            pinned.setAutoCommit(false);
            try (Statement s = pinned.createStatement()) {
                // Touching a table starts the transaction on this database: its snapshot is taken now.
                s.executeQuery("SELECT count(*) FROM duckdb_tables()").close();
                s.executeQuery("SELECT 1 FROM (SELECT * FROM duckdb_tables() WHERE NOT internal LIMIT 1)").close();
                for (String t : Fingerprint.tablesOf(pinned).keySet()) {
                    s.executeQuery("SELECT 1 FROM " + t + " LIMIT 1").close();
                    break;
                }
            }
        } catch (SQLException e) {
            if (pinned != null) pinned.close();
            throw e;
        } finally {
            gate.open();
        }
        drillRequested = false;
        nextDrillNanos = System.nanoTime() + cfg.drillInterval.toNanos();
        final Connection conn = pinned;
        final long e = pinnedEpoch;
        final int n = pinnedCommits;
        Threads.start("drill-" + name, () -> runDrill(conn, e, n));
    }

    private void runDrill(Connection pinned, long e, int n) {
        try {
            Fingerprint live;
            try (Connection c = pinned) {
                live = new Fingerprint(e, n, System.currentTimeMillis(), Fingerprint.tablesOf(c));
                c.rollback();
            }
            RestoreDrill.storeFingerprint(history, live);
            RestoreDrill.Result r = RestoreDrill.run(history, live, appDriver(),
                    Path.of(System.getProperty("java.io.tmpdir"), "duckguard-drill"), cfg.drillMaxIo);
            if (r.passed()) {
                lastVerifiedCommit = r.target();
                Log.info(name + ": restore drill " + r.line());
            } else {
                Log.error(name + ": restore drill " + r.line(), null);
                agentErrors.incrementAndGet();
            }
            lastDrillLine = r.line();
            lastDrillTime = r.timeMillis(); // published last: a reader that sees the new time sees all of the above
        } catch (Exception ex) {
            lastDrillLine = "FAIL: " + ex.getMessage();
            lastDrillTime = System.currentTimeMillis();
            Log.error(name + ": restore drill could not run: " + ex.getMessage(), null);
        }
    }

    String lastDrillLine() {
        return lastDrillLine;
    }

    long lastDrillTime() {
        return lastDrillTime;
    }

    String lastVerifiedCommit() {
        return lastVerifiedCommit;
    }

    private boolean checkpointDue(long now) {
        if (now < nextCheckpointAttempt) return false;
        if (checkpointRequested) return true;
        if (shippedEnd == 0) return false; // nothing committed in this epoch yet
        return now - epochStartNanos >= cfg.checkpointInterval.toNanos() || shippedEnd >= cfg.checkpointWalSize;
    }

    /** Start: continue the repository's latest epoch if this file is still its base, else open a new one. */
    private void reconcile() throws Exception {
        db = HeldFiles.acquire(dbPath);
        if (db == null) throw new IOException("database file " + dbPath + " does not exist");
        byte[] header = Snapshotter.headerSha(db.channel());
        List<Long> epochs = history.epochs();
        long latest = -1;
        for (int i = epochs.size() - 1; i >= 0; i--) {
            if (history.hasManifest(epochs.get(i))) {
                latest = epochs.get(i);
                break;
            }
        }
        if (latest >= 0) {
            Manifest m = history.readManifest(latest);
            lastManifest = m;
            if (Arrays.equals(m.headerSha256(), header) && m.fileSize() == db.channel().size()) {
                if (!history.hasWalLog(latest)) history.createWalLog(latest, m.fileSha256());
                WalLog.Contents shipped = history.readWalLog(latest);
                wal = HeldFiles.acquire(walPath);
                if (shipped.walEnd() == 0 || walContinues(shipped)) {
                    epoch = latest;
                    writer = history.openWalLogForAppend(latest);
                    shippedEnd = shipped.walEnd();
                    epochCommits = shipped.commitCount();
                    baseHeaderSha = header;
                    epochStartNanos = System.nanoTime();
                    publish(wal == null ? null : wal.key(), shippedEnd);
                    Log.info(name + ": continuing epoch " + epoch + " (" + shipped.commitCount() + " commits already shipped)");
                    return;
                }
                Log.info(name + ": the WAL on disk does not continue what epoch " + latest + " shipped; opening a new epoch");
            }
        }
        epoch = (epochs.isEmpty() ? 0 : epochs.get(epochs.size() - 1)) + 1;
        if (wal == null) wal = HeldFiles.acquire(walPath);
        if (walHasOptimisticWrites()) {
            // Written before duckguard's settings (attached to a running app): the WAL points into the database
            // file and cannot be replayed onto a copy. Checkpoint first; the new base then holds all of it.
            Log.info(name + ": the WAL holds optimistic writes from before duckguard was attached; checkpointing first");
            baseNeedsCheckpoint = true;
            return;
        }
        newBase(epochs.isEmpty() ? "first snapshot" : "agent start");
    }

    private boolean walHasOptimisticWrites() throws Exception {
        if (wal == null) return false;
        int len = (int) wal.channel().size();
        byte[] all = new byte[len];
        readFully(ByteBuffer.wrap(all), 0);
        return WalScanner.scan(all, len, 0).rowGroupData;
    }

    /** The checkpoint before a first base (see reconcile). True once done; retried with backoff. */
    private boolean checkpointForNewBase() throws Exception {
        if (System.nanoTime() < nextCheckpointAttempt) return false;
        if (!gate.close(GATE_TIMEOUT_MS)) {
            postponeCheckpoint();
            return false;
        }
        try (Statement s = agentConn.createStatement()) {
            s.execute("CHECKPOINT");
        } catch (SQLException e) {
            postponeCheckpoint();
            noteCheckpointFailure(e);
            return false;
        } finally {
            gate.open();
        }
        checkpointBackoffMs = 0;
        checkpointCount++;
        HeldFiles.releaseIfUnlinked(walPath, wal);
        wal = null;
        baseNeedsCheckpoint = false;
        return true;
    }

    /** A checkpoint that keeps failing is worth a warning (once a minute), not only a debug line. */
    private void noteCheckpointFailure(Exception e) {
        Log.debug(name + ": checkpoint postponed: " + e.getMessage());
        long now = System.nanoTime();
        if (now - lastCheckpointWarning > 60_000_000_000L) {
            lastCheckpointWarning = now;
            Log.warn(name + ": checkpoint postponed (retrying): " + e.getMessage().lines().findFirst().orElse(""));
        }
    }

    /** Whether the WAL on disk starts with exactly the bytes the repository already holds for this epoch. */
    private boolean walContinues(WalLog.Contents shipped) throws IOException {
        if (wal == null || wal.channel().size() < shipped.walEnd()) return false;
        for (WalRecord r : shipped.records()) {
            ByteBuffer b = ByteBuffer.allocate(r.walBytes().length);
            readFully(b, r.walStart());
            if (!Arrays.equals(b.array(), r.walBytes())) return false;
        }
        return true;
    }

    /**
     * Snapshot the database file as the base of {@link #epoch}, write its manifest, create its WAL log, then ship
     * whatever WAL this epoch already has. Until this completes, sync-mode commits of the epoch wait.
     */
    private void newBase(String reason) throws Exception {
        for (int attempt = 1; ; attempt++) {
            try {
                Manifest m = Snapshotter.snapshot(history.repository(), db.channel(), epoch, lastManifest, duckdbVersion, reason)
                        .withPreviousWalEnd(closedWalEnd);
                // WAL log first, manifest last: a manifest then always has its WAL log (verify relies on it), and
                // an epoch whose manifest is missing is unfinished only while its WAL log holds no record.
                history.createWalLog(epoch, m.fileSha256());
                history.writeManifest(m);
                if (writer != null) writer.close();
                writer = history.openWalLogForAppend(epoch);
                lastManifest = m;
                baseHeaderSha = m.headerSha256();
                shippedEnd = 0;
                epochCommits = 0;
                epochStartNanos = System.nanoTime();
                lastSnapshotTime = m.createdMillis();
                snapshotCount++;
                // No publish here: ship() publishes once it has looked at the new epoch's WAL, so that no waiter
                // sees "base stored" before the WAL that follows the base is known (ShipState.durable).
                afterBaseStored.run();
                ship();
                return;
            } catch (Snapshotter.ConcurrentCheckpointException e) {
                if (attempt >= 5) throw e;
                Log.info(name + ": database changed during snapshot " + epoch + " (a checkpoint); taking it again");
            }
        }
    }

    /** Ship every complete commit the current WAL file holds beyond what is shipped. */
    private void ship() throws Exception {
        if (writer == null) return; // the epoch's base is not stored yet
        if (wal == null) {
            HeldFiles.Held w = HeldFiles.acquire(walPath);
            if (w == null) {
                publish(null, 0);
                return;
            }
            // A WAL is written against the base it follows. If the database header still is our base's after we
            // opened this file, the file was created before any later checkpoint: it belongs to this epoch.
            if (!Arrays.equals(Snapshotter.headerSha(db.channel()), baseHeaderSha)) {
                Log.debug(name + ": WAL appeared after a checkpoint; not adopting it for epoch " + epoch);
                HeldFiles.releaseIfUnlinked(walPath, w);
                lastHeaderCheck = 0; // let the next cycle handle the checkpoint
                return;
            }
            wal = w;
        }
        long size = wal.channel().size();
        if (size > shippedEnd) {
            int len = (int) Math.min(size - shippedEnd, Integer.MAX_VALUE - 16);
            if (readBuf.length < len) readBuf = new byte[Math.max(len, readBuf.length * 2)];
            ByteBuffer b = ByteBuffer.wrap(readBuf, 0, len);
            readFully(b, shippedEnd);
            WalScanner.Result r = WalScanner.scan(readBuf, len, shippedEnd);
            if (r.rowGroupData) {
                // Optimistic writes were on before duckguard's settings (attached to a running app): this WAL
                // points into the database file and cannot be replayed onto a copy. Take a new base instead.
                Log.warn(name + ": WAL holds optimistic-write block pointers at " + shippedEnd + "; checkpointing to take a new base");
                checkpointRequested = true;
                return;
            }
            if (r.alter) {
                // DuckDB 1.5.6 fails to replay an ALTER TABLE of a table with a DEFAULT nextval(...) column
                // ("GetDefaultDatabase with no default database set"). A checkpoint right after any ALTER bakes it
                // into a base, so restoring later commits never needs to replay it.
                checkpointRequested = true;
            }
            if (r.count > 0) {
                long now = System.currentTimeMillis();
                List<CommitMark> marks = new ArrayList<>(r.count);
                for (int i = 0; i < r.count; i++) marks.add(new CommitMark(r.commitEnds[i], clock.timeOf(r.commitEnds[i], now)));
                long end = r.lastCommitEnd(shippedEnd);
                writer.append(shippedEnd, end, marks, readBuf, 0, (int) (end - shippedEnd));
                shippedEnd = end;
                epochCommits += r.count;
                commitsShipped.addAndGet(r.count);
                lastShippedCommitTime = marks.get(marks.size() - 1).timeMillis();
            }
        }
        publish(wal.key(), size);
    }

    private void readFully(ByteBuffer b, long pos) throws IOException {
        while (b.hasRemaining()) {
            int n = wal.channel().read(b, pos);
            if (n < 0) throw new IOException("WAL " + walPath + " ended early");
            pos += n;
        }
    }

    private void publish(Object walKey, long coveredTo) {
        ShipState next = new ShipState(epoch, walKey, coveredTo, writer != null);
        ShipState prev = state;
        if (next.equals(prev)) return;
        state = next;
        if (waiters > 0) {
            synchronized (durableSignal) {
                durableSignal.notifyAll();
            }
        }
    }

    private boolean foreignCheckpointHappened() throws IOException {
        if (!Arrays.equals(Snapshotter.headerSha(db.channel()), baseHeaderSha)) return true;
        return wal != null && !Objects.equals(HeldFiles.keyOf(walPath), wal.key());
    }

    /**
     * The agent's checkpoint: hold new calls at the gate, ship the WAL tail, CHECKPOINT, ship whatever reached the
     * old WAL meanwhile (through the channel we still hold on the deleted file), open the next epoch, release the
     * gate, then snapshot the new base.
     */
    private void agentCheckpoint() throws Exception {
        long closedAt = System.nanoTime();
        if (!gate.close(GATE_TIMEOUT_MS)) {
            Log.debug(name + ": checkpoint postponed: calls in flight did not finish");
            postponeCheckpoint();
            return;
        }
        try {
            ship();
            io.duckguard.runtime.util.FaultInjection.checkpoint();
            try (Statement s = agentConn.createStatement()) {
                s.execute("CHECKPOINT");
            } catch (SQLException e) {
                // "other write transactions active": an app transaction holds uncommitted updates. Try again soon.
                noteCheckpointFailure(e);
                postponeCheckpoint();
                return;
            }
            checkpointRequested = false;
            checkpointBackoffMs = 0;
            checkpointCount++;
            closeEpoch();
        } finally {
            gate.open();
            synchronized (gateStallMicros) {
                gateStallMicros.recordValue((System.nanoTime() - closedAt) / 1000);
            }
        }
        newBase("checkpoint");
    }

    /** Back off 50 ms, doubling up to 2 s: retries stay cheap for the app and quick to succeed. */
    private void postponeCheckpoint() {
        checkpointBackoffMs = Math.min(2000, Math.max(50, checkpointBackoffMs * 2));
        nextCheckpointAttempt = System.nanoTime() + checkpointBackoffMs * 1_000_000L;
    }

    /** A checkpoint duckguard did not drive (app SQL CHECKPOINT, ...). Keep the chain restorable: new base now. */
    private void handleForeignCheckpoint() throws Exception {
        Log.warn(name + ": the database was checkpointed by someone else (app CHECKPOINT?); taking a new base");
        if (!gate.close(GATE_TIMEOUT_MS)) return; // the checkpointing call is still running; look again soon
        try {
            closeEpoch();
        } finally {
            gate.open();
        }
        newBase("foreign checkpoint");
    }

    /** Ship the rest of the old WAL (still readable through our channel) and close this epoch. */
    private void closeEpoch() throws Exception {
        if (wal != null && writer != null) {
            if (Objects.equals(HeldFiles.keyOf(walPath), wal.key())) {
                throw new IOException("after a checkpoint the WAL " + walPath + " is still the old file");
            }
            ship();
        }
        closedWalEnd = writer != null ? writer.walEnd() : -1;
        if (writer != null) writer.close();
        writer = null;
        HeldFiles.releaseIfUnlinked(walPath, wal);
        wal = null;
        clock.reset();
        epoch++;
        publish(null, 0);
    }

    // ------------------------------------------------------------------ health

    /**
     * The reason an operator reads in the log and in JMX. A full backup volume says so, where, and what the commits
     * do until there is space again (the shipper retries every second and clears the alarm by itself).
     */
    private String failure(String what, Throwable t) {
        if (!io.duckguard.runtime.util.AtomicFiles.isDiskFull(t)) return what + ": " + t.getMessage();
        String commits = cfg.mode != AgentConfig.Mode.SYNC ? "commits go on; they are shipped once there is space"
                : cfg.syncFailure == AgentConfig.SyncFailure.WAIT ? "commits wait until then (sync-failure=wait)"
                : "commits return without waiting until then (sync-failure=degrade)";
        return what + ": the backup volume is full (No space left on device writing to " + cfg.repository
                + "). Free space there; duckguard retries every second; " + commits;
    }

    private void raise(String reason, Throwable t) {
        agentErrors.incrementAndGet();
        if (!reason.equals(alarm)) Log.error(name + ": " + reason, t);
        alarm = reason;
        synchronized (durableSignal) {
            durableSignal.notifyAll();
        }
    }

    private void clearAlarm() {
        if (alarm != null) Log.info(name + ": healthy again");
        alarm = null;
    }

    private volatile long repoBytes = -1;
    private volatile long repoBytesAt;

    /** Walking the repository is not free: at most every 10 s. */
    private long repositoryBytes() {
        long now = System.nanoTime();
        if (repoBytes < 0 || now - repoBytesAt > 10_000_000_000L) {
            repoBytes = history.repository().sizeBytes();
            repoBytesAt = now;
        }
        return repoBytes;
    }

    /** A consistent view for JMX; computed on demand from any thread. */
    DatabaseStatusView status() {
        ShipState st = state;
        long walLen = walFile.length();
        boolean sameFile = st.walKey() != null && Objects.equals(HeldFiles.keyOf(walPath), st.walKey());
        long unshipped = sameFile ? Math.max(0, walLen - st.coveredTo()) : walLen;
        long since = clock.oldestPendingSince(sameFile ? st.coveredTo() : 0);
        long lag = unshipped > 0 && since > 0 ? System.currentTimeMillis() - since : 0;
        Histogram h;
        synchronized (syncWaitMicros) {
            syncWaitInterval = syncWaitMicros.getIntervalHistogram(syncWaitInterval);
            h = syncWaitInterval;
        }
        double[] stall = new double[3];
        synchronized (gateStallMicros) {
            if (gateStallMicros.getTotalCount() > 0) {
                stall[0] = gateStallMicros.getValueAtPercentile(50) / 1000.0;
                stall[1] = gateStallMicros.getValueAtPercentile(99) / 1000.0;
                stall[2] = gateStallMicros.getMaxValue() / 1000.0;
            }
        }
        return new DatabaseStatusView(name, dbPath.toString(), alarm == null, alarm == null ? "ok" : alarm,
                cfg.mode.name().toLowerCase(), lag, unshipped, lastShippedCommitTime,
                repositoryBytes(), agentErrors.get(), st.epoch(), commitsShipped.get(),
                syncTimeouts.get(), lastSnapshotTime, snapshotCount, checkpointCount,
                h.getTotalCount() == 0 ? 0 : h.getValueAtPercentile(99) / 1000.0, stall[0], stall[1], stall[2]);
    }
}
