package io.duckguard.it.host;

import java.io.IOException;
import java.io.PrintStream;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;
import org.duckdb.DuckDBAppender;
import org.duckdb.DuckDBConnection;

/**
 * The host under test: a small order/fill/position store that uses DuckDB through JDBC the way real trading
 * systems do, with every write path the driver has (autocommit statements, explicit transactions with commit and
 * rollback, executeBatch, the Appender, updates, deletes, DDL, its own CHECKPOINTs, one transaction larger than a
 * row group). It knows nothing of duckguard.
 *
 * <p>Every transaction gets a unique id that is stored in the rows it writes (see {@link Schema}); after DuckDB
 * acknowledges it, a line goes to the fsynced {@link AckLog}. {@link ReferenceState} later checks a (restored)
 * database against that log.
 *
 * <p>Output protocol (stdout, one line each): {@code READY}, {@code PROGRESS ...} every second,
 * {@code BIG_TXN txn=<id> rows=<n> ms=<t>}, {@code DDL <op> txn=<id>}, {@code CHECKPOINT n=<k> ok|failed ...},
 * {@code SUMMARY ...}, {@code LATENCY ...} and finally {@code DONE <acked>}; {@code FATAL ...} and exit code 2 on
 * an unexpected error. With {@code --threads 1 --txns N --seed S} two runs produce the same database.
 */
public final class TradingApp {

    /** Logical clock origin: timestamps are {@code EPOCH + txnId seconds}, never wall-clock time. */
    static final LocalDateTime EPOCH = LocalDateTime.of(2025, 1, 1, 0, 0);
    static final BigDecimal INITIAL_CASH = new BigDecimal("100000000.0000");
    /** Fill ids are {@code txnId * FILL_ID_STRIDE + i}: unique without a sequence (the Appender cannot call one). */
    static final long FILL_ID_STRIDE = 1_000_000L;
    /** An autocommit Appender flushes (= commits) on its own every 2048 rows; stay below to keep one commit. */
    static final int MAX_TICKS = 1000;
    private static final int MAX_CONSECUTIVE_FAILURES = 200;
    private static final int MAX_PRINTED_FAILURES = 50;

