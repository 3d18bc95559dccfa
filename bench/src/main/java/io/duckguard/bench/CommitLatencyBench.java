package io.duckguard.bench;

import static io.duckguard.bench.BenchEnvironment.cpuModel;
import static io.duckguard.bench.BenchEnvironment.fileStore;
import static io.duckguard.bench.BenchEnvironment.loadAverage;
import static io.duckguard.bench.BenchEnvironment.projectRoot;
import io.duckguard.it.harness.ChildJvm;
import io.duckguard.it.harness.WorkDirs;
import io.duckguard.it.host.TradingApp;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.ToDoubleFunction;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What the agent costs the host: the host app ({@link TradingApp}, DuckDB through JDBC, 4 writer threads) runs in a
 * child JVM for a fixed time in three configurations, no agent / agent {@code mode=async} / agent {@code mode=sync},
 * each several times, interleaved (none, async, sync, none, async, sync, ...) so that drift of the machine hits all
 * three alike. Every run gets a fresh database, ack log, repository and key file, and the same seed.
 *
 * <p>Measured per run:
 * <ul>
 *   <li><b>commits/s</b>: the app's acked count over the steady part of the run, on this JVM's clock: from the first
 *       {@code PROGRESS} line (about 1 s after {@code READY}) to the last one that arrived before the app's deadline
 *       ({@code READY} + {@code --seconds}). Also reported: {@code SUMMARY acked / --seconds} (whole run).</li>
 *   <li><b>commit latency</b> p50/p90/p99/p99.9/max, from the app's own {@code LATENCY} line (HdrHistogram of the
 *       committing call alone, whole run; the full distribution is in each run's {@code commit-latency.hgrm}).</li>
 * </ul>
 * The table shows the median of the runs of each configuration and the ratios of those medians to no-agent. The
 * issue's aims are printed beside it, never asserted: the numbers depend on the machine.
 *
 * <p>Settings (system properties, set by the {@code bench} profile of this module's pom): {@code bench.seconds}
 * (10), {@code bench.runs} (3 per configuration), {@code bench.threads} (4), {@code bench.seed} (42),
 * {@code bench.pause-ms} (2000, between runs), {@code bench.out.dir} (where {@code commit-latency.md} goes),
 * {@code duckguard.duckdb.version} (1.5.6.0), plus the harness's {@code duckguard.agent.jar},
 * {@code duckguard.duckdb.dir} and {@code duckguard.work.dir}.
 */
public final class CommitLatencyBench {

    /** The three configurations, in the order they run within each round. */
    enum Config {
        NONE("no agent", null),
        ASYNC("agent async", "mode=async,max-lag=1s"),
        SYNC("agent sync", "mode=sync");

        final String label;
        final String modeOptions;

        Config(String label, String modeOptions) {
            this.label = label;
            this.modeOptions = modeOptions;
        }

        String key() {
            return name().toLowerCase(Locale.ROOT);
        }

        /** The -javaagent options, or null for no agent. */
        String agentOptions(Path repo, Path keyFile) {
            return modeOptions == null ? null
                    : "repository=" + repo + ",key-file=" + keyFile + ",checkpoint.interval=1m," + modeOptions;
        }
    }

    record Settings(int seconds, int runs, int threads, long seed, String duckdbVersion, long pauseMillis,
                    Path outDir) {
        static Settings fromSystemProperties() {
            Settings s = new Settings(Integer.getInteger("bench.seconds", 10), Integer.getInteger("bench.runs", 3),
                    Integer.getInteger("bench.threads", 4), Long.getLong("bench.seed", 42L),
                    System.getProperty("duckguard.duckdb.version", "1.5.6.0"), Long.getLong("bench.pause-ms", 2000L),
                    Path.of(System.getProperty("bench.out.dir", "target")).toAbsolutePath().normalize());
            if (s.seconds < 2 || s.runs < 1 || s.threads < 1) {
                throw new IllegalArgumentException("need bench.seconds >= 2, bench.runs >= 1, bench.threads >= 1: "
                        + s);
            }
            return s;
        }

        String command() {
            return "mvn -B -ntp -q -Pbench -DskipTests -pl bench -am verify -Dbench=commit-latency"
                    + " -Dbench.seconds=" + seconds + " -Dbench.runs=" + runs + " -Dbench.threads=" + threads
                    + (seed != 42L ? " -Dbench.seed=" + seed : "")
                    + (pauseMillis != 2000L ? " -Dbench.pause-ms=" + pauseMillis : "");
        }
    }

    /** One run's numbers. Latencies in microseconds, as the app prints them. */
    record Run(int round, Config config, long acked, long failed, long rolledBack, double windowSeconds,
               double windowRate, double overallRate, long p50, long p90, long p99, long p999, long max,
               int agentWarnings, Path dir) {
    }

    /**
     * Copies of the jars the children run, taken once before the first run: the agent jar (the same build for every
     * run, even if someone rebuilds agent/target meanwhile), the DuckDB driver (the harness then reads it from the
     * copy) and the host app's jar (appended to the children's class path, behind the original).
     */
    record Jars(Path agent, Path hostCopy, String agentId) {
        static Jars snapshot(Settings s, Path root) throws IOException {
            Path dir = Files.createDirectories(root.resolve("jars"));
            Path agentSrc = ChildJvm.agentJar();
            if (!Files.isRegularFile(agentSrc)) {
                throw new IllegalStateException("agent jar not built: " + agentSrc + " (build it: mvn -q -pl"
                        + " hook,runtime,agent,it-tests install -DskipTests, or run the bench with -am)");
            }
            Path agent = Files.copy(agentSrc, dir.resolve(agentSrc.getFileName()));
            Path duckdb = ChildJvm.duckdbJar(s.duckdbVersion());
            Path duckdbDir = Files.createDirectories(dir.resolve("duckdb"));
            Files.copy(duckdb, duckdbDir.resolve(duckdb.getFileName()));
            System.setProperty("duckguard.duckdb.dir", duckdbDir.toString());
            Path host = ChildJvm.classpathEntryOf(TradingApp.class);
            Path hostCopy = Files.isRegularFile(host) ? Files.copy(host, dir.resolve(host.getFileName())) : null;
            return new Jars(agent, hostCopy, agentSrc + " (" + Files.size(agent) + " bytes, sha256 "
                    + sha256(agent).substring(0, 12) + ", built " + Files.getLastModifiedTime(agentSrc) + ")");
        }

        private static String sha256(Path file) throws IOException {
            try {
                java.security.MessageDigest md = java.security.MessageDigest.getInstance("SHA-256");
                return java.util.HexFormat.of().formatHex(md.digest(Files.readAllBytes(file)));
            } catch (java.security.NoSuchAlgorithmException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    /** A stdout line of the child and when this JVM saw it. */
    private record TimedLine(long nanos, String text) {
    }

    private static final Pattern PROGRESS = Pattern.compile("^PROGRESS acked=(\\d+) ");
    private static final Pattern SUMMARY = Pattern.compile("^SUMMARY acked=(\\d+) failed=(\\d+) rolledback=(\\d+)");
    private static final Pattern LATENCY = Pattern.compile(
            "^LATENCY commit_us count=(\\d+) p50=(\\d+) p90=(\\d+) p99=(\\d+) p999=(\\d+) max=(\\d+)");
    private static final Pattern AGENT_WARNING = Pattern.compile("^duckguard \\S+ (WARN|ERROR) ");
    /** A PROGRESS line counts for the window only if it arrived this long before the app's deadline. */
    private static final long DEADLINE_MARGIN_NANOS = TimeUnit.MILLISECONDS.toNanos(200);

    private CommitLatencyBench() {}

    /** Runs the benchmark, prints the report, writes it to {@code <out>/commit-latency.md}; returns the exit code. */
    static int run(Settings s) throws Exception {
        Path root = WorkDirs.create("commit-latency");
        Jars jars = Jars.snapshot(s, root);
        String loadBefore = loadAverage();
        say("[bench] commit-latency: " + s.runs() + " x 3 runs of " + s.seconds() + " s, " + s.threads()
                + " threads, DuckDB " + s.duckdbVersion() + "; work dir " + root);
        List<Run> runs = new ArrayList<>();
        Exception failure = null;
        int total = s.runs() * Config.values().length;
        outer:
        for (int round = 1; round <= s.runs(); round++) {
            for (Config c : Config.values()) {
                if (!runs.isEmpty()) {
                    Thread.sleep(s.pauseMillis()); // let the previous run's dirty pages and exit settle
                }
                try {
                    Run r = runOnce(s, jars, c, round, root);
                    runs.add(r);
                    say(String.format(Locale.ROOT, "[bench] %d/%d round %d %-11s %8.1f commits/s  p50=%s p99=%s"
                                    + " p99.9=%s ms  (acked=%d failed=%d)", runs.size(), total, round, c.label,
                            r.windowRate(), ms(r.p50()), ms(r.p99()), ms(r.p999()), r.acked(), r.failed()));
                } catch (Exception e) {
                    failure = e;
                    break outer;
                }
            }
        }
        String report = report(s, jars, runs, root, loadBefore, loadAverage(), failure);
        Files.createDirectories(s.outDir());
        Path md = s.outDir().resolve("commit-latency.md");
        Files.writeString(md, report, StandardCharsets.UTF_8);
        System.out.println();
        System.out.print(report);
        say("[bench] written to " + md);
        if (failure != null) {
            System.err.println("[bench] a run failed; the report above is partial");
            failure.printStackTrace();
            return 1;
        }
        return 0;
    }

    static Run runOnce(Settings s, Jars jars, Config c, int round, Path root) throws Exception {
        Path dir = Files.createDirectories(root.resolve("r" + round + "-" + c.key()));
        Path db = dir.resolve("host.duckdb");
        Path latencyFile = dir.resolve("commit-latency.hgrm");
        ChildJvm jvm = new ChildJvm()
                .duckdbVersion(s.duckdbVersion())
                .agent(c.agentOptions(dir.resolve("repo"), dir.resolve("key")))
                .agentJar(jars.agent())
                .mainClass(TradingApp.class.getName())
                .args("--db", db.toString(), "--ack-log", dir.resolve("host.acks").toString(),
                        "--threads", Integer.toString(s.threads()), "--seconds", Integer.toString(s.seconds()),
                        "--seed", Long.toString(s.seed()), "--big-txn-rows", "0",
                        "--latency-out", latencyFile.toString())
                .workDir(dir).name(c.key());
        if (jars.hostCopy() != null) {
            jvm.classpath(jars.hostCopy()); // only used if a concurrent clean deleted the original
        }
        try (ChildJvm.Handle app = jvm.start()) {
            List<TimedLine> lines = follow(app, Duration.ofSeconds(s.seconds() + 180L));
            int exit = app.waitFor(Duration.ofMinutes(2));
            if (exit != 0) {
                throw new IllegalStateException(c.label + " run " + round + " exited with " + exit + " (log "
                        + app.logFile() + ")\n" + app.output());
            }
            checkAgent(c, app);
            return parse(s, c, round, dir, lines, app);
        }
    }

    /** Collects stdout lines with their arrival time until {@code DONE}. */
    private static List<TimedLine> follow(ChildJvm.Handle app, Duration timeout)
            throws InterruptedException, TimeoutException {
        long deadline = System.nanoTime() + timeout.toNanos();
        List<TimedLine> out = new ArrayList<>();
        int next = 0;
        while (true) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                throw new TimeoutException("no DONE from " + app.logFile() + " within " + timeout + "\n"
                        + app.output());
            }
            app.waitForLine("", Duration.ofNanos(left), next); // any line at index >= next
            long now = System.nanoTime();
            List<String> snapshot = app.stdout();
            for (; next < snapshot.size(); next++) {
                String line = snapshot.get(next);
                out.add(new TimedLine(now, line));
                if (line.startsWith("FATAL ")) {
                    throw new IllegalStateException("the app failed (log " + app.logFile() + "): " + line);
                }
                if (line.startsWith("DONE ")) {
                    return out;
                }
            }
        }
    }

    /** The agent must be protecting the database in the intended mode, or absent: else the numbers mean nothing. */
    private static void checkAgent(Config c, ChildJvm.Handle app) {
        List<String> err = app.stderr();
        if (c == Config.NONE) {
            if (err.stream().anyMatch(l -> l.startsWith("duckguard "))) {
                throw new IllegalStateException("agent output in a no-agent run (log " + app.logFile() + ")");
            }
            return;
        }
        String mode = c == Config.SYNC ? "sync" : "async";
        if (err.stream().noneMatch(l -> l.startsWith("duckguard ") && l.contains("protected (" + mode + " mode)"))) {
            throw new IllegalStateException("the agent did not report protecting the database in " + mode
                    + " mode (log " + app.logFile() + ")\n" + app.output());
        }
    }

    private static Run parse(Settings s, Config c, int round, Path dir, List<TimedLine> lines, ChildJvm.Handle app) {
        Long ready = null;
        List<long[]> progress = new ArrayList<>(); // {nanos, acked}
        long[] summary = null;
        long[] latency = null;
        for (TimedLine l : lines) {
            Matcher m;
            if (l.text().equals("READY")) {
                ready = l.nanos();
            } else if ((m = PROGRESS.matcher(l.text())).find()) {
                progress.add(new long[] {l.nanos(), Long.parseLong(m.group(1))});
            } else if ((m = SUMMARY.matcher(l.text())).find()) {
                summary = groups(m, 3);
            } else if ((m = LATENCY.matcher(l.text())).find()) {
                latency = groups(m, 6);
            }
        }
        if (ready == null || summary == null || latency == null) {
            throw new IllegalStateException("READY/SUMMARY/LATENCY missing (log " + app.logFile() + ")\n"
                    + app.output());
        }
        long acked = summary[0];
        double overall = acked / (double) s.seconds();
        // Steady window: first PROGRESS .. last PROGRESS that arrived safely before READY + --seconds.
        long cutoff = ready + TimeUnit.SECONDS.toNanos(s.seconds()) - DEADLINE_MARGIN_NANOS;
        List<long[]> inWindow = progress.stream().filter(p -> p[0] <= cutoff).toList();
        double windowSeconds;
        double windowRate;
        if (inWindow.size() >= 2) {
            long[] a = inWindow.get(0);
            long[] b = inWindow.get(inWindow.size() - 1);
            windowSeconds = (b[0] - a[0]) / 1e9;
            windowRate = (b[1] - a[1]) / windowSeconds;
        } else { // too short a run for a window: fall back to the whole run
            windowSeconds = s.seconds();
            windowRate = overall;
        }
        int warnings = (int) app.stderr().stream().filter(l -> AGENT_WARNING.matcher(l).find()).count();
        return new Run(round, c, acked, summary[1], summary[2], windowSeconds, windowRate, overall, latency[1],
                latency[2], latency[3], latency[4], latency[5], warnings, dir);
    }

    private static long[] groups(Matcher m, int n) {
        long[] v = new long[n];
        for (int i = 0; i < n; i++) {
            v[i] = Long.parseLong(m.group(i + 1));
        }
        return v;
    }

    // ------------------------------------------------------------------ report

    static String report(Settings s, Jars jars, List<Run> runs, Path root, String loadBefore, String loadAfter,
                         Exception failure) {
        StringBuilder sb = new StringBuilder();
        sb.append("## Commit latency and throughput: no agent vs agent async vs agent sync\n\n");
        if (failure != null) {
            sb.append("**INCOMPLETE: a run failed (").append(firstLine(failure.getMessage()))
                    .append("); the medians below cover only the runs that finished.**\n\n");
        }
        sb.append("- Machine: ").append(Runtime.getRuntime().availableProcessors()).append(" CPUs (nproc), ")
                .append(cpuModel()).append(", ").append(System.getProperty("os.name")).append(' ')
                .append(System.getProperty("os.version")).append(' ').append(System.getProperty("os.arch"))
                .append("; work dir on ").append(fileStore(root)).append('\n');
        sb.append("- Java: ").append(System.getProperty("java.vm.name")).append(' ')
                .append(System.getProperty("java.runtime.version")).append(" (").append(System.getProperty("java.home"))
                .append("), the same JDK for the child JVMs (-Xmx1g)\n");
        sb.append("- Load average (1/5/15 min): before ").append(loadBefore).append(", after ").append(loadAfter)
                .append('\n');
        sb.append("- Workload: TradingApp, DuckDB ").append(s.duckdbVersion())
                .append(", --threads ").append(s.threads())
                .append(" --seconds ").append(s.seconds()).append(" --seed ").append(s.seed())
                .append(" --big-txn-rows 0; fresh database, ack log, repository and key file per run; ")
                .append(s.runs()).append(s.runs() == 1 ? " run" : " runs")
                .append(" per configuration, interleaved (none, async, sync, none, ...), ")
                .append(s.pauseMillis()).append(" ms pause between runs\n");
        sb.append("- Agent options: repository=<fresh dir>,key-file=<fresh file>,checkpoint.interval=1m + ")
                .append("`mode=async,max-lag=1s` or `mode=sync`\n");
        sb.append("- Agent jar: ").append(jars.agentId()).append(", copied once for all runs\n");
        sb.append("- commits/s: acked commits per second over the steady part of each run (first PROGRESS line to the")
                .append(" last one before the deadline, timed by the benchmark JVM); latency: the app's HdrHistogram")
                .append(" of the committing call (whole run). Table values are medians of the runs; ratios are")
                .append(" ratios of medians.\n\n");

        Run[] none = of(runs, Config.NONE);
        double baseRate = median(none, Run::windowRate);
        double baseP99 = median(none, r -> r.p99());
        sb.append("| configuration | commits/s (median) | ratio to no-agent | p50 ms | p99 ms | p99.9 ms |")
                .append(" p99 ratio to no-agent |\n");
        sb.append("|---|---:|---:|---:|---:|---:|---:|\n");
        for (Config c : Config.values()) {
            Run[] rs = of(runs, c);
            if (rs.length == 0) {
                sb.append("| ").append(c.label).append(" | - | - | - | - | - | - |\n");
                continue;
            }
            double rate = median(rs, Run::windowRate);
            double p99 = median(rs, r -> r.p99());
            sb.append(String.format(Locale.ROOT, "| %s (n=%d) | %.1f | %s | %s | %s | %s | %s |%n", c.label, rs.length,
                    rate, ratio(rate, baseRate), ms(median(rs, r -> r.p50())), ms(p99), ms(median(rs, r -> r.p999())),
                    ratio(p99, baseP99)));
        }
        sb.append('\n');

        sb.append("Aims of the issue (reported, not asserted):\n\n");
        Run[] async = of(runs, Config.ASYNC);
        Run[] sync = of(runs, Config.SYNC);
        if (none.length > 0 && async.length > 0) {
            double cost = 1 - median(async, Run::windowRate) / baseRate;
            double p99Cost = median(async, r -> r.p99()) / baseP99 - 1;
            sb.append(String.format(Locale.ROOT, "- async costs at most 3%% throughput: measured cost %+.1f%% -> %s%n",
                    100 * cost, cost <= 0.03 ? "met" : "NOT met"));
            sb.append(String.format(Locale.ROOT, "- async costs at most 10%% p99: measured p99 change %+.1f%% -> %s%n",
                    100 * p99Cost, p99Cost <= 0.10 ? "met" : "NOT met"));
        }
        if (none.length > 0 && sync.length > 0) {
            double x = median(sync, r -> r.p99()) / baseP99;
            sb.append(String.format(Locale.ROOT, "- sync p99 at most 2x no-agent: measured %.2fx -> %s%n", x,
                    x <= 2.0 ? "met" : "NOT met"));
        }
        sb.append('\n');
        sb.append("Ratios matter, not absolute numbers: the absolute rates and latencies depend on this machine's")
                .append(" CPUs, disk and fsync latency, and on whatever else ran at the same time (compare the load")
                .append(" average and the spread of the runs below). In all three configurations the host also fsyncs")
                .append(" its own ack log (one lock for all threads) after every commit, outside the timed commit call")
                .append(" but inside the commits/s.\n\n");

        sb.append("### Runs (raw)\n\n");
        sb.append("| round | configuration | acked | failed | rolled back | window s | commits/s (window) |")
                .append(" acked / --seconds | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |")
                .append(" agent WARN/ERROR lines |\n");
        sb.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (Run r : runs) {
            sb.append(String.format(Locale.ROOT, "| %d | %s | %d | %d | %d | %.2f | %.1f | %.1f | %s | %s | %s | %s |"
                            + " %s | %d |%n", r.round(), r.config().label, r.acked(), r.failed(), r.rolledBack(),
                    r.windowSeconds(), r.windowRate(), r.overallRate(), ms(r.p50()), ms(r.p90()), ms(r.p99()),
                    ms(r.p999()), ms(r.max()), r.agentWarnings()));
        }
        sb.append('\n');
        sb.append("Run directories (databases, repositories, child logs, commit-latency.hgrm): ").append(root)
                .append('\n');
        sb.append('\n');
        sb.append("Command:\n\n    cd ").append(projectRoot()).append(" && ").append(s.command()).append("\n");
        return sb.toString();
    }

    private static Run[] of(List<Run> runs, Config c) {
        return runs.stream().filter(r -> r.config() == c).toArray(Run[]::new);
    }

    static double median(Run[] runs, ToDoubleFunction<Run> f) {
        if (runs.length == 0) {
            return Double.NaN;
        }
        double[] v = Arrays.stream(runs).mapToDouble(f).sorted().toArray();
        int n = v.length;
        return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    }

    private static String ratio(double value, double base) {
        return Double.isNaN(value) || Double.isNaN(base) || base == 0 ? "-"
                : String.format(Locale.ROOT, "%.3f", value / base);
    }

    /** Microseconds as milliseconds. */
    static String ms(double micros) {
        return Double.isNaN(micros) ? "-" : String.format(Locale.ROOT, "%.3f", micros / 1000.0);
    }

    // ------------------------------------------------------------------ environment





    private static String firstLine(String s) {
        if (s == null) {
            return "";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    private static void say(String line) {
        System.out.println(Instant.now() + " " + line);
        System.out.flush();
    }
}
