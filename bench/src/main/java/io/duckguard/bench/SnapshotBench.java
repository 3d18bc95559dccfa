package io.duckguard.bench;

import static io.duckguard.bench.BenchEnvironment.cpuModel;
import static io.duckguard.bench.BenchEnvironment.fileStore;
import static io.duckguard.bench.BenchEnvironment.loadAverage;
import static io.duckguard.bench.BenchEnvironment.projectRoot;
import io.duckguard.it.harness.ChildJvm;
import io.duckguard.it.harness.WorkDirs;
import io.duckguard.runtime.capture.DatabaseRegistry;
import io.duckguard.runtime.capture.DatabaseStatusView;
import io.duckguard.runtime.config.AgentConfig;
import io.duckguard.runtime.crypto.MasterKey;
import io.duckguard.runtime.repository.BlockRef;
import io.duckguard.runtime.repository.Manifest;
import io.duckguard.runtime.repository.Repository;
import io.duckguard.runtime.repository.RepositoryOpener;
import io.duckguard.runtime.snapshot.Snapshotter;
import java.io.IOException;
import java.io.StringReader;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.sql.Timestamp;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.HdrHistogram.Histogram;

/**
 * Snapshot, restore and point-in-time-restore costs on a ~1 GB DuckDB file, next to the peers (cp + sync, restic,
 * borg with a fixed chunker, DuckDB EXPORT/IMPORT) on the same file, same machine, back to back.
 *
 * <pre>
 *   mvn -B -ntp -q -Pbench -DskipTests -pl bench -am verify -Dbench=snapshot
 * </pre>
 *
 * <p>Data (reused across invocations when the recorded spec and size still match): {@code snapshot-data/} under the
 * bench work dir holds {@code trades-base.duckdb} (a 70M-row {@code trades} table, CHECKPOINTed) and
 * {@code trades-1pct.duckdb} (a copy after UPDATE of ~1% random rows + 100k inserts + CHECKPOINT, as in
 * shared/measured-limits.md).
 *
 * <p>Phases ({@code bench.phases}, default all; comma list of snapshot, peers, export, pitr, stall):
 * <ol>
 *   <li>snapshot: in-process {@link Snapshotter} (after a warm-up full + incremental into a throwaway repository):
 *       full snapshot of the base into a fresh repository, then the 1%-changed file with {@code previous} = the full
 *       manifest into the same repository; then the CLI {@code restore} of that latest snapshot in a fresh JVM; then
 *       the CLI {@code snapshot} verb (fresh JVM: open, snapshot, checkpoint, snapshot) on a copy of the base.</li>
 *   <li>peers: cp + sync, restic backup/restore, borg create (fixed 256 KiB chunks)/extract.</li>
 *   <li>export: DuckDB EXPORT DATABASE (parquet) / IMPORT DATABASE ({@code bench.slow-runs}, default 1).</li>
 *   <li>pitr: the runtime protects a copy in-process (async mode, no checkpoint during the run), {@code
 *       bench.pitr-commits} small autocommit commits on 4 threads, then the CLI restore to {@code commit:E.n}.</li>
 *   <li>stall: small commits on 2 threads for {@code bench.stall-seconds}, without the agent (DuckDB's own
 *       auto-checkpoints at the default 16 MiB) and with the runtime (agent checkpoints at checkpoint.wal-size=16MB).</li>
 * </ol>
 * Writes {@code <bench.out.dir>/snapshot.md}. Aims are printed, never asserted.
 */
public final class SnapshotBench {
    static final String DB = "trades.duckdb";
    static final String GEN_VERSION = "gen-2";
    /** mut-2: the 1% change is one checkpoint, as under the agent (DuckDB's auto-checkpoint off). */
    static final String MUTATE_VERSION = "mut-2";
    static final int STALL_INSERT_ROWS = 500;

    record Settings(long rows, int runs, int slowRuns, int pitrCommits, int pitrThreads, int stallSeconds,
                    int stallThreads, Set<String> phases, Path outDir) {
        static Settings fromSystemProperties() {
            Set<String> ph = new HashSet<>(Arrays.asList(System.getProperty("bench.phases", "all")
                    .toLowerCase(Locale.ROOT).split("[,\\s]+")));
            Settings s = new Settings(Long.getLong("bench.rows", 70_000_000L), Integer.getInteger("bench.runs", 3),
                    Integer.getInteger("bench.slow-runs", 1), Integer.getInteger("bench.pitr-commits", 100_000),
                    4, Integer.getInteger("bench.stall-seconds", 40), 2, ph,
                    Path.of(System.getProperty("bench.out.dir", "target")).toAbsolutePath().normalize());
            if (s.rows < 100_000 || s.runs < 1 || s.slowRuns < 0 || s.pitrCommits < 100 || s.stallSeconds < 0) {
                throw new IllegalArgumentException("need bench.rows >= 100000, bench.runs >= 1, bench.slow-runs >= 0,"
                        + " bench.pitr-commits >= 100, bench.stall-seconds >= 0: " + s);
            }
            return s;
        }

        boolean on(String phase) {
            return phases.contains("all") || phases.contains(phase);
        }

        String command() {
            return "mvn -B -ntp -q -Pbench -DskipTests -pl bench -am verify -Dbench=snapshot -Dbench.runs=" + runs
                    + (rows != 70_000_000L ? " -Dbench.rows=" + rows : "")
                    + (slowRuns != 1 ? " -Dbench.slow-runs=" + slowRuns : "")
                    + (pitrCommits != 100_000 ? " -Dbench.pitr-commits=" + pitrCommits : "")
                    + (stallSeconds != 40 ? " -Dbench.stall-seconds=" + stallSeconds : "")
                    + (phases.contains("all") ? "" : " -Dbench.phases=" + String.join(",", phases));
        }
    }

    /** One measured quantity over several runs: seconds and (optionally) bytes per run. */
    static final class Measure {
        final String label;
        final List<Double> secs = new ArrayList<>();
        final List<Long> bytes = new ArrayList<>();
        String command = "";

        Measure(String label) {
            this.label = label;
        }

        boolean has() {
            return !secs.isEmpty();
        }

        double s() {
            return median(secs.stream().mapToDouble(Double::doubleValue).toArray());
        }

        double b() {
            return median(bytes.stream().mapToDouble(Long::doubleValue).toArray());
        }
    }

    /** A finished child process. */
    record Proc(int exit, double seconds, Path log, String command) {}

    private final Settings s;
    private final Path run;
    private final Path logs;
    private final Map<String, Measure> measures = new LinkedHashMap<>();
    private final List<String> notes = new ArrayList<>();
    private final List<String> failures = new ArrayList<>();
    private final List<String> loads = new ArrayList<>();
    private final AtomicInteger procSeq = new AtomicInteger();
    private final Path javaExe = Path.of(System.getProperty("java.home"), "bin", "java");

    private Path agentJar;
    private String agentId;
    private Path duckdbJar;
    private String duckdbVersion;
    private Path base;
    private Path mutated;
    private String baseSha;
    private String mutatedSha;
    private long updatedRows;
    private long insertedRows;
    private Path keyFile;
    private Path dataDir;
    private String blockStats = "";
    private final List<Path> dgRepos = new ArrayList<>();
    private final Map<String, String> pitr = new LinkedHashMap<>();
    private final List<String[]> stallRows = new ArrayList<>();

    private SnapshotBench(Settings s, Path run) throws IOException {
        this.s = s;
        this.run = run;
        this.logs = Files.createDirectories(run.resolve("logs"));
    }

    static int run(Settings s) throws Exception {
        // Other builds rewrite runtime/target and it-tests/target while this runs (minutes): load every class of
        // those class-path entries now, so that a jar replaced under this JVM cannot break a later phase.
        preload(Snapshotter.class, io.duckguard.bootstrap.DuckGuardHooks.class, ChildJvm.class);
        Path run = WorkDirs.create("snapshot");
        SnapshotBench b = new SnapshotBench(s, run);
        long t0 = System.nanoTime();
        b.load("start");
        try {
            b.prepare();
        } catch (Exception e) {
            b.failures.add("preparation failed: " + e);
            e.printStackTrace();
        }
        if (b.failures.isEmpty()) {
            if (s.on("snapshot")) {
                b.phase("in-process snapshots", b::phaseSnapshots);
                b.phase("CLI restore", b::phaseRestore);
                b.phase("CLI snapshot", b::phaseCliSnapshot);
            }
            if (s.on("peers") || s.on("snapshot")) b.phase("cp + sync", b::phaseCp);
            if (s.on("peers")) {
                b.phase("restic", b::phaseRestic);
                b.phase("borg", b::phaseBorg);
            }
            if (s.on("export") && s.slowRuns() > 0) b.phase("EXPORT/IMPORT", b::phaseExport);
            if (s.on("pitr")) b.phase("point-in-time restore", b::phasePitr);
            if (s.on("stall") && s.stallSeconds() > 0) b.phase("checkpoint stall", b::phaseStall);
        }
        b.load("end");
        String report = b.report((System.nanoTime() - t0) / 1e9);
        Files.createDirectories(s.outDir());
        Path md = s.outDir().resolve("snapshot.md");
        Files.writeString(md, report, StandardCharsets.UTF_8);
        System.out.println();
        System.out.print(report);
        say("[bench] written to " + md);
        b.cleanup();
        return b.failures.isEmpty() ? 0 : 1;
    }