    /** Command line options; see {@link #USAGE}. */
    public record Options(Path db, Path ackLog, int threads, long seconds, long txns, long seed, int bigTxnRows,
                          long bigTxnAt, boolean ddl, long ddlAt, long checkpointEvery, int accounts,
                          long progressMillis, Path latencyOut) {

        static Options parse(String[] args) {
            Map<String, String> m = new LinkedHashMap<>();
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                if (!a.startsWith("--")) {
                    throw new IllegalArgumentException("unexpected argument: " + a);
                }
                a = a.substring(2);
                int eq = a.indexOf('=');
                if (eq >= 0) {
                    m.put(a.substring(0, eq), a.substring(eq + 1));
                } else if (i + 1 < args.length && !args[i + 1].startsWith("--")) {
                    m.put(a, args[++i]);
                } else {
                    m.put(a, "true");
                }
            }
            List<String> known = List.of("db", "ack-log", "threads", "seconds", "txns", "seed", "big-txn-rows",
                    "big-txn-at", "ddl", "ddl-at", "checkpoint-every", "accounts", "progress-ms", "latency-out");
            for (String k : m.keySet()) {
                if (!known.contains(k)) {
                    throw new IllegalArgumentException("unknown option --" + k);
                }
            }
            String db = m.get("db");
            if (db == null) {
                throw new IllegalArgumentException("--db is required");
            }
            Path dbPath = Path.of(db).toAbsolutePath();
            Path ack = Path.of(m.getOrDefault("ack-log", dbPath + ".acks")).toAbsolutePath();
            int threads = Integer.parseInt(m.getOrDefault("threads", "4"));
            long seconds = Long.parseLong(m.getOrDefault("seconds", "0"));
            long txns = Long.parseLong(m.getOrDefault("txns", "0"));
            long seed = Long.parseLong(m.getOrDefault("seed", "42"));
            int bigRows = Integer.parseInt(m.getOrDefault("big-txn-rows", "130000"));
            boolean ddl = Boolean.parseBoolean(m.getOrDefault("ddl", "false"));
            long every = Long.parseLong(m.getOrDefault("checkpoint-every", "0"));
            int accounts = Integer.parseInt(m.getOrDefault("accounts", "20"));
            long progress = Long.parseLong(m.getOrDefault("progress-ms", "1000"));
            Path latency = m.containsKey("latency-out") ? Path.of(m.get("latency-out")).toAbsolutePath() : null;
            if (threads < 1 || accounts < 1 || bigRows < 0 || seconds < 0 || txns < 0 || every < 0) {
                throw new IllegalArgumentException("negative or zero value where a positive one is needed");
            }
            // Trigger points of the one-off operations: derived from the seed so a rerun puts them at the same
            // op number. Counted in ops (txn ids handed out), so they happen early in a --seconds run too.
            Random r = new Random(seed ^ 0x5DEECE66DL);
            long span = txns > 0 ? txns : 1000;
            long q = Math.max(1, span / 8);
            long ddlAt = m.containsKey("ddl-at") ? Long.parseLong(m.get("ddl-at")) : q + r.nextInt((int) Math.min(q, 1 << 20));
            long bigAt = m.containsKey("big-txn-at") ? Long.parseLong(m.get("big-txn-at"))
                    : 2 * q + r.nextInt((int) Math.min(2 * q, 1 << 20));
            return new Options(dbPath, ack, threads, seconds, txns, seed, bigRows, bigAt, ddl, ddlAt, every,
                    accounts, progress, latency);
        }
    }

    static final String USAGE = "usage: TradingApp --db PATH [--ack-log PATH] [--threads N] [--seconds S | --txns N]"
            + " [--seed L] [--big-txn-rows N (0 = none)] [--big-txn-at K] [--ddl] [--ddl-at K]"
            + " [--checkpoint-every N] [--accounts N] [--progress-ms MS] [--latency-out FILE]";

    private final Options opts;
    private final String url;
    private final AtomicLong nextId = new AtomicLong();
    private final AtomicLong acked = new AtomicLong();
    private final AtomicLong failed = new AtomicLong();
    private final AtomicLong rolledBack = new AtomicLong();
    private final AtomicLong checkpoints = new AtomicLong();
    private final AtomicBoolean stopping = new AtomicBoolean();
    /**
     * DDL runs alone, as a schema migration would: every other op holds the read side for its whole transaction.
     * DuckDB 1.5.6 and 2.0.0.1 crash under an ALTER TABLE or CREATE INDEX that overlaps other write transactions
     * on the same table (seen: SIGSEGV in its ART key generation, and a FATAL "Failed to delete all rows from
     * index" in a later DELETE), in about one AttachTest run in three, with or without the agent loaded.
     */
    private final java.util.concurrent.locks.ReentrantReadWriteLock ddlLock =
            new java.util.concurrent.locks.ReentrantReadWriteLock();
    private final Recorder commitLatency = new Recorder(3);
    /** Set once the ALTER committed: order inserts then fill the new column (as a real app upgrade would). */
    private volatile boolean hasClientTag;
    // One-off ops: claimed by the thread whose op number reaches the trigger; released again if it fails.
    private final AtomicBoolean bigClaimed = new AtomicBoolean();
    private final AtomicBoolean alterClaimed = new AtomicBoolean();
    private final AtomicBoolean indexClaimed = new AtomicBoolean();
    private volatile boolean bigDone;
    private volatile boolean alterDone;
    private volatile boolean indexDone;
    private volatile Throwable fatal;
    private long opBase;
    private long deadlineNanos;
    private AckLog ackLog;

    TradingApp(Options opts) {
        this.opts = opts;
        this.url = "jdbc:duckdb:" + opts.db();
    }

    public static void main(String[] args) {
        Options o;
        try {
            o = Options.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.err.println(USAGE);
            System.exit(64);
            return;
        }
        int code;
        try {
            code = new TradingApp(o).run();
        } catch (Throwable t) {
            t.printStackTrace();
            say("FATAL " + t);
            code = 2;
        }
        System.exit(code);
    }

    int run() throws Exception {
        Files.createDirectories(opts.db().getParent());
        // The first connection stays open for the whole run: DuckDB keeps one database instance per path while
        // any connection is open, and closing the last one checkpoints. Writers open their own connections.
        try (Connection main = DriverManager.getConnection(url); AckLog log = AckLog.open(opts.ackLog())) {
            this.ackLog = log;
            long base = Math.max(AckLog.maxTxnId(opts.ackLog()), maxTxnIdInDb(main));
            if (!tableExists(main, "applied_txns")) {
                base = setup(main, base + 1);
            }
            hasClientTag = columnExists(main, "orders", Schema.DDL_COLUMN);
            opBase = base;
            nextId.set(base);
            if (opts.seconds() > 0) {
                deadlineNanos = System.nanoTime() + TimeUnit.SECONDS.toNanos(opts.seconds());
            }
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < opts.threads(); t++) {
                Writer w = new Writer(t);
                Thread th = new Thread(w, "writer-" + t);
                threads.add(th);
                th.start();
            }
            say("READY");
            Thread progress = new Thread(this::progressLoop, "progress");
            progress.setDaemon(true);
            progress.start();
            for (Thread th : threads) {
                th.join();
            }
            stopping.set(true);
            if (fatal != null) {
                fatal.printStackTrace();
                say("FATAL " + fatal);
                return 2;
            }
        }
        Histogram h = commitLatency.getIntervalHistogram();
        say("SUMMARY acked=" + acked.get() + " failed=" + failed.get() + " rolledback=" + rolledBack.get()
                + " checkpoints=" + checkpoints.get() + " big_txn=" + bigDone + " ddl=" + (alterDone && indexDone));
        say(String.format("LATENCY commit_us count=%d p50=%d p90=%d p99=%d p999=%d max=%d", h.getTotalCount(),
                h.getValueAtPercentile(50), h.getValueAtPercentile(90), h.getValueAtPercentile(99),
                h.getValueAtPercentile(99.9), h.getMaxValue()));
        if (opts.latencyOut() != null) {
            try (PrintStream ps = new PrintStream(Files.newOutputStream(opts.latencyOut()), true, "UTF-8")) {
                h.outputPercentileDistribution(ps, 1.0);
            }
        }
        say("DONE " + acked.get());
        return 0;
    }

    /** Creates the schema and the initial balances in one transaction (txn {@code id}); returns {@code id}. */
    private long setup(Connection c, long id) throws SQLException, IOException {
        c.setAutoCommit(false);
        try (Statement s = c.createStatement()) {
            for (String ddl : Schema.CREATE) {
                s.execute(ddl);
            }
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO balances VALUES (?, ?, ?)")) {
                for (int a = 0; a < opts.accounts(); a++) {
                    ps.setInt(1, a);
                    ps.setLong(2, id);
                    ps.setBigDecimal(3, INITIAL_CASH);
                    ps.executeUpdate();
                }
            }
            insertApplied(c, id, Op.SETUP, -1, opts.accounts());
            c.commit();
        } catch (SQLException e) {
            c.rollback();
            throw e;
        } finally {
            c.setAutoCommit(true);
        }
        ackLog.append(id, Op.SETUP, "rows=" + opts.accounts());
        return id;
    }

    private static long maxTxnIdInDb(Connection c) throws SQLException {
        if (!tableExists(c, "applied_txns")) {
            return 0;
        }
        StringBuilder q = new StringBuilder("SELECT max(m) FROM (SELECT max(txn_id) AS m FROM applied_txns");
        for (String t : Schema.DATA_TABLES) {
            q.append(" UNION ALL SELECT max(txn_id) FROM ").append(t);
        }
        q.append(")");
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(q.toString())) {
            rs.next();
            return rs.getLong(1);
        }
    }

    static boolean tableExists(Connection c, String table) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(
                "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND table_name = ?")) {
            ps.setString(1, table);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getLong(1) > 0;
            }
        }
    }

    private static boolean columnExists(Connection c, String table, String column) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM duckdb_columns() WHERE database_name ="
                + " current_database() AND table_name = ? AND column_name = ?")) {
            ps.setString(1, table);
            ps.setString(2, column);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getLong(1) > 0;
            }
        }
    }

    private static void insertApplied(Connection c, long id, Op op, int thread, long rows) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO applied_txns VALUES (?, ?, ?, ?, ?)")) {
            ps.setLong(1, id);
            ps.setString(2, op.logName());
            ps.setInt(3, thread);
            ps.setLong(4, rows);
            ps.setObject(5, ts(id));
            ps.executeUpdate();
        }
    }

    static LocalDateTime ts(long txnId) {
        return EPOCH.plusSeconds(txnId);
    }

    private void progressLoop() {
        while (!stopping.get()) {
            try {
                Thread.sleep(Math.max(50, opts.progressMillis()));
            } catch (InterruptedException e) {
                return;
            }
            say("PROGRESS acked=" + acked.get() + " failed=" + failed.get() + " rolledback=" + rolledBack.get());
        }
    }

    static void say(String line) {
        synchronized (System.out) {
            System.out.println(line);
            System.out.flush();
        }
    }

    /**
     * What one transaction wrote: its row count so far, and per (table, earlier txn) how many rows it overwrote
     * or deleted. {@link #finish} turns the latter into {@code superseded} rows and writes the marker.
     */
    private static final class Work {
        final long id;
        long rows;
        final Map<String, TreeMap<Long, Long>> superseded = new TreeMap<>();

        Work(long id) {
            this.id = id;
        }

        void wrote(long n) {
            rows += n;
        }

        void supersede(String table, long oldTxn, long n) {
            superseded.computeIfAbsent(table, k -> new TreeMap<>()).merge(oldTxn, n, Long::sum);
        }
    }

    /** One writer thread: its own connection, its own seeded Random, its own slice of the accounts. */
    private final class Writer implements Runnable {
        final int index;
        final Random rnd;
        Connection conn;
        int consecutiveFailures;
        int printedFailures;

        Writer(int index) {
            this.index = index;
            this.rnd = new Random(opts.seed() * 1_000_003L + index);
        }

        @Override
        public void run() {
            try {
                conn = DriverManager.getConnection(url);
                while (!stopping.get() && fatal == null) {
                    long id = nextId.incrementAndGet();
                    long n = id - opBase;
                    if ((opts.txns() > 0 && n > opts.txns()) || (opts.seconds() > 0 && System.nanoTime() - deadlineNanos > 0)) {
                        break;
                    }
                    Op op = pick(n);
                    java.util.concurrent.locks.Lock lock = op == Op.DDL_ALTER || op == Op.DDL_INDEX
                            ? ddlLock.writeLock() : ddlLock.readLock();
                    lock.lock();
                    try {
                        runOp(op, id);
                        consecutiveFailures = 0;
                        markDone(op);
                    } catch (SQLException e) {
                        release(op);
                        failed.incrementAndGet();
                        if (printedFailures++ < MAX_PRINTED_FAILURES) {
                            say("FAILED txn=" + id + " op=" + op.logName() + " " + firstLine(e.getMessage()));
                        }
                        recoverConnection();
                        if (++consecutiveFailures > MAX_CONSECUTIVE_FAILURES) {
                            throw new IllegalStateException(consecutiveFailures + " failures in a row", e);
                        }
                    } finally {
                        lock.unlock();
                    }
                    if (opts.checkpointEvery() > 0 && n % opts.checkpointEvery() == 0) {
                        checkpoint(n);
                    }
                }
            } catch (Throwable t) {
                fatal = t;
                stopping.set(true);
            } finally {
                closeQuietly(conn);
            }
        }

        /** The op for op number {@code n}: a pending one-off op if its trigger is reached, else the mix. */
        Op pick(long n) {
            int dice = rnd.nextInt(100); // always drawn, so one-off ops don't shift the random stream
            if (opts.ddl() && !alterDone && n >= opts.ddlAt() && alterClaimed.compareAndSet(false, true)) {
                return Op.DDL_ALTER;
            }
            if (opts.ddl() && alterDone && !indexDone && n >= opts.ddlAt() + Math.max(1, opts.ddlAt() / 2)
                    && indexClaimed.compareAndSet(false, true)) {
                return Op.DDL_INDEX;
            }
            if (opts.bigTxnRows() > 0 && !bigDone && n >= opts.bigTxnAt() && bigClaimed.compareAndSet(false, true)) {
                return Op.BIG_TXN;
            }
            if (dice < 18) {
                return Op.NEW_ORDER;
            } else if (dice < 28) {
                return Op.ORDER_BATCH;
            } else if (dice < 38) {
                return Op.TICKS;
            } else if (dice < 63) {
                return Op.TRADE;
            } else if (dice < 71) {
                return Op.FILLS_APPEND;
            } else if (dice < 81) {
                return Op.CANCEL;
            } else if (dice < 88) {
                return Op.PURGE;
            } else if (dice < 95) {
                return Op.BATCH_TXN;
            }
            return Op.ROLLBACK;
        }

        void markDone(Op op) {
            switch (op) {
                case BIG_TXN -> bigDone = true;
                case DDL_ALTER -> {
                    hasClientTag = true;
                    alterDone = true;
                }
                case DDL_INDEX -> indexDone = true;
                default -> { }
            }
        }

        /** A failed one-off op is tried again by the next op that gets there. */
        void release(Op op) {
            switch (op) {
                case BIG_TXN -> bigClaimed.set(false);
                case DDL_ALTER -> alterClaimed.set(false);
                case DDL_INDEX -> indexClaimed.set(false);
                default -> { }
            }
        }

        void runOp(Op op, long id) throws SQLException, IOException {
            switch (op) {
                case NEW_ORDER -> newOrder(id);
                case ORDER_BATCH -> orderBatch(id);
                case TICKS -> ticks(id);
                case ROLLBACK -> rollbackTxn(id);
                default -> explicitTxn(op, id);
            }
        }

        int account() {
            int perThread = (opts.accounts() + opts.threads() - 1) / opts.threads();
            return (index + opts.threads() * rnd.nextInt(Math.max(1, perThread))) % opts.accounts();
        }

        String symbol() {
            return Schema.SYMBOLS.get(rnd.nextInt(Schema.SYMBOLS.size()));
        }

        BigDecimal price() {
            return BigDecimal.valueOf(1000 + rnd.nextInt(99_000), 2).setScale(4, RoundingMode.UNNECESSARY);
        }

        // ---- autocommit operations: one statement / one batch / one appender flush is the whole transaction

        void newOrder(long id) throws SQLException, IOException {
            boolean tag = hasClientTag;
            try (PreparedStatement ps = conn.prepareStatement(insertOrderSql(tag, false))) {
                bindOrder(ps, tag, id, account(), symbol(), rnd.nextBoolean() ? "BUY" : "SELL", 1 + rnd.nextInt(500),
                        price(), "open");
                long t0 = System.nanoTime();
                ps.executeUpdate();
                acknowledge(id, Op.NEW_ORDER, 1, t0);
            }
        }

        void orderBatch(long id) throws SQLException, IOException {
            int k = 2 + rnd.nextInt(19);
            boolean tag = hasClientTag;
            try (PreparedStatement ps = conn.prepareStatement(insertOrderSql(tag, false))) {
                for (int i = 0; i < k; i++) {
                    bindOrder(ps, tag, id, account(), symbol(), rnd.nextBoolean() ? "BUY" : "SELL", 1 + rnd.nextInt(500),
                            price(), "open");
                    ps.addBatch();
                }
                long t0 = System.nanoTime();
                ps.executeBatch();
                acknowledge(id, Op.ORDER_BATCH, k, t0);
            }
        }

        void ticks(long id) throws SQLException, IOException {
            int k = 50 + rnd.nextInt(MAX_TICKS - 49);
            String[] sym = new String[k];
            double[] bid = new double[k];
            for (int i = 0; i < k; i++) {
                sym[i] = symbol();
                bid[i] = 10 + rnd.nextInt(100_000) / 100.0;
            }
            DuckDBAppender ap = conn.unwrap(DuckDBConnection.class).createAppender("main", "ticks");
            long t0;
            try {
                for (int i = 0; i < k; i++) {
                    ap.beginRow().append(id).append(i).append(k).append(sym[i]).append(bid[i]).append(bid[i] + 0.01)
                            .append(ts(id)).endRow();
                }
            } catch (SQLException | RuntimeException e) {
                // close() would flush the rows appended so far as a committed partial batch: never acknowledge
                // that, and stop, because the verification's premise (one batch = one commit) no longer holds.
                throw new IllegalStateException("appender failed mid-batch, txn " + id, e);
            } finally {
                t0 = System.nanoTime();
                ap.close(); // autocommit: this flush is the commit
            }
            acknowledge(id, Op.TICKS, k, t0);
        }

        /** An explicit transaction that always ends in rollback(): logged so tests can check it never appears. */
        void rollbackTxn(long id) throws SQLException, IOException {
            int account = account();
            conn.setAutoCommit(false);
            Work w = new Work(id);
            try {
                // No nextval() here: a rolled-back nextval still advances the sequence in memory but never
                // reaches the WAL, which would make a replayed copy differ from the live instance.
                int k = 2 + rnd.nextInt(4);
                for (int i = 0; i < k; i++) {
                    insertFill(id, i, -1, account, symbol(), "BUY", 1 + rnd.nextInt(100), price());
                    w.wrote(1);
                }
                updateBalance(w, account, BigDecimal.ONE);
                finish(w, Op.ROLLBACK);
                conn.rollback();
            } catch (SQLException e) {
                rollbackQuietly();
                throw e;
            } finally {
                endTxn();
            }
            rolledBack.incrementAndGet();
            ackLog.append(id, Op.ROLLBACK, "rows=" + w.rows + " thread=" + index);
        }

        // ---- explicit transactions: business rows + superseded rows + the applied_txns marker, one commit

        void explicitTxn(Op op, long id) throws SQLException, IOException {
            Work w = new Work(id);
            conn.setAutoCommit(false);
            long bigStart = System.nanoTime();
            try {
                switch (op) {
                    case TRADE -> trade(w);
                    case FILLS_APPEND -> fillsAppend(w);
                    case CANCEL -> cancel(w);
                    case PURGE -> purge(w);
                    case BATCH_TXN -> batchTxn(w);
                    case BIG_TXN -> bigTxn(w);
                    case DDL_ALTER -> ddl(w, "ALTER TABLE orders ADD COLUMN IF NOT EXISTS " + Schema.DDL_COLUMN
                            + " VARCHAR DEFAULT 'none'");
                    case DDL_INDEX -> ddl(w, "CREATE INDEX IF NOT EXISTS " + Schema.DDL_INDEX + " ON orders(symbol)");
                    default -> throw new IllegalArgumentException(op.name());
                }
                finish(w, op);
                long t0 = System.nanoTime();
                conn.commit();
                acknowledge(id, op, w.rows, t0);
            } catch (SQLException e) {
                rollbackQuietly();
                throw e;
            } finally {
                endTxn();
            }
            if (op == Op.BIG_TXN) {
                say("BIG_TXN txn=" + id + " rows=" + w.rows + " ms="
                        + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - bigStart));
            } else if (op == Op.DDL_ALTER || op == Op.DDL_INDEX) {
                say("DDL " + op.logName() + " txn=" + id);
            }
        }

        void trade(Work w) throws SQLException {
            int account = account();
            long orderId = -1;
            long oldTxn = 0;
            String symbol = null;
            String side = null;
            int qty = 0;
            BigDecimal price = null;
            try (PreparedStatement ps = conn.prepareStatement("SELECT order_id, txn_id, symbol, side, qty, price"
                    + " FROM orders WHERE account = ? AND status = 'open' ORDER BY order_id LIMIT 1")) {
                ps.setInt(1, account);
                try (ResultSet rs = ps.executeQuery()) {
                    if (rs.next()) {
                        orderId = rs.getLong(1);
                        oldTxn = rs.getLong(2);
                        symbol = rs.getString(3);
                        side = rs.getString(4);
                        qty = rs.getInt(5);
                        price = rs.getBigDecimal(6).setScale(4, RoundingMode.UNNECESSARY);
                    }
                }
            }
            if (orderId >= 0) {
                try (PreparedStatement ps = conn.prepareStatement("UPDATE orders SET status = 'filled',"
                        + " filled_qty = qty, txn_id = ?, updated_ts = ? WHERE order_id = ?")) {
                    ps.setLong(1, w.id);
                    ps.setObject(2, ts(w.id));
                    ps.setLong(3, orderId);
                    expectOne(ps.executeUpdate(), "update order " + orderId);
                }
                w.wrote(1);
                w.supersede("orders", oldTxn, 1);
            } else {
                // Nothing open for this account: a marketable order that fills at once.
                symbol = symbol();
                side = rnd.nextBoolean() ? "BUY" : "SELL";
                qty = 1 + rnd.nextInt(500);
                price = price();
                orderId = insertOrderReturningId(w.id, account, symbol, side, qty, price, "filled");
                w.wrote(1);
            }
            int nFills = 1 + rnd.nextInt(3);
            int left = qty;
            for (int i = 0; i < nFills; i++) {
                int q = i == nFills - 1 ? left : Math.min(left, Math.max(1, left / 2));
                if (q <= 0) {
                    break;
                }
                insertFill(w.id, i, orderId, account, symbol, side, q, price);
                w.wrote(1);
                left -= q;
            }
            long signedQty = "BUY".equals(side) ? qty : -qty;
            BigDecimal notional = price.multiply(BigDecimal.valueOf(signedQty));
            upsertPosition(w, account, symbol, signedQty, notional);
            updateBalance(w, account, notional.negate());
        }

        void fillsAppend(Work w) throws SQLException {
            int account = account();
            String symbol = symbol();
            String side = rnd.nextBoolean() ? "BUY" : "SELL";
            BigDecimal price = price();
            int k = 10 + rnd.nextInt(491);
            // The INSERT runs first so the driver has issued BEGIN: the Appender then writes inside this
            // transaction instead of committing on its own.
            long orderId = insertOrderReturningId(w.id, account, symbol, side, k, price, "filled");
            w.wrote(1);
            DuckDBAppender ap = conn.unwrap(DuckDBConnection.class).createAppender("main", "fills");
            try {
                for (int i = 0; i < k; i++) {
                    appendFill(ap, w.id, i, orderId, account, symbol, side, 1, price);
                }
                ap.flush();
            } finally {
                ap.close();
            }
            w.wrote(k);
            updateBalance(w, account, price.multiply(BigDecimal.valueOf("BUY".equals(side) ? -k : k)));
        }

        void bigTxn(Work w) throws SQLException {
            int account = account();
            String symbol = symbol();
            BigDecimal price = price();
            int k = opts.bigTxnRows();
            long orderId = insertOrderReturningId(w.id, account, symbol, "BUY", k, price, "filled");
            w.wrote(1);
            // More than one row group (122,880 rows) in one transaction: without enable_optimistic_write=false
            // DuckDB writes these row groups straight into the database file.
            DuckDBAppender ap = conn.unwrap(DuckDBConnection.class).createAppender("main", "fills");
            try {
                for (int i = 0; i < k; i++) {
                    appendFill(ap, w.id, i, orderId, account, symbol, "BUY", 1, price);
                }
            } finally {
                ap.close();
            }
            w.wrote(k);
        }

        void cancel(Work w) throws SQLException {
            int account = account();
            int k = 1 + rnd.nextInt(3);
            Map<Long, Long> victims = selectOrders(account, "open", k, "DESC");
            try (PreparedStatement ps = conn.prepareStatement("UPDATE orders SET status = 'cancelled', txn_id = ?,"
                    + " updated_ts = ? WHERE order_id = ?")) {
                for (Map.Entry<Long, Long> v : victims.entrySet()) {
                    ps.setLong(1, w.id);
                    ps.setObject(2, ts(w.id));
                    ps.setLong(3, v.getKey());
                    expectOne(ps.executeUpdate(), "cancel order " + v.getKey());
                    w.wrote(1);
                    w.supersede("orders", v.getValue(), 1);
                }
            }
        }

        void purge(Work w) throws SQLException {
            int account = account();
            int k = 1 + rnd.nextInt(8);
            Map<Long, Long> victims = selectOrders(account, "cancelled", k, "ASC");
            try (PreparedStatement ps = conn.prepareStatement("DELETE FROM orders WHERE order_id = ?")) {
                for (Map.Entry<Long, Long> v : victims.entrySet()) {
                    ps.setLong(1, v.getKey());
                    expectOne(ps.executeUpdate(), "delete order " + v.getKey());
                    w.supersede("orders", v.getValue(), 1);
                }
            }
        }

        void batchTxn(Work w) throws SQLException {
            int k = 5 + rnd.nextInt(36);
            boolean tag = hasClientTag;
            try (PreparedStatement ps = conn.prepareStatement(insertOrderSql(tag, false))) {
                for (int i = 0; i < k; i++) {
                    bindOrder(ps, tag, w.id, account(), symbol(), rnd.nextBoolean() ? "BUY" : "SELL", 1 + rnd.nextInt(500),
                            price(), "open");
                    ps.addBatch();
                }
                ps.executeBatch();
            }
            w.wrote(k);
        }

        void ddl(Work w, String sql) throws SQLException {
            try (Statement s = conn.createStatement()) {
                s.execute(sql);
            }
        }

        /** order_id -> txn_id of up to {@code k} orders of one account in one status. */
        Map<Long, Long> selectOrders(int account, String status, int k, String dir) throws SQLException {
            Map<Long, Long> out = new LinkedHashMap<>();
            try (PreparedStatement ps = conn.prepareStatement("SELECT order_id, txn_id FROM orders WHERE account = ?"
                    + " AND status = ? ORDER BY order_id " + dir + " LIMIT ?")) {
                ps.setInt(1, account);
                ps.setString(2, status);
                ps.setInt(3, k);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        out.put(rs.getLong(1), rs.getLong(2));
                    }
                }
            }
            return out;
        }

        void upsertPosition(Work w, int account, String symbol, long dQty, BigDecimal dCost) throws SQLException {
            Long oldTxn = null;
            long qty = 0;
            BigDecimal cost = BigDecimal.ZERO.setScale(4);
            try (PreparedStatement ps = conn.prepareStatement(
                    "SELECT txn_id, qty, cost FROM positions WHERE account = ? AND symbol = ?")) {
                ps.setInt(1, account);
                ps.setString(2, symbol);
                try (ResultSet rs = ps.executeQuery()) {
                    if (rs.next()) {
                        oldTxn = rs.getLong(1);
                        qty = rs.getLong(2);
                        cost = rs.getBigDecimal(3);
                    }
                }
            }
            String sql = oldTxn == null ? "INSERT INTO positions(txn_id, qty, cost, account, symbol) VALUES (?, ?, ?, ?, ?)"
                    : "UPDATE positions SET txn_id = ?, qty = ?, cost = ? WHERE account = ? AND symbol = ?";
            try (PreparedStatement ps = conn.prepareStatement(sql)) {
                ps.setLong(1, w.id);
                ps.setLong(2, qty + dQty);
                ps.setBigDecimal(3, cost.add(dCost).setScale(4, RoundingMode.HALF_EVEN));
                ps.setInt(4, account);
                ps.setString(5, symbol);
                expectOne(ps.executeUpdate(), "position " + account + "/" + symbol);
            }
            w.wrote(1);
            if (oldTxn != null) {
                w.supersede("positions", oldTxn, 1);
            }
        }

        void updateBalance(Work w, int account, BigDecimal delta) throws SQLException {
            long oldTxn;
            BigDecimal cash;
            try (PreparedStatement ps = conn.prepareStatement("SELECT txn_id, cash FROM balances WHERE account = ?")) {
                ps.setInt(1, account);
                try (ResultSet rs = ps.executeQuery()) {
                    if (!rs.next()) {
                        throw new SQLException("no balance row for account " + account);
                    }
                    oldTxn = rs.getLong(1);
                    cash = rs.getBigDecimal(2);
                }
            }
            try (PreparedStatement ps = conn.prepareStatement(
                    "UPDATE balances SET txn_id = ?, cash = ? WHERE account = ?")) {
                ps.setLong(1, w.id);
                ps.setBigDecimal(2, cash.add(delta).setScale(4, RoundingMode.HALF_EVEN));
                ps.setInt(3, account);
                expectOne(ps.executeUpdate(), "balance " + account);
            }
            w.wrote(1);
            w.supersede("balances", oldTxn, 1);
        }

        /** Writes the superseded rows and the applied_txns marker (both inside the open transaction). */
        void finish(Work w, Op op) throws SQLException {
            if (!w.superseded.isEmpty()) {
                try (PreparedStatement ps = conn.prepareStatement("INSERT INTO superseded VALUES (?, ?, ?, ?)")) {
                    for (Map.Entry<String, TreeMap<Long, Long>> t : w.superseded.entrySet()) {
                        for (Map.Entry<Long, Long> e : t.getValue().entrySet()) {
                            ps.setLong(1, w.id);
                            ps.setLong(2, e.getKey());
                            ps.setString(3, t.getKey());
                            ps.setLong(4, e.getValue());
                            ps.executeUpdate();
                            w.wrote(1);
                        }
                    }
                }
            }
            insertApplied(conn, w.id, op, index, w.rows);
        }

        String insertOrderSql(boolean tag, boolean returning) {
            return "INSERT INTO orders(order_id, txn_id, account, symbol, side, qty, price, status, filled_qty,"
                    + " created_ts, updated_ts" + (tag ? ", " + Schema.DDL_COLUMN : "") + ") VALUES (nextval('"
                    + Schema.SEQUENCE + "'), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
                    + (tag ? ", ?" : "") + ")" + (returning ? " RETURNING order_id" : "");
        }

        void bindOrder(PreparedStatement ps, boolean tag, long id, int account, String symbol, String side, int qty,
                       BigDecimal price, String status) throws SQLException {
            ps.setLong(1, id);
            ps.setInt(2, account);
            ps.setString(3, symbol);
            ps.setString(4, side);
            ps.setInt(5, qty);
            ps.setBigDecimal(6, price);
            ps.setString(7, status);
            ps.setInt(8, "filled".equals(status) ? qty : 0);
            ps.setObject(9, ts(id));
            ps.setObject(10, ts(id));
            if (tag) {
                ps.setString(11, "acct-" + account);
            }
        }

        long insertOrderReturningId(long id, int account, String symbol, String side, int qty, BigDecimal price,
                                    String status) throws SQLException {
            boolean tag = hasClientTag;
            try (PreparedStatement ps = conn.prepareStatement(insertOrderSql(tag, true))) {
                bindOrder(ps, tag, id, account, symbol, side, qty, price, status);
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    return rs.getLong(1);
                }
            }
        }

        void insertFill(long id, int i, long orderId, int account, String symbol, String side, int qty,
                        BigDecimal price) throws SQLException {
            try (PreparedStatement ps = conn.prepareStatement(
                    "INSERT INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")) {
                ps.setLong(1, id * FILL_ID_STRIDE + i);
                ps.setLong(2, id);
                ps.setLong(3, orderId);
                ps.setInt(4, account);
                ps.setString(5, symbol);
                ps.setString(6, side);
                ps.setInt(7, qty);
                ps.setBigDecimal(8, price);
                ps.setObject(9, ts(id));
                ps.executeUpdate();
            }
        }

        void appendFill(DuckDBAppender ap, long id, int i, long orderId, int account, String symbol, String side,
                        int qty, BigDecimal price) throws SQLException {
            ap.beginRow().append(id * FILL_ID_STRIDE + i).append(id).append(orderId).append(account).append(symbol)
                    .append(side).append(qty).append(price).append(ts(id)).endRow();
        }

        /** Called right after the committing call returned: fsync the ack line, then count it. */
        void acknowledge(long id, Op op, long rows, long commitStartNanos) throws IOException {
            commitLatency.recordValue(Math.max(0, (System.nanoTime() - commitStartNanos) / 1000));
            ackLog.append(id, op, "rows=" + rows + " thread=" + index);
            acked.incrementAndGet();
        }

        private int checkpointAttempts;

        void checkpoint(long n) {
            try (Statement s = conn.createStatement()) {
                // Both kinds an app may issue: FORCE CHECKPOINT waits for (and blocks) other transactions.
                s.execute(checkpointAttempts++ % 2 == 0 ? "CHECKPOINT" : "FORCE CHECKPOINT");
                checkpoints.incrementAndGet();
                say("CHECKPOINT n=" + n + " ok");
            } catch (SQLException e) {
                // Expected now and then with several writers ("other write transactions active").
                say("CHECKPOINT n=" + n + " failed " + firstLine(e.getMessage()));
            }
        }

        /** Back to autocommit; a connection that cannot get there is dropped rather than risked. */
        void endTxn() {
            if (conn == null) {
                return;
            }
            try {
                conn.setAutoCommit(true);
            } catch (SQLException e) {
                closeQuietly(conn);
                conn = null;
            }
        }

        void rollbackQuietly() {
            try {
                conn.rollback();
            } catch (SQLException e) {
                // recoverConnection() replaces the connection; never let setAutoCommit(true) commit a broken txn.
                closeQuietly(conn);
                conn = null;
            }
        }

        /** After a failure, make sure the connection is usable and has no transaction open. */
        void recoverConnection() throws SQLException {
            if (conn == null || conn.isClosed()) {
                conn = DriverManager.getConnection(url);
            }
        }
    }

    private static void expectOne(int n, String what) throws SQLException {
        if (n != 1) {
            throw new SQLException(what + ": expected 1 row, got " + n);
        }
    }

    private static void closeQuietly(Connection c) {
        if (c != null) {
            try {
                c.close();
            } catch (SQLException ignored) {
                // shutting down
            }
        }
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }
}