    interface Phase {
        void run() throws Exception;
    }

    private void phase(String name, Phase p) {
        say("[bench] phase: " + name);
        long t0 = System.nanoTime();
        try {
            p.run();
        } catch (Exception | AssertionError e) {
            failures.add(name + ": " + e);
            System.err.println("[bench] phase " + name + " failed");
            e.printStackTrace();
        }
        load(name + String.format(Locale.ROOT, " (%.0f s)", (System.nanoTime() - t0) / 1e9));
    }

    private void load(String when) {
        loads.add(when + ": " + loadAverage());
    }

    private Measure m(String key, String label) {
        return measures.computeIfAbsent(key, k -> new Measure(label));
    }

    // ------------------------------------------------------------------ data

    private void prepare() throws Exception {
        Path jars = Files.createDirectories(run.resolve("jars"));
        Path agentSrc = ChildJvm.agentJar();
        if (!Files.isRegularFile(agentSrc)) {
            throw new IllegalStateException("agent jar not built: " + agentSrc + " (build it: mvn -q -pl"
                    + " hook,runtime,agent,it-tests install -DskipTests, or run the bench with -am)");
        }
        agentJar = Files.copy(agentSrc, jars.resolve(agentSrc.getFileName()));
        agentId = agentSrc + " (" + Files.size(agentJar) + " bytes, sha256 " + sha256(agentJar).substring(0, 12)
                + ", built " + Files.getLastModifiedTime(agentSrc) + "), copied once for all runs";
        Path duckdbSrc = ChildJvm.duckdbJar(System.getProperty("duckguard.duckdb.version", "1.5.6.0"));
        duckdbJar = Files.copy(duckdbSrc, jars.resolve(duckdbSrc.getFileName()));
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:"); Statement st = c.createStatement();
             ResultSet rs = st.executeQuery("SELECT library_version FROM pragma_version()")) {
            rs.next();
            duckdbVersion = rs.getString(1);
        }
        keyFile = run.resolve("duckguard.key");
        MasterKey.generate().store(keyFile);

        Path data = dataDir = Files.createDirectories(WorkDirs.root().resolve(
                s.rows() == 70_000_000L ? "snapshot-data" : "snapshot-data-" + s.rows()));
        base = data.resolve("trades-base.duckdb");
        mutated = data.resolve("trades-1pct.duckdb");
        String spec = GEN_VERSION + " rows=" + s.rows() + " duckdb=" + duckdbVersion;
        Path baseProps = data.resolve("trades-base.properties");
        Properties bp = props(baseProps);
        if (Files.isRegularFile(base) && spec.equals(bp.getProperty("spec"))
                && Long.toString(Files.size(base)).equals(bp.getProperty("size"))
                && Files.notExists(Path.of(base + ".wal"))) {
            say("[bench] reusing " + base + " (" + Files.size(base) + " bytes)");
        } else {
            Files.deleteIfExists(mutated);
            generate(base);
            Properties p = new Properties();
            p.setProperty("spec", spec);
            p.setProperty("size", Long.toString(Files.size(base)));
            storeProps(p, baseProps);
        }
        String mspec = spec + " base-size=" + Files.size(base) + " base-mtime=" + Files.getLastModifiedTime(base).toMillis()
                + " " + MUTATE_VERSION;
        Path mutProps = data.resolve("trades-1pct.properties");
        Properties mp = props(mutProps);
        if (Files.isRegularFile(mutated) && mspec.equals(mp.getProperty("spec"))
                && Long.toString(Files.size(mutated)).equals(mp.getProperty("size"))
                && Files.notExists(Path.of(mutated + ".wal"))) {
            say("[bench] reusing " + mutated + " (" + Files.size(mutated) + " bytes)");
            updatedRows = Long.parseLong(mp.getProperty("updated"));
            insertedRows = Long.parseLong(mp.getProperty("inserted"));
        } else {
            mutate(base, mutated);
            Properties p = new Properties();
            p.setProperty("spec", mspec);
            p.setProperty("size", Long.toString(Files.size(mutated)));
            p.setProperty("updated", Long.toString(updatedRows));
            p.setProperty("inserted", Long.toString(insertedRows));
            storeProps(p, mutProps);
        }
        baseSha = sha256(base);
        mutatedSha = sha256(mutated);
        blockStats = blockDiff(base, mutated);
        say("[bench] base " + Files.size(base) + " bytes, 1% file " + Files.size(mutated) + " bytes; " + blockStats);
    }

    /** The generator of trades rows {@code [from, to)}: deterministic columns from hash(i), px with random() bits. */
    static String tradesSelect(long from, long to) {
        return "SELECT i, TIMESTAMP '2026-01-02 09:30:00' + to_microseconds((i * 250 + hash(i, 1) % 10000000000)::BIGINT),"
                + " 'S' || lpad((hash(i, 2) % 400)::VARCHAR, 3, '0'),"
                + " CASE WHEN hash(i, 3) % 2 = 0 THEN 'BUY' ELSE 'SELL' END,"
                + " (1 + hash(i, 4) % 5000)::INTEGER,"
                + " 10 + (hash(i, 5) % 100000000)::DOUBLE / 1000000 + random() / 1e9"
                + " FROM range(" + from + ", " + to + ") t(i)";
    }

    private void generate(Path file) throws Exception {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.deleteIfExists(tmp);
        Files.deleteIfExists(Path.of(tmp + ".wal"));
        say("[bench] generating " + file + ": " + s.rows() + " rows (once; reused by later runs)");
        long t0 = System.nanoTime();
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + tmp); Statement st = c.createStatement()) {
            st.execute("CREATE TABLE trades(id BIGINT, ts TIMESTAMP, sym VARCHAR, side VARCHAR, qty INTEGER, px DOUBLE)");
            st.execute("INSERT INTO trades " + tradesSelect(0, s.rows()));
            st.execute("CHECKPOINT");
        }
        if (Files.exists(Path.of(tmp + ".wal"))) throw new IllegalStateException("a WAL was left beside " + tmp);
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        say(String.format(Locale.ROOT, "[bench] generated %d bytes in %.1f s", Files.size(file),
                (System.nanoTime() - t0) / 1e9));
    }

    /**
     * The measured-limits workload: UPDATE ~1% random rows (701,166 of 70M), 100k inserts, CHECKPOINT, with DuckDB's
     * automatic checkpoints off as under the agent, so the 1% file is the base plus exactly one checkpoint.
     */
    private void mutate(Path from, Path to) throws Exception {
        Path tmp = to.resolveSibling(to.getFileName() + ".tmp");
        Files.deleteIfExists(Path.of(tmp + ".wal"));
        Files.copy(from, tmp, StandardCopyOption.REPLACE_EXISTING);
        long upd = Math.round(s.rows() * (701_166.0 / 70_000_000.0));
        long ins = Math.round(s.rows() * (100_000.0 / 70_000_000.0));
        say("[bench] making the 1% file: UPDATE ~" + upd + " random rows, INSERT " + ins + " rows, CHECKPOINT");
        long t0 = System.nanoTime();
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + tmp); Statement st = c.createStatement()) {
            // As under the agent, which owns checkpoints: without this DuckDB checkpoints after the UPDATE (its WAL
            // passes 16 MiB) and again at the end.
            st.execute("SET GLOBAL checkpoint_threshold='1000TB'");
            updatedRows = st.executeUpdate("UPDATE trades SET qty = qty + 1 WHERE hash(id, 99) % " + s.rows() + " < " + upd);
            insertedRows = st.executeUpdate("INSERT INTO trades " + tradesSelect(s.rows(), s.rows() + ins));
            st.execute("CHECKPOINT");
        }
        if (Files.exists(Path.of(tmp + ".wal"))) throw new IllegalStateException("a WAL was left beside " + tmp);
        Files.move(tmp, to, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        say(String.format(Locale.ROOT, "[bench] updated %d, inserted %d rows, %d bytes, %.1f s", updatedRows,
                insertedRows, Files.size(to), (System.nanoTime() - t0) / 1e9));
    }

    /** Which 256 KiB blocks (on DuckDB's grid) differ between the base and the 1% file. */
    private static String blockDiff(Path a, Path b) throws Exception {
        List<String> ha = blockHashes(a);
        List<String> hb = blockHashes(b);
        int inPlace = 0;
        int appended = Math.max(0, hb.size() - ha.size());
        for (int i = 0; i < Math.min(ha.size(), hb.size()); i++) if (!ha.get(i).equals(hb.get(i))) inPlace++;
        return String.format(Locale.ROOT, "blocks (header area + 256 KiB): base %d, 1%% file %d; %d changed in place,"
                + " %d appended = %.1f MB raw", ha.size(), hb.size(), inPlace, appended,
                (inPlace + appended) * (double) Manifest.CHUNK / 1e6);
    }

    private static List<String> blockHashes(Path f) throws Exception {
        List<String> out = new ArrayList<>();
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
            long size = ch.size();
            ByteBuffer buf = ByteBuffer.allocate(Manifest.CHUNK);
            for (int i = 0; Manifest.chunkOffset(i) < size; i++) {
                long off = Manifest.chunkOffset(i);
                int len = (int) Math.min(i == 0 ? Manifest.HEADER_BYTES : Manifest.CHUNK, size - off);
                buf.clear().limit(len);
                while (buf.hasRemaining()) if (ch.read(buf, off + buf.position()) < 0) break;
                MessageDigest md = MessageDigest.getInstance("SHA-256");
                md.update(buf.array(), 0, len);
                out.add(HexFormat.of().formatHex(md.digest()));
            }
        }
        return out;
    }

    // ------------------------------------------------------------------ 1-3: duckguard

    private Manifest snap(Repository repo, FileChannel ch, long epoch, Manifest previous, String reason) throws IOException {
        Manifest m = Snapshotter.snapshot(repo, ch, epoch, previous, duckdbVersion, reason);
        repo.database(DB).writeManifest(m);
        return m;
    }

    /**
     * Makes {@code live} (a copy of the base) the 1% file in place, the way DuckDB's checkpoint changed it: only the
     * blocks that differ are written, into the same inode, so that a channel held on {@code live} reads the new
     * file as the agent's held channel reads the app's database after a checkpoint. (Running the UPDATE on
     * {@code live} itself would cost ~10 s per run and give the same bytes.)
     */
    private void checkpointInPlace(Path live) throws IOException {
        try (FileChannel from = FileChannel.open(mutated, StandardOpenOption.READ);
             FileChannel to = FileChannel.open(live, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer a = ByteBuffer.allocate(Manifest.CHUNK), b = ByteBuffer.allocate(Manifest.CHUNK);
            for (int i = 0; Manifest.chunkOffset(i) < from.size(); i++) {
                long off = Manifest.chunkOffset(i);
                int len = (int) Math.min(i == 0 ? Manifest.HEADER_BYTES : Manifest.CHUNK, from.size() - off);
                a.clear().limit(len);
                b.clear().limit(len);
                from.read(a, off);
                to.read(b, off);
                if (a.flip().equals(b.flip())) continue;
                while (a.hasRemaining()) to.write(a, off + a.position());
            }
            to.truncate(from.size());
            to.force(true);
        }
    }

    private void phaseSnapshots() throws Exception {
        MasterKey key = MasterKey.load(keyFile);
        Path warm = run.resolve("dg-warmup");
        Repository wr = Repository.create(warm, key);
        Path live = run.resolve("dg-live.duckdb");
        Files.copy(base, live, StandardCopyOption.REPLACE_EXISTING);
        try (FileChannel ch = FileChannel.open(live, StandardOpenOption.READ)) {
            Manifest w1 = snap(wr, ch, 1, null, "bench warm-up full");
            checkpointInPlace(live);
            snap(wr, ch, 2, w1, "bench warm-up incremental");
        }
        deleteTree(warm);
        Measure full = m("dg.full", "duckguard Snapshotter, in-process (warm JVM)");
        Measure incr = m("dg.incr", "duckguard Snapshotter incremental");
        full.command = "in-process: Snapshotter.snapshot(repo, channel(copy of trades-base.duckdb), 1, null, ...) + writeManifest"
                + " (this benchmark: " + s.command() + ")";
        incr.command = "in-process, as the agent: the 1% file's changed blocks written in place into the copy of the"
                + " base, then Snapshotter.snapshot(repo, <the same channel>, 2, <full manifest>, ...) + writeManifest, same"
                + " repository";
        for (int r = 1; r <= s.runs(); r++) {
            Path rp = run.resolve("dg-repo-" + r);
            Repository repo = Repository.create(rp, key);
            Files.copy(base, live, StandardCopyOption.REPLACE_EXISTING);
            Manifest m1, m2;
            double tf, ti;
            long b1, b2, notRead;
            try (FileChannel ch = FileChannel.open(live, StandardOpenOption.READ)) {
                sync();
                long t0 = System.nanoTime();
                m1 = snap(repo, ch, 1, null, "bench full");
                tf = (System.nanoTime() - t0) / 1e9;
                b1 = treeSize(rp);
                checkpointInPlace(live);
                sync();
                notRead = Snapshotter.chunksNotRead();
                t0 = System.nanoTime();
                m2 = snap(repo, ch, 2, m1, "bench incremental");
                ti = (System.nanoTime() - t0) / 1e9;
                notRead = Snapshotter.chunksNotRead() - notRead;
                b2 = treeSize(rp) - b1;
            }
            if (!sha256(live).equals(mutatedSha)) throw new IllegalStateException("the in-place copy is not the 1% file");
            full.secs.add(tf);
            full.bytes.add(b1);
            incr.secs.add(ti);
            incr.bytes.add(b2);
            if (r == 1) {
                Set<String> ids = new HashSet<>();
                for (BlockRef b : m1.chunks()) ids.add(HexFormat.of().formatHex(b.id()));
                int fresh = 0;
                for (BlockRef b : m2.chunks()) if (!ids.contains(HexFormat.of().formatHex(b.id()))) fresh++;
                notes.add("Incremental snapshot stored " + fresh + " new chunks of " + m2.chunks().size() + " (" + blockStats
                        + "); it did not read " + notRead + " chunks that DuckDB's block map says the checkpoint could not"
                        + " change (their 8-byte DuckDB checksums were compared).");
            }
            Properties info = new Properties();
            info.setProperty("name", DB);
            info.setProperty("source-path", mutated.toString());
            info.setProperty("duckdb-version", duckdbVersion);
            info.setProperty("duckdb-jar", ChildJvm.classpathEntryOf(org.duckdb.DuckDBConnection.class).toString());
            repo.database(DB).writeInfo(info);
            dgRepos.add(rp);
            say(String.format(Locale.ROOT, "[bench] run %d: full %.3f s %s, incremental %.3f s +%s", r, tf, mb(b1), ti, mb(b2)));
        }
        Files.deleteIfExists(live);
    }

    private void phaseRestore() throws Exception {
        Measure rm = m("dg.restore", "duckguard CLI restore (fresh JVM)");
        Path outDir = Files.createDirectories(run.resolve("restore-out"));
        // The same restore in this warm JVM, as the agent's JMX operation restoreTo runs it: no JVM start, no JIT.
        Measure wm = m("dg.restore.warm", "duckguard in-process restore (warm JVM, as JMX restoreTo)");
        MasterKey key = MasterKey.load(keyFile);
        for (int r = 0; r <= s.runs(); r++) { // run 0 warms this JVM up and is not counted
            Path out = outDir.resolve("warm-" + r + ".duckdb");
            Repository repo = Repository.open(dgRepos.get(0), key);
            cacheTree(dgRepos.get(0));
            sync();
            long t0 = System.nanoTime();
            new io.duckguard.runtime.restore.Restorer(repo.database(DB), msg -> { })
                    .restore(io.duckguard.runtime.restore.RestoreTarget.parse("snapshot:2"), out, false,
                            io.duckguard.runtime.restore.DuckDbDriver.find(null, null, null));
            double secs = (System.nanoTime() - t0) / 1e9;
            if (r > 0) {
                wm.secs.add(secs);
                wm.bytes.add(Files.size(out));
            }
            wm.command = "in-process: new Restorer(history, ...).restore(snapshot:2, out, ...) after one uncounted run";
            say(String.format(Locale.ROOT, "[bench] in-process restore run %d: %.3f s", r, secs));
            Files.delete(out);
        }
        for (int r = 1; r <= dgRepos.size(); r++) {
            Path rp = dgRepos.get(r - 1);
            Path out = outDir.resolve("dg-" + r + ".duckdb");
            cacheTree(rp);
            sync();
            Proc p = must("dg-restore", run, Map.of(), javaExe.toString(), "-jar", agentJar.toString(), "restore",
                    "--repository", rp.toString(), "--key-file", keyFile.toString(), "--to", "snapshot:2",
                    "--output", out.toString());
            rm.secs.add(p.seconds());
            rm.bytes.add(Files.size(out));
            rm.command = p.command();
            String sha = sha256(out);
            if (!sha.equals(mutatedSha)) {
                if (r == 1) notes.add("duckguard restore: output differs byte-wise from the source (" + sha.substring(0, 12)
                        + " vs " + mutatedSha.substring(0, 12) + "); rows: " + countRows(out));
            } else if (r == 1) {
                notes.add("duckguard restore: output is byte-identical to the 1% file (sha256 " + sha.substring(0, 12) + ").");
            }
            Files.delete(out);
            // The disk's speed drifts by up to 3x within a benchmark: time a cp + sync of the same file right after
            // each restore, so that the restore's ratio to cp compares runs made under the same conditions.
            Path cpOut = outDir.resolve("cp-paired.duckdb");
            sync();
            Proc c = must("cp-paired", run, Map.of(), "sh", "-c", "cp " + mutated + " " + cpOut + " && sync");
            Measure paired = m("cp.restore.paired", "cp + sync of the 1% file, right after each duckguard CLI restore");
            paired.secs.add(c.seconds());
            paired.command = c.command();
            Files.delete(cpOut);
            say(String.format(Locale.ROOT, "[bench] restore run %d: %.3f s; cp + sync right after: %.3f s", r,
                    p.seconds(), c.seconds()));
            deleteTree(rp);
        }
        dgRepos.clear();
    }

    private void phaseCliSnapshot() throws Exception {
        MasterKey key = MasterKey.load(keyFile);
        Measure cm = m("dg.cli", "duckguard CLI `snapshot` (fresh JVM)");
        Path src = Files.createDirectories(run.resolve("cli-src")).resolve(DB);
        for (int r = 1; r <= s.runs(); r++) {
            Files.deleteIfExists(Path.of(src + ".wal"));
            Files.copy(base, src, StandardCopyOption.REPLACE_EXISTING);
            Path rp = run.resolve("cli-repo-" + r);
            Repository.create(rp, key);
            sync();
            Proc p = must("dg-cli-snapshot", run, Map.of(), javaExe.toString(), "-jar", agentJar.toString(), "snapshot",
                    "--repository", rp.toString(), "--key-file", keyFile.toString(), "--database-file", src.toString(),
                    "--duckdb-jar", duckdbJar.toString());
            cm.secs.add(p.seconds());
            cm.bytes.add(treeSize(rp));
            cm.command = p.command();
            say(String.format(Locale.ROOT, "[bench] CLI snapshot run %d: %.3f s %s", r, p.seconds(), mb(treeSize(rp))));
            deleteTree(rp);
        }
        deleteTree(src.getParent());
    }

    // ------------------------------------------------------------------ 4: peers

    private void phaseCp() throws Exception {
        Measure full = m("cp.full", "cp + sync");
        Measure incr = m("cp.incr", "cp + sync incremental");
        Measure rest = m("cp.restore", "cp + sync restore");
        Path dir = Files.createDirectories(run.resolve("cp"));
        Path out = dir.resolve("restored.duckdb");
        for (int r = 1; r <= s.runs(); r++) {
            sync();
            Proc a = must("cp-full", dir, Map.of(), "sh", "-c", "cp " + base + " " + dir.resolve("full.duckdb") + " && sync");
            sync();
            Proc b = must("cp-incr", dir, Map.of(), "sh", "-c", "cp " + mutated + " " + dir.resolve("incr.duckdb") + " && sync");
            sync();
            Proc c = must("cp-restore", dir, Map.of(), "sh", "-c", "cp " + dir.resolve("incr.duckdb") + " " + out + " && sync");
            full.secs.add(a.seconds());
            full.bytes.add(Files.size(base));
            incr.secs.add(b.seconds());
            incr.bytes.add(Files.size(mutated));
            rest.secs.add(c.seconds());
            full.command = a.command();
            incr.command = b.command();
            rest.command = c.command();
            say(String.format(Locale.ROOT, "[bench] cp run %d: %.3f / %.3f / %.3f s", r, a.seconds(), b.seconds(), c.seconds()));
            for (String f : List.of("full.duckdb", "incr.duckdb", "restored.duckdb")) Files.deleteIfExists(dir.resolve(f));
        }
    }

    /** The peers back up a directory holding one hard link, to the base and then to the 1% file. */
    private Path peerSource(Path target) throws IOException {
        Path dir = Files.createDirectories(run.resolve("peer-src"));
        Path link = dir.resolve(DB);
        Files.deleteIfExists(link);
        Files.createLink(link, target);
        return dir;
    }

    private void phaseRestic() throws Exception {
        if (!onPath("restic")) {
            notes.add("restic: not installed, skipped (apt-get install -y restic).");
            return;
        }
        Measure full = m("restic.full", "restic backup");
        Measure incr = m("restic.incr", "restic incremental");
        Measure rest = m("restic.restore", "restic restore");
        Map<String, String> env = Map.of("RESTIC_PASSWORD", "duckguard-bench");
        notes.add("restic: " + firstLine(version("restic", "version")) + "; repository created with `restic init` (default"
                + " repository version and compression), password in RESTIC_PASSWORD, cache in a fresh --cache-dir per run.");
        for (int r = 1; r <= s.runs(); r++) {
            Path repo = run.resolve("restic-repo-" + r);
            Path cache = run.resolve("restic-cache-" + r);
            Path out = run.resolve("restic-out-" + r);
            must("restic-init", run, env, "restic", "-r", repo.toString(), "--cache-dir", cache.toString(), "-q", "init");
            long b0 = treeSize(repo);
            Path src = peerSource(base);
            sync();
            Proc a = must("restic-full", run, env, "restic", "-r", repo.toString(), "--cache-dir", cache.toString(), "-q",
                    "backup", src.toString());
            long b1 = treeSize(repo);
            peerSource(mutated);
            sync();
            Proc b = must("restic-incr", run, env, "restic", "-r", repo.toString(), "--cache-dir", cache.toString(), "-q",
                    "backup", src.toString());
            long b2 = treeSize(repo);
            sync();
            Proc c = must("restic-restore", run, env, "sh", "-c", "restic -r " + repo + " --cache-dir " + cache
                    + " -q restore latest --target " + out + " && sync");
            full.secs.add(a.seconds());
            full.bytes.add(b1 - b0);
            incr.secs.add(b.seconds());
            incr.bytes.add(b2 - b1);
            rest.secs.add(c.seconds());
            full.command = "RESTIC_PASSWORD=... " + a.command();
            incr.command = "(after relinking the file to the 1% copy) RESTIC_PASSWORD=... " + b.command();
            rest.command = "RESTIC_PASSWORD=... " + c.command();
            checkRestored("restic", out, r);
            say(String.format(Locale.ROOT, "[bench] restic run %d: %.3f s %s / %.3f s +%s / restore %.3f s", r,
                    a.seconds(), mb(b1 - b0), b.seconds(), mb(b2 - b1), c.seconds()));
            deleteTree(repo);
            deleteTree(cache);
            deleteTree(out);
        }
    }

    private void phaseBorg() throws Exception {
        if (!onPath("borg")) {
            notes.add("borg: not installed, skipped (apt-get install -y borgbackup).");
            return;
        }
        Measure full = m("borg.full", "borg create (fixed 256 KiB)");
        Measure incr = m("borg.incr", "borg incremental");
        Measure rest = m("borg.restore", "borg extract");
        notes.add("borg: " + firstLine(version("borg", "--version")) + "; `borg init -e repokey` (AES-CTR + HMAC-SHA256),"
                + " default compression (lz4), passphrase in BORG_PASSPHRASE, fresh BORG_BASE_DIR (cache) per run.");
        String chunker = "fixed,262144,12288";
        for (int r = 1; r <= s.runs(); r++) {
            Path repo = run.resolve("borg-repo-" + r);
            Path home = run.resolve("borg-home-" + r);
            Path out = Files.createDirectories(run.resolve("borg-out-" + r));
            Map<String, String> env = Map.of("BORG_PASSPHRASE", "duckguard-bench", "BORG_BASE_DIR", home.toString(),
                    "BORG_RELOCATED_REPO_ACCESS_IS_OK", "yes", "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "yes");
            must("borg-init", run, env, "borg", "init", "-e", "repokey", repo.toString());
            long b0 = treeSize(repo);
            Path src = peerSource(base);
            sync();
            Proc a = must("borg-full", run, env, "borg", "create", "--chunker-params", chunker, repo + "::full", src.toString());
            long b1 = treeSize(repo);
            peerSource(mutated);
            sync();
            Proc b = must("borg-incr", run, env, "borg", "create", "--chunker-params", chunker, repo + "::incr", src.toString());
            long b2 = treeSize(repo);
            sync();
            Proc c = must("borg-extract", out, env, "sh", "-c", "borg extract " + repo + "::incr && sync");
            full.secs.add(a.seconds());
            full.bytes.add(b1 - b0);
            incr.secs.add(b.seconds());
            incr.bytes.add(b2 - b1);
            rest.secs.add(c.seconds());
            full.command = "BORG_PASSPHRASE=... " + a.command();
            incr.command = "(after relinking the file to the 1% copy) BORG_PASSPHRASE=... " + b.command();
            rest.command = "cd <empty dir> && BORG_PASSPHRASE=... " + c.command();
            checkRestored("borg", out, r);
            say(String.format(Locale.ROOT, "[bench] borg run %d: %.3f s %s / %.3f s +%s / extract %.3f s", r,
                    a.seconds(), mb(b1 - b0), b.seconds(), mb(b2 - b1), c.seconds()));
            deleteTree(repo);
            deleteTree(home);
            deleteTree(out);
        }
    }

    private void checkRestored(String tool, Path outDir, int r) throws Exception {
        Path f;
        try (Stream<Path> w = Files.walk(outDir)) {
            f = w.filter(p -> p.getFileName().toString().equals(DB) && Files.isRegularFile(p)).findFirst().orElse(null);
        }
        if (f == null) throw new IllegalStateException(tool + " restored no " + DB + " under " + outDir);
        if (!sha256(f).equals(mutatedSha)) throw new IllegalStateException(tool + " restored a different file: " + f);
        if (r == 1) notes.add(tool + " restore: byte-identical to the 1% file (sha256).");
    }

    private void phaseExport() throws Exception {
        Measure ex = m("export.full", "DuckDB EXPORT DATABASE (parquet)");
        Measure im = m("export.restore", "DuckDB IMPORT DATABASE");
        for (int r = 1; r <= s.slowRuns(); r++) {
            Path dir = run.resolve("export-" + r);
            Path db = run.resolve("import-" + r + ".duckdb");
            Properties ro = new Properties();
            ro.setProperty("duckdb.read_only", "true");
            sync();
            long t0 = System.nanoTime();
            try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + mutated, ro); Statement st = c.createStatement()) {
                st.execute("EXPORT DATABASE '" + dir + "' (FORMAT parquet)");
            }
            sync();
            double te = (System.nanoTime() - t0) / 1e9;
            long bytes = treeSize(dir);
            sync();
            t0 = System.nanoTime();
            try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + db); Statement st = c.createStatement()) {
                st.execute("IMPORT DATABASE '" + dir + "'");
                st.execute("CHECKPOINT");
            }
            sync();
            double ti = (System.nanoTime() - t0) / 1e9;
            ex.secs.add(te);
            ex.bytes.add(bytes);
            im.secs.add(ti);
            ex.command = "in-process JDBC, read-only open of the 1% file: EXPORT DATABASE '<dir>' (FORMAT parquet); then sync";
            im.command = "in-process JDBC, new file: IMPORT DATABASE '<dir>'; CHECKPOINT; close; sync";
            long rows = countRows(db);
            if (rows != s.rows() + insertedRows) throw new IllegalStateException("IMPORT gave " + rows + " rows");
            say(String.format(Locale.ROOT, "[bench] EXPORT %.2f s %s, IMPORT %.2f s (%d rows)", te, mb(bytes), ti, rows));
            deleteTree(dir);
            Files.deleteIfExists(db);
        }
    }

    // ------------------------------------------------------------------ 5: point-in-time restore

    private DatabaseRegistry registry(Path repoDir, String opts) throws Exception {
        AgentConfig cfg = AgentConfig.parse("repository=" + repoDir + ",key-file=" + keyFile + ",jmx=false," + opts,
                new Properties(), Map.of());
        Repository repo = RepositoryOpener.openOrCreate(cfg.repository, cfg.encrypted, cfg.keyFile);
        return new DatabaseRegistry(cfg, repo, n -> { });
    }

    private static DatabaseStatusView waitFor(DatabaseRegistry reg, String what, long timeoutMs,
                                              java.util.function.Predicate<DatabaseStatusView> ok) throws Exception {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (true) {
            DatabaseStatusView st = reg.status(DB);
            if (st != null && ok.test(st)) return st;
            if (st != null && !st.healthy()) throw new IllegalStateException("agent unhealthy: " + st.healthReason());
            if (System.currentTimeMillis() > deadline) throw new IllegalStateException("timed out waiting for " + what + ": " + st);
            Thread.sleep(20);
        }
    }

    private void phasePitr() throws Exception {
        Path dir = Files.createDirectories(run.resolve("pitr"));
        Path db = dir.resolve(DB);
        Path repoDir = dir.resolve("repo");
        Files.copy(base, db, StandardCopyOption.REPLACE_EXISTING);
        sync();
        DatabaseRegistry reg = registry(repoDir, "mode=async,max-lag=1s,checkpoint.interval=1h,checkpoint.wal-size=100GB");
        String url = "jdbc:duckdb:" + db;
        Connection c = DriverManager.getConnection(url);
        reg.connectionOpened(c, url, false);
        List<Connection> dups = new ArrayList<>();
        long epoch;
        double commitSecs;
        int total = s.pitrCommits();
        try {
            waitFor(reg, "the first snapshot", 300_000, st -> st.snapshotCount() >= 1);
            int threads = s.pitrThreads();
            AtomicLong nextId = new AtomicLong(s.rows() * 10);
            AtomicLong inserts = new AtomicLong();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            List<Thread> ts = new ArrayList<>();
            long t0 = System.nanoTime();
            for (int t = 0; t < threads; t++) {
                Connection tc = ((org.duckdb.DuckDBConnection) c).duplicate();
                reg.connectionDuplicated(c, tc);
                dups.add(tc);
                int n = total / threads + (t < total % threads ? 1 : 0);
                long seed = 42 + t;
                Thread th = new Thread(() -> {
                    SplittableRandom rnd = new SplittableRandom(seed);
                    try (PreparedStatement ins = tc.prepareStatement("INSERT INTO trades VALUES (?, ?, ?, ?, ?, ?)");
                         PreparedStatement upd = tc.prepareStatement("UPDATE trades SET qty = qty % 5000 + 1 WHERE id = ?")) {
                        for (int i = 0; i < n; i++) {
                            PreparedStatement ps;
                            if (i % 2 == 0) {
                                ins.setLong(1, nextId.getAndIncrement());
                                ins.setTimestamp(2, new Timestamp(System.currentTimeMillis()));
                                ins.setString(3, String.format("S%03d", rnd.nextInt(400)));
                                ins.setString(4, rnd.nextBoolean() ? "BUY" : "SELL");
                                ins.setInt(5, 1 + rnd.nextInt(1_000_000));
                                ins.setDouble(6, 10 + rnd.nextDouble() * 100);
                                ps = ins;
                                inserts.incrementAndGet();
                            } else {
                                upd.setLong(1, rnd.nextLong(s.rows()));
                                ps = upd;
                            }
                            reg.beforeCall(tc);
                            try {
                                ps.execute();
                            } finally {
                                reg.afterCall(tc);
                            }
                        }
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                }, "pitr-writer-" + t);
                th.start();
                ts.add(th);
            }
            for (Thread th : ts) th.join();
            commitSecs = (System.nanoTime() - t0) / 1e9;
            if (failure.get() != null) throw new IllegalStateException("a writer failed", failure.get());
            // Shipped = what reached the WAL: a statement that changed nothing writes no commit there.
            long[] last = {-1, 0};
            DatabaseStatusView st = waitFor(reg, "all commits shipped", 300_000, v -> {
                if (v.unshippedBytes() != 0 || v.commitsShipped() != last[0]) {
                    last[0] = v.commitsShipped();
                    last[1] = System.nanoTime();
                    return false;
                }
                return System.nanoTime() - last[1] > 1_000_000_000L;
            });
            epoch = st.currentEpoch();
            pitr.put("inserts", Long.toString(inserts.get()));
            pitr.put("epochs", "epoch " + epoch + ", " + st.snapshotCount() + " snapshot(s), " + st.checkpointCount()
                    + " agent checkpoint(s) during the run");
        } finally {
            for (Connection d : dups) {
                reg.connectionClosed(d);
                d.close();
            }
            reg.connectionClosed(c);
            c.close();
        }
        // DuckDB's own share of a point-in-time restore: the agent turned checkpoint-on-shutdown off, so the file is
        // still the base and its WAL holds every commit. Replay it onto a copy (open) and CHECKPOINT, in-process.
        Path leftWal = Path.of(db + ".wal");
        if (Files.exists(leftWal)) {
            Path x = dir.resolve("replay.duckdb");
            Files.copy(db, x, StandardCopyOption.REPLACE_EXISTING);
            Files.copy(leftWal, Path.of(x + ".wal"), StandardCopyOption.REPLACE_EXISTING);
            sync();
            long t0 = System.nanoTime();
            double open;
            try (Connection rc = DriverManager.getConnection("jdbc:duckdb:" + x); Statement st = rc.createStatement()) {
                open = (System.nanoTime() - t0) / 1e9;
                st.execute("CHECKPOINT");
            }
            sync();
            double all = (System.nanoTime() - t0) / 1e9;
            pitr.put("duckdb", String.format(Locale.ROOT, "%.3f s = open with WAL replay %.3f s + CHECKPOINT, close and"
                    + " sync %.3f s (n=1, in-process, WAL of %s with every commit, onto a copy of the base)", all, open,
                    all - open, mb(Files.size(leftWal))));
            Files.deleteIfExists(Path.of(x + ".wal"));
            Files.delete(x);
        }
        Repository repo = RepositoryOpener.openExisting(repoDir, keyFile);
        var wal = repo.database(DB).readWalLog(epoch);
        int n = wal.commitCount();
        int target = Math.max(1, n - 10);
        Measure cm = m("pitr.commits", "commits made (in-process runtime, async)");
        cm.secs.add(commitSecs);
        cm.bytes.add(wal.walEnd());
        cm.command = "in-process: DatabaseRegistry (mode=async, checkpoint.interval=1h), " + s.pitrThreads()
                + " threads, alternating INSERT of one row / UPDATE trades SET qty = qty % 5000 + 1 WHERE id=<random>, autocommit,"
                + " beforeCall/afterCall around each";
        pitr.put("commits", n + " commits shipped in epoch " + epoch + " (" + total + " made by " + s.pitrThreads()
                + " threads), WAL " + mb(wal.walEnd()));
        pitr.put("target", "commit:" + epoch + "." + target);
        Measure rm = m("pitr.restore", "CLI restore to commit:E.n (fresh JVM)");
        Path outDir = Files.createDirectories(dir.resolve("out"));
        Pattern replayed = Pattern.compile("epoch (\\d+), (\\d+) commits replayed");
        for (int r = 1; r <= s.runs(); r++) {
            Path out = outDir.resolve("pitr-" + r + ".duckdb");
            cacheTree(repoDir);
            sync();
            double steal0 = BenchEnvironment.stealSeconds();
            Proc p = must("pitr-restore", run, Map.of(), javaExe.toString(), "-jar", agentJar.toString(), "restore",
                    "--repository", repoDir.toString(), "--key-file", keyFile.toString(), "--to",
                    "commit:" + epoch + "." + target, "--output", out.toString());
            double steal = BenchEnvironment.stealSeconds() - steal0;
            String text = Files.readString(p.log());
            // The restore's own account of where its time went, one line per run, for the report.
            Matcher own = Pattern.compile("materialised: [0-9.]+ MB in ([0-9.]+) s[\\s\\S]*?replayed (\\d+) commits as (\\d+) "
                    + "transactions \\((\\d+) insert entries joined\\) in ([0-9.]+) s, checkpointed in ([0-9.]+) s").matcher(text);
            if (own.find()) {
                pitr.merge("own", String.format(Locale.ROOT, "run %d: materialised %s s, %s transactions (%s insert entries"
                        + " joined) replayed in %s s, checkpointed in %s s; CPU steal %.2f s", r, own.group(1), own.group(3),
                        own.group(4), own.group(5), own.group(6), steal), (a, b) -> a + "; " + b);
            }
            Matcher mt = replayed.matcher(text);
            if (!mt.find() || Integer.parseInt(mt.group(2)) != target) {
                throw new IllegalStateException("restore did not report " + target + " commits replayed: " + p.log());
            }
            rm.secs.add(p.seconds());
            rm.bytes.add(Files.size(out));
            rm.command = p.command();
            if (r == 1) {
                long rows = countRows(out);
                long ins = Long.parseLong(pitr.get("inserts"));
                long lo = s.rows() + ins - (n - target);
                long hi = s.rows() + ins;
                pitr.put("check", "restored file has " + rows + " rows (expected " + lo + ".." + hi + "): "
                        + (rows >= lo && rows <= hi ? "ok" : "UNEXPECTED"));
            }
            say(String.format(Locale.ROOT, "[bench] PITR restore run %d: %.3f s", r, p.seconds()));
            Files.delete(out);
        }
        // -Dbench.keep-pitr=true keeps the repository and key, to profile restores of it by hand.
        if (!Boolean.getBoolean("bench.keep-pitr")) deleteTree(dir);
    }

    // ------------------------------------------------------------------ 6: commit stall during checkpoints

    private void phaseStall() throws Exception {
        for (boolean agent : new boolean[] {false, true}) {
            Path dir = Files.createDirectories(run.resolve(agent ? "stall-agent" : "stall-none"));
            Path db = dir.resolve(DB);
            Path walFile = Path.of(db + ".wal");
            Files.copy(base, db, StandardCopyOption.REPLACE_EXISTING);
            sync();
            DatabaseRegistry reg = agent ? registry(dir.resolve("repo"),
                    "mode=async,max-lag=1s,checkpoint.interval=1h,checkpoint.wal-size=16MB") : null;
            String url = "jdbc:duckdb:" + db;
            Connection c = DriverManager.getConnection(url);
            List<Connection> dups = new ArrayList<>();
            String threshold;
            try {
                if (reg != null) {
                    reg.connectionOpened(c, url, false);
                    waitFor(reg, "the first snapshot", 300_000, st -> st.snapshotCount() >= 1);
                }
                try (Statement st = c.createStatement();
                     ResultSet rs = st.executeQuery("SELECT current_setting('checkpoint_threshold')::VARCHAR")) {
                    rs.next();
                    threshold = rs.getString(1);
                }
                long ck0 = reg == null ? 0 : reg.status(DB).checkpointCount();
                Histogram all = new Histogram(3);
                Histogram spanning = new Histogram(3);
                AtomicLong nextId = new AtomicLong(s.rows() * 20);
                AtomicReference<Throwable> failure = new AtomicReference<>();
                AtomicInteger walDrops = new AtomicInteger();
                long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(s.stallSeconds());
                Thread monitor = new Thread(() -> {
                    long last = 0;
                    while (System.nanoTime() < end) {
                        long len = walFile.toFile().length();
                        if (len < last) walDrops.incrementAndGet();
                        last = len;
                        try {
                            Thread.sleep(1);
                        } catch (InterruptedException e) {
                            return;
                        }
                    }
                }, "wal-monitor");
                monitor.setDaemon(true);
                List<Thread> ts = new ArrayList<>();
                long t0 = System.nanoTime();
                for (int t = 0; t < s.stallThreads(); t++) {
                    Connection tc = ((org.duckdb.DuckDBConnection) c).duplicate();
                    if (reg != null) reg.connectionDuplicated(c, tc);
                    dups.add(tc);
                    long seed = 7 + t;
                    Thread th = new Thread(() -> {
                        SplittableRandom rnd = new SplittableRandom(seed);
                        Histogram mine = new Histogram(3);
                        Histogram mineSpan = new Histogram(3);
                        try (Statement st = tc.createStatement()) {
                            for (long k = 0; System.nanoTime() < end; k++) {
                                String sql;
                                if (k % 2 == 0) {
                                    long from = nextId.getAndAdd(STALL_INSERT_ROWS);
                                    sql = "INSERT INTO trades " + tradesSelect(from, from + STALL_INSERT_ROWS);
                                } else {
                                    sql = "UPDATE trades SET qty = qty + 1 WHERE id = " + rnd.nextLong(s.rows());
                                }
                                long before = walFile.toFile().length();
                                long a = System.nanoTime();
                                if (reg != null) reg.beforeCall(tc);
                                try {
                                    st.execute(sql);
                                } finally {
                                    if (reg != null) reg.afterCall(tc);
                                }
                                long us = Math.max(1, (System.nanoTime() - a) / 1000);
                                long after = walFile.toFile().length();
                                mine.recordValue(us);
                                if (after < before) mineSpan.recordValue(us);
                            }
                        } catch (Throwable e) {
                            failure.compareAndSet(null, e);
                        }
                        synchronized (all) {
                            all.add(mine);
                            spanning.add(mineSpan);
                        }
                    }, "stall-writer-" + t);
                    th.start();
                    ts.add(th);
                }
                monitor.start();
                for (Thread th : ts) th.join();
                double secs = (System.nanoTime() - t0) / 1e9;
                monitor.join();
                if (failure.get() != null) throw new IllegalStateException("a writer failed", failure.get());
                String agentStall = "-";
                long checkpoints = walDrops.get();
                if (reg != null) {
                    DatabaseStatusView st = reg.status(DB);
                    checkpoints = st.checkpointCount() - ck0;
                    agentStall = String.format(Locale.ROOT, "%.1f / %.1f / %.1f", st.checkpointStallMillisP50(),
                            st.checkpointStallMillisP99(), st.checkpointStallMillisMax());
                    if (!st.healthy()) throw new IllegalStateException("agent unhealthy: " + st.healthReason());
                }
                stallRows.add(new String[] {
                    agent ? "duckguard runtime (async), agent checkpoints at checkpoint.wal-size=16MB (DuckDB's own off)"
                          : "no agent, DuckDB auto-checkpoint (checkpoint_threshold " + threshold + ")",
                    String.format(Locale.ROOT, "%.1f", secs),
                    Long.toString(all.getTotalCount()),
                    String.format(Locale.ROOT, "%.0f", all.getTotalCount() / secs),
                    Long.toString(checkpoints) + (reg != null ? " (WAL drops seen: " + walDrops.get() + ")" : ""),
                    msOf(all.getValueAtPercentile(50)), msOf(all.getValueAtPercentile(99)),
                    msOf(all.getValueAtPercentile(99.9)), msOf(all.getMaxValue()),
                    spanning.getTotalCount() == 0 ? "0" : spanning.getTotalCount() + ": p50 "
                            + msOf(spanning.getValueAtPercentile(50)) + ", max " + msOf(spanning.getMaxValue()),
                    agentStall});
                say("[bench] stall " + (agent ? "agent" : "no agent") + ": " + String.join(" | ", stallRows.get(stallRows.size() - 1)));
            } finally {
                for (Connection d : dups) {
                    if (reg != null) reg.connectionClosed(d);
                    d.close();
                }
                if (reg != null) reg.connectionClosed(c);
                c.close();
            }
            deleteTree(dir);
        }
    }

    // ------------------------------------------------------------------ report

    private String report(double totalSecs) throws IOException {
        StringBuilder sb = new StringBuilder();
        sb.append("## Snapshot, restore and point-in-time restore of a ~1 GB DuckDB file, duckguard vs peers\n\n");
        if (!failures.isEmpty()) {
            sb.append("**INCOMPLETE: ").append(String.join("; ", failures)).append("**\n\n");
        }
        sb.append("- Machine: ").append(Runtime.getRuntime().availableProcessors()).append(" CPUs (nproc), ")
                .append(cpuModel()).append(", ").append(System.getProperty("os.name")).append(' ')
                .append(System.getProperty("os.version")).append("; work dir ").append(run).append(" on ")
                .append(fileStore(run)).append('\n');
        sb.append("- Java: ").append(System.getProperty("java.vm.name")).append(' ')
                .append(System.getProperty("java.runtime.version")).append("; DuckDB ").append(duckdbVersion)
                .append(" (JDBC in-process for data preparation, EXPORT/IMPORT, PITR and stall workloads)\n");
        sb.append("- Load average (1/5/15 min): ").append(String.join("; ", loads)).append('\n');
        if (base != null && Files.exists(base)) {
            sb.append("- Data: `").append(base).append("` ").append(mb(Files.size(base))).append(", ").append(s.rows())
                    .append(" rows (trades: id BIGINT, ts TIMESTAMP, sym VARCHAR of 400 symbols, side, qty INTEGER,"
                            + " px DOUBLE); 1% file `").append(mutated).append("` ").append(mb(Files.size(mutated)))
                    .append(" after UPDATE of ").append(updatedRows).append(" random rows (SET qty = qty + 1) + INSERT of ")
                    .append(insertedRows).append(" rows + CHECKPOINT; ").append(blockStats).append('\n');
        }
        if (agentId != null) sb.append("- Agent jar (CLI): ").append(agentId).append('\n');
        sb.append("- Runtime on this JVM's class path (in-process rows): ").append(entryId(Snapshotter.class)).append('\n');
        sb.append("- ").append(s.runs()).append(" runs per row unless n says otherwise; values are medians; MB = 10^6 bytes;"
                + " bytes = apparent size of the repository files (added bytes: growth of the repository). Every timed"
                + " step is preceded by `sync`; cp/restic/borg/CLI times are wall times of the process incl. its start.\n");
        sb.append(String.format(Locale.ROOT, "- Total benchmark time: %.0f s%n%n", totalSecs));

        Measure cpF = measures.get("cp.full");
        Measure cpI = measures.get("cp.incr");
        Measure cpR = measures.get("cp.restore");
        sb.append("### Backup and restore of the same file (medians)\n\n");
        sb.append("| tool | n | full backup s | stored MB | x cp+sync | incremental after 1% s | added MB | x cp+sync |"
                + " restore latest s | x cp+sync |\n");
        sb.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        row(sb, "duckguard, in-process Snapshotter (warm JVM); restore: CLI in a fresh JVM", "dg.full", "dg.incr", "dg.restore", cpF, cpI, cpR);
        row(sb, "duckguard CLI `snapshot` (fresh JVM; open + snapshot + checkpoint + snapshot)", "dg.cli", null, null, cpF, cpI, cpR);
        row(sb, "duckguard restore in a warm JVM (as the agent's JMX restoreTo)", null, null, "dg.restore.warm", cpF, cpI, cpR);
        row(sb, "cp + sync (full copy every time)", "cp.full", "cp.incr", "cp.restore", cpF, cpI, cpR);
        row(sb, "restic", "restic.full", "restic.incr", "restic.restore", cpF, cpI, cpR);
        row(sb, "borg `--chunker-params fixed,262144,12288`", "borg.full", "borg.incr", "borg.restore", cpF, cpI, cpR);
        row(sb, "DuckDB EXPORT (parquet) / IMPORT (of the 1% file; incremental = full again)", "export.full", null,
                "export.restore", cpF, cpI, cpR);
        sb.append('\n');

        Measure pc = measures.get("pitr.commits");
        Measure pr = measures.get("pitr.restore");
        Measure dr = measures.get("dg.restore");
        if (pr != null && pr.has()) {
            sb.append("### Point-in-time restore\n\n");
            sb.append("| what | value |\n|---|---|\n");
            sb.append(String.format(Locale.ROOT, "| workload | %s; commit phase %.1f s (%.0f commits/s) |%n",
                    pitr.get("commits"), pc.s(), s.pitrCommits() / pc.s()));
            sb.append("| epochs | ").append(pitr.get("epochs")).append(" |\n");
            sb.append("| target | `").append(pitr.get("target")).append("` |\n");
            sb.append(String.format(Locale.ROOT, "| CLI restore, fresh JVM (n=%d) | median %.3f s (runs %s) |%n",
                    pr.secs.size(), pr.s(), runs(pr)));
            if (cpR != null && cpR.has()) {
                sb.append(String.format(Locale.ROOT, "| x cp+sync restore | %.2f |%n", pr.s() / cpR.s()));
            }
            if (dr != null && dr.has()) {
                sb.append(String.format(Locale.ROOT, "| x restore of a snapshot alone | %.2f |%n", pr.s() / dr.s()));
            }
            sb.append("| DuckDB alone: replay + CHECKPOINT | ").append(pitr.getOrDefault("duckdb", "-")).append(" |\n");
            sb.append("| the restore's own report | ").append(pitr.getOrDefault("own", "-")).append(" |\n");
            sb.append("| check | ").append(pitr.getOrDefault("check", "-")).append(" |\n\n");
        }

        if (!stallRows.isEmpty()) {
            sb.append("### Commit stall during checkpoints (").append(s.stallSeconds()).append(" s per configuration, ")
                    .append(s.stallThreads()).append(" writer threads, autocommit, alternating INSERT of ")
                    .append(STALL_INSERT_ROWS).append(" rows / UPDATE of qty in one random row)\n\n");
            sb.append("| configuration | s | commits | commits/s | checkpoints | p50 ms | p99 ms | p99.9 ms | max ms |"
                    + " commits spanning a checkpoint (WAL shrank across the call) | agent CheckpointStallMillis p50/p99/max |\n");
            sb.append("|---|---:|---:|---:|---|---:|---:|---:|---:|---|---|\n");
            for (String[] r : stallRows) sb.append("| ").append(String.join(" | ", r)).append(" |\n");
            sb.append("\nCommit latency = the JDBC execute of one autocommit statement (with the agent: incl. its gate,"
                    + " i.e. beforeCall..afterCall). Without the agent, the commit that crosses the threshold runs the"
                    + " checkpoint itself and other writers wait for it; with the agent, its shipper thread checkpoints"
                    + " while the gate holds new calls, then snapshots the new base with the gate open (the snapshot"
                    + " competes for the 2 cores). The agent's CheckpointStallMillis is the time its gate was closed.\n\n");
        }

        sb.append("### Aims of the issue (reported, not asserted)\n\n");
        Measure di = measures.get("dg.incr");
        Measure df = measures.get("dg.full");
        if (di != null && di.has()) {
            sb.append(String.format(Locale.ROOT, "- incremental snapshot <= 0.33 s: measured %.3f s -> %s%n", di.s(),
                    di.s() <= 0.33 ? "met" : "NOT met"));
            double peers = Double.NaN;
            for (String k : List.of("restic.incr", "borg.incr")) {
                Measure p = measures.get(k);
                if (p != null && p.has()) peers = Double.isNaN(peers) ? p.b() : Math.min(peers, p.b());
            }
            sb.append(String.format(Locale.ROOT, "- incremental adds no more bytes than the peers (~125 MB in"
                    + " measured-limits): measured %s vs %s -> %s%n", mb((long) di.b()),
                    Double.isNaN(peers) ? "peers not measured here" : mb((long) peers) + " (best peer here)",
                    di.b() <= (Double.isNaN(peers) ? 125e6 : peers) ? "met" : "NOT met"));
        }
        if (df != null && df.has()) {
            sb.append(String.format(Locale.ROOT, "- full snapshot <= 1.2 s: measured %.3f s -> %s%n", df.s(),
                    df.s() <= 1.2 ? "met" : "NOT met"));
        }
        Measure cpP = measures.get("cp.restore.paired");
        if (dr != null && dr.has() && cpP != null && cpP.secs.size() == dr.secs.size()) {
            List<Double> ratios = new ArrayList<>();
            for (int i = 0; i < dr.secs.size(); i++) ratios.add(dr.secs.get(i) / cpP.secs.get(i));
            double x = median(ratios.stream().mapToDouble(Double::doubleValue).toArray());
            sb.append(String.format(Locale.ROOT, "- restore latest <= 1.2x cp+sync: median of the per-run ratios to a cp +"
                    + " sync made right after each restore: %.2fx (restore %s s; cp + sync %s s) -> %s%n", x, runs(dr),
                    runs(cpP), x <= 1.2 ? "met" : "NOT met"));
        }
        if (pr != null && pr.has()) {
            sb.append(String.format(Locale.ROOT, "- PITR of 1 GB + %d commits < 3 s: measured %.3f s -> %s%n",
                    s.pitrCommits(), pr.s(), pr.s() < 3 ? "met" : "NOT met"));
        }
        sb.append('\n');

        sb.append("### Notes and caveats\n\n");
        sb.append("- All files are in the page cache for every tool (dropping caches is not possible here): these are"
                + " warm-cache figures, the same for all. restic/borg read the file through a hard link in a directory"
                + " of its own (relinked to the 1% file before the incremental backup).\n");
        sb.append("- Absolute times drift between machines and with load (2 cores, other builds may run): compare the"
                + " ratios measured back to back, and the load averages above.\n");
        sb.append("- duckguard in-process rows include writeManifest (fsync) but not JVM start; the CLI rows include"
                + " JVM start, DuckDB's native library extraction and, for restore, DuckDB opening the file and CHECKPOINT.\n");
        if (s.slowRuns() < s.runs()) {
            sb.append("- DuckDB EXPORT/IMPORT ran ").append(s.slowRuns()).append(" time(s) only (bench.slow-runs) to keep"
                    + " the invocation short.\n");
        }
        for (String n : notes) sb.append("- ").append(n).append('\n');
        sb.append('\n');

        sb.append("### Runs (raw, seconds; bytes)\n\n| measurement | runs (s) | bytes | command |\n|---|---|---|---|\n");
        for (Map.Entry<String, Measure> e : measures.entrySet()) {
            Measure v = e.getValue();
            sb.append("| ").append(v.label).append(" | ").append(runs(v)).append(" | ")
                    .append(v.bytes.isEmpty() ? "-" : v.bytes.stream().map(SnapshotBench::mb).reduce((a, b) -> a + ", " + b).orElse(""))
                    .append(" | `").append(shorten(v.command).replace("|", "\\|")).append("` |\n");
        }
        sb.append("\n$RUN = ").append(run).append(", $DATA = ").append(dataDir).append(", key file $RUN/duckguard.key;"
                + " the agent jar in $RUN/jars is a copy of agent/target/duckguard-agent.jar taken at the start (users run"
                + " `java -jar agent/target/duckguard-agent.jar ...`). Repositories and outputs are deleted after each run.\n");
        sb.append("\nLogs of every child process: ").append(logs).append("\n\nCommand:\n\n    cd ").append(projectRoot())
                .append(" && ").append(s.command()).append('\n');
        return sb.toString();
    }

    private void row(StringBuilder sb, String label, String fullKey, String incrKey, String restoreKey,
                     Measure cpF, Measure cpI, Measure cpR) {
        Measure f = fullKey == null ? null : measures.get(fullKey);
        Measure i = incrKey == null ? null : measures.get(incrKey);
        Measure r = restoreKey == null ? null : measures.get(restoreKey);
        if ((f == null || !f.has()) && (i == null || !i.has()) && (r == null || !r.has())) return;
        int n = Math.max(f != null ? f.secs.size() : 0, Math.max(i != null ? i.secs.size() : 0, r != null ? r.secs.size() : 0));
        sb.append("| ").append(label).append(" | ").append(n).append(" | ")
                .append(sec(f)).append(" | ").append(f != null && f.has() && !f.bytes.isEmpty() ? mbNum(f.b()) : "-").append(" | ")
                .append(ratio(f, cpF)).append(" | ")
                .append(i != null ? sec(i) : "-").append(" | ").append(i != null && i.has() ? mbNum(i.b()) : "-").append(" | ")
                .append(ratio(i, cpI)).append(" | ")
                .append(sec(r)).append(" | ").append(ratio(r, cpR)).append(" |\n");
    }

    private static String sec(Measure m) {
        return m == null || !m.has() ? "-" : String.format(Locale.ROOT, "%.3f", m.s());
    }

    private static String ratio(Measure m, Measure base) {
        return m == null || !m.has() || base == null || !base.has() ? "-"
                : String.format(Locale.ROOT, "%.2f", m.s() / base.s());
    }

    private static String runs(Measure m) {
        return m.secs.stream().map(v -> String.format(Locale.ROOT, "%.3f", v)).reduce((a, b) -> a + ", " + b).orElse("-");
    }

    // ------------------------------------------------------------------ helpers

    private static String entryId(Class<?> c) {
        try {
            Path p = ChildJvm.classpathEntryOf(c);
            return p + " (modified " + Files.getLastModifiedTime(p) + ")";
        } catch (Exception e) {
            return "n/a";
        }
    }

    /** Loads (without initializing) every class of the class-path entries the given classes came from. */
    private static void preload(Class<?>... anchors) throws Exception {
        int n = 0;
        for (Class<?> a : anchors) {
            Path entry = ChildJvm.classpathEntryOf(a);
            List<String> names = new ArrayList<>();
            if (Files.isDirectory(entry)) {
                try (Stream<Path> w = Files.walk(entry)) {
                    w.filter(p -> p.toString().endsWith(".class"))
                            .forEach(p -> names.add(entry.relativize(p).toString()));
                }
            } else {
                try (java.util.zip.ZipFile z = new java.util.zip.ZipFile(entry.toFile())) {
                    z.stream().map(java.util.zip.ZipEntry::getName).filter(x -> x.endsWith(".class")).forEach(names::add);
                }
            }
            for (String f : names) {
                if (f.startsWith("META-INF") || f.endsWith("module-info.class")) continue;
                String cn = f.substring(0, f.length() - 6).replace('/', '.').replace('\\', '.');
                try {
                    Class.forName(cn, false, SnapshotBench.class.getClassLoader());
                    n++;
                } catch (Throwable e) {
                    // a class of an optional dependency: not needed here
                }
            }
        }
        say("[bench] preloaded " + n + " classes");
    }

    private Proc must(String label, Path cwd, Map<String, String> env, String... cmd) throws Exception {
        Proc p = exec(label, cwd, env, cmd);
        if (p.exit() != 0) {
            throw new IllegalStateException(p.command() + " exited with " + p.exit() + " (log " + p.log() + "):\n"
                    + tail(p.log()));
        }
        return p;
    }

    private Proc exec(String label, Path cwd, Map<String, String> env, String... cmd) throws Exception {
        Path log = logs.resolve(String.format("%03d-%s.log", procSeq.incrementAndGet(), label));
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(cwd.toFile()).redirectErrorStream(true)
                .redirectOutput(log.toFile());
        pb.environment().putAll(env);
        long t0 = System.nanoTime();
        Process p = pb.start();
        if (!p.waitFor(15, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            throw new IllegalStateException(String.join(" ", cmd) + " did not finish in 15 minutes");
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        return new Proc(p.exitValue(), secs, log, shellJoin(cmd));
    }

    /** The command as one would type it in a shell (single-quoting arguments with spaces or shell characters). */
    static String shellJoin(String... cmd) {
        StringBuilder sb = new StringBuilder();
        for (String a : cmd) {
            if (sb.length() > 0) sb.append(' ');
            sb.append(a.matches("[A-Za-z0-9_./:=,+@%-]+") ? a : "'" + a.replace("'", "'\\''") + "'");
        }
        return sb.toString();
    }

    /** Shortens the run and data directories in a printed command to $RUN and $DATA. */
    private String shorten(String cmd) {
        String out = cmd.replace(run.toString(), "$RUN");
        return dataDir == null ? out : out.replace(dataDir.toString(), "$DATA");
    }

    private static void sync() throws Exception {
        Process p = new ProcessBuilder("sync").redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        p.waitFor();
    }

    private static String version(String... cmd) {
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            p.waitFor();
            return out;
        } catch (Exception e) {
            return cmd[0] + " (version n/a)";
        }
    }

    private static boolean onPath(String exe) {
        for (String d : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":")) {
            if (!d.isEmpty() && Files.isExecutable(Path.of(d, exe))) return true;
        }
        return false;
    }

    private static long countRows(Path db) throws Exception {
        Properties ro = new Properties();
        ro.setProperty("duckdb.read_only", "true");
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + db, ro); Statement st = c.createStatement();
             ResultSet rs = st.executeQuery("SELECT count(*) FROM trades")) {
            rs.next();
            return rs.getLong(1);
        }
    }

    static String sha256(Path f) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocateDirect(1 << 20);
            while (ch.read(b) > 0) {
                b.flip();
                md.update(b);
                b.clear();
            }
        }
        return HexFormat.of().formatHex(md.digest());
    }

    static long treeSize(Path dir) throws IOException {
        if (!Files.exists(dir)) return 0;
        try (Stream<Path> w = Files.walk(dir)) {
            return w.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
        }
    }

    /**
     * Reads every file under {@code dir} once, so that a restore from it starts from the page cache like every peer's
     * restore here does (their repositories were just written through the cache). duckguard writes packs with
     * O_DIRECT, so without this its repository would be the only cold one.
     */
    static void cacheTree(Path dir) throws IOException {
        ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
        try (Stream<Path> w = Files.walk(dir)) {
            for (Path p : w.filter(Files::isRegularFile).toList()) {
                try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
                    while (ch.read(buf.clear()) > 0) {
                        // read only to load the page cache
                    }
                }
            }
        }
    }

    static void deleteTree(Path dir) throws IOException {
        if (dir == null || !Files.exists(dir)) return;
        try (Stream<Path> w = Files.walk(dir)) {
            for (Path p : w.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }

    /** Removes what is large in the run directory (databases, repositories, jar copies); keeps logs and the key. */
    private void cleanup() {
        try (Stream<Path> w = Files.list(run)) {
            for (Path p : w.toList()) {
                String n = p.getFileName().toString();
                boolean keep = n.equals("logs") || n.equals("duckguard.key")
                        || (n.equals("pitr") && Boolean.getBoolean("bench.keep-pitr"));
                if (!keep) deleteTree(p);
            }
        } catch (IOException e) {
            System.err.println("[bench] cleanup of " + run + ": " + e);
        }
    }

    private static Properties props(Path f) throws IOException {
        Properties p = new Properties();
        if (Files.isRegularFile(f)) p.load(new StringReader(Files.readString(f)));
        return p;
    }

    private static void storeProps(Properties p, Path f) throws IOException {
        StringWriter w = new StringWriter();
        p.store(w, "SnapshotBench data set");
        Files.writeString(f, w.toString());
    }

    private static String tail(Path log) {
        try {
            List<String> lines = Files.readAllLines(log);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 30), lines.size()));
        } catch (IOException e) {
            return "(no log)";
        }
    }

    static double median(double[] v) {
        if (v.length == 0) return Double.NaN;
        double[] x = v.clone();
        Arrays.sort(x);
        int n = x.length;
        return n % 2 == 1 ? x[n / 2] : (x[n / 2 - 1] + x[n / 2]) / 2;
    }

    static String mb(long bytes) {
        return String.format(Locale.ROOT, "%.1f MB", bytes / 1e6);
    }

    static String mbNum(double bytes) {
        return String.format(Locale.ROOT, "%.1f", bytes / 1e6);
    }

    static String msOf(double micros) {
        return String.format(Locale.ROOT, "%.1f", micros / 1000.0);
    }

    private static String firstLine(String s) {
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }





    private static void say(String line) {
        System.out.println(Instant.now() + " " + line);
        System.out.flush();
    }
}
