package io.duckguard.it.demo;

import io.duckguard.it.harness.ChildJvm;
import io.duckguard.it.harness.Cli;
import io.duckguard.it.host.AckLog;
import io.duckguard.it.host.ReferenceState;
import io.duckguard.it.host.ReferenceState.Verification;
import io.duckguard.it.host.TradingApp;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Comparator;
import java.util.List;
import java.util.Properties;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;

/**
 * The README's first command ({@code mvn -B -ntp -q -Pdemo -DskipTests verify}, profile {@code demo} of it-tests):
 * a short, narrated disaster and recovery with the real agent jar and the real CLI, checked rather than just shown.
 *
 * <ol>
 *   <li>the trading app (which knows nothing of duckguard) trades with the agent in sync mode;</li>
 *   <li>kill -9 in the middle of trading;</li>
 *   <li>the disk with the database dies (the file and its WAL are deleted);</li>
 *   <li>{@code list} and {@code restore --to latest} from the encrypted repository;</li>
 *   <li>the restored database is checked against the app's own fsynced ack log: every acknowledged transaction
 *       present, none partial; otherwise the demo says so and exits 1 (so the build fails);</li>
 *   <li>a point-in-time restore to an instant a few seconds before the kill, checked the same way.</li>
 * </ol>
 *
 * <p>Everything happens in {@code demo-data/} at the repository top (system property {@code duckguard.demo.dir}),
 * which is wiped first. The child JVMs are started with the it-tests harness, so the same system properties as in
 * the tests apply ({@code duckguard.agent.jar}, {@code duckguard.duckdb.dir}, {@code duckguard.duckdb.version});
 * the Maven profile passes them.
 */
public final class Demo {
    /** How long the app trades before the kill. Long enough for several checkpoints (every 2 s) and the big txn. */
    private static final Duration TRADING = Duration.ofSeconds(6);
    /** The point-in-time target lies this long before the kill: well inside the restorable range. */
    private static final Duration PIT_BEFORE_KILL = Duration.ofSeconds(3);
    private static final Duration START = Duration.ofSeconds(60);

    private final long t0 = System.nanoTime();
    /** The repository top (demo-data's parent); narration shows paths relative to it, as a reader would type them. */
    private String top = "";

    private Demo() {
    }

    public static void main(String[] args) {
        try {
            new Demo().run();
        } catch (DemoFailure e) {
            System.out.println();
            System.out.println("DEMO FAILED: " + e.getMessage());
            System.exit(1);
        } catch (Exception e) {
            System.out.println();
            System.out.println("DEMO FAILED with an unexpected error:");
            e.printStackTrace(System.out);
            System.exit(1);
        }
    }

    private void run() throws Exception {
        Path data = Path.of(System.getProperty("duckguard.demo.dir", "demo-data")).toAbsolutePath().normalize();
        deleteTree(data);
        top = data.getParent() + File.separator;
        Path logs = Files.createDirectories(data.resolve("logs"));
        Path db = data.resolve("trade_data.duckdb");
        Path wal = Path.of(db + ".wal");
        Path ackLog = data.resolve("acks.log");
        Path repo = data.resolve("backup");
        Path key = data.resolve("duckguard.key");
        Path restored = data.resolve("restored.duckdb");
        Path asOf = data.resolve("as_of.duckdb");
        // Absolute paths in the agent options: the child's working directory is demo-data/logs (where the harness
        // keeps its per-child logs), so paths relative to the repository top would not resolve there.
        String agentOptions = "repository=" + repo + ",key-file=" + key + ",mode=sync,checkpoint.interval=2s";

        headline("duckguard demo: kill -9, then the disk dies, then restore");
        // Printed as is (not through say): the one place the reader sees where everything is.
        System.out.println("   working in " + data + " (wiped first; child logs in " + data.relativize(logs) + "/);"
                + " paths below are relative to " + top);

        // ---------------------------------------------------------------- 1. trade, protected
        headline("1. A trading app that knows nothing of duckguard starts, with the agent in sync mode");
        say("java -javaagent:" + ChildJvm.agentJar() + "=" + agentOptions);
        say("     ... TradingApp --db " + db.getFileName() + " --threads 4 --ddl   (DuckDB " + ChildJvm.duckdbVersion()
                + ")");
        say("In sync mode a commit returns to the app only once its WAL bytes are encrypted and fsynced in the backup.");
        Instant killedAt;
        try (ChildJvm.Handle app = new ChildJvm().agent(agentOptions).mainClass(TradingApp.class.getName())
                .args("--db", db.toString(), "--ack-log", ackLog.toString(), "--threads", "4", "--seconds", "120",
                        // The schema change and the 130,000-row transaction early, so both happen before the kill.
                        "--ddl", "--ddl-at", "40", "--big-txn-at", "150")
                .workDir(logs).name("app").start()) {
            Follower follow = new Follower(app);
            follow.until(() -> app.stdout().stream().anyMatch("READY"::equals), START, "the app did not start");
            follow.forAtLeast(TRADING);
            // On a slow machine the big transaction may still be running: wait a little for it, it is part of the story.
            follow.until(() -> app.stdout().stream().anyMatch(l -> l.startsWith("BIG_TXN ")), Duration.ofSeconds(15),
                    null);
            if (!app.isAlive()) {
                throw new DemoFailure("the app stopped by itself; see " + app.logFile());
            }

            // ------------------------------------------------------------ 2. kill -9
            headline("2. kill -9 while it trades (no shutdown hook, no checkpoint, nothing flushed)");
            killedAt = Instant.now();
            int exit = app.kill9();
            follow.pump();
            say("app killed, exit code " + exit + (exit == 137 ? " (SIGKILL)" : ""));
            if (app.stdout().stream().anyMatch(l -> l.startsWith("FATAL"))) {
                throw new DemoFailure("the app failed before the kill; see " + app.logFile());
            }
        }
        List<AckLog.Entry> acks = AckLog.read(ackLog);
        long acked = acks.stream().filter(AckLog.Entry::acknowledged).count();
        say("the app's own fsynced ack log: " + acked + " transactions acknowledged as committed, "
                + (acks.size() - acked) + " rolled back by the app");

        // ---------------------------------------------------------------- 3. disk loss
        headline("3. The disk dies: the database file and its WAL are gone");
        Files.deleteIfExists(db);
        Files.deleteIfExists(wal);
        say("deleted " + db + " and " + wal);

        // ---------------------------------------------------------------- 4. list + restore
        headline("4. Restore from the encrypted repository with the CLI");
        cli(logs, "list", "--repository", repo.toString(), "--key-file", key.toString());
        cli(logs, "restore", "--repository", repo.toString(), "--key-file", key.toString(), "--to", "latest",
                "--output", restored.toString());

        // ---------------------------------------------------------------- 5. verify
        headline("5. Check the restored database against the app's ack log");
        Verification v = verify(restored, acks);
        if (!v.ok()) {
            throw new DemoFailure("the restored database does not match the ack log:\n" + v.describe());
        }
        say("every one of the " + v.acked() + " acknowledged transactions is in the restored database; none partial"
                + (v.unackedButPresent() > 0 ? " (plus " + v.unackedButPresent() + " committed just before the kill,"
                + " whose ack the app had not logged yet)" : "") + "; none of the rolled-back ones");

        // ---------------------------------------------------------------- 6. point in time
        Instant pit = killedAt.minus(PIT_BEFORE_KILL).truncatedTo(ChronoUnit.MILLIS);
        headline("6. Point-in-time restore: the state as of " + pit + ", " + PIT_BEFORE_KILL.toSeconds()
                + " s before the kill");
        cli(logs, "restore", "--repository", repo.toString(), "--key-file", key.toString(), "--to", pit.toString(),
                "--output", asOf.toString());
        // What must be there: every transaction acknowledged at or before the instant (its commit returned even
        // earlier), and no rolled-back one. Later acks are left out of this check: they may or may not be present.
        List<AckLog.Entry> ackedByThen = acks.stream()
                .filter(e -> !e.acknowledged() || e.epochMillis() <= pit.toEpochMilli()).toList();
        Verification byThen = verify(asOf, ackedByThen);
        if (!byThen.ok()) {
            throw new DemoFailure("the point-in-time restore misses transactions acknowledged before " + pit + ":\n"
                    + byThen.describe());
        }
        Verification all = verify(asOf, acks);
        int contained = all.acked() - all.missingAcked().size();
        say(asOf + " holds " + contained + " of the " + all.acked() + " acknowledged transactions:"
                + " all " + byThen.acked() + " acknowledged by " + pit
                + (contained > byThen.acked() ? " (+" + (contained - byThen.acked()) + " committed by then,"
                + " acknowledged a moment later)" : "") + "; none partial");

        headline("Done in " + elapsed() + ": nothing the app was told is committed was lost.");
    }

    // ------------------------------------------------------------------ steps

    /** Runs the agent jar as a CLI, echoing its command and output; a non-zero exit fails the demo. */
    private void cli(Path logs, String... args) throws IOException, InterruptedException {
        say("$ java -jar " + ChildJvm.agentJar() + " " + String.join(" ", args));
        Cli.Result r = new Cli().workDir(logs).run(args);
        r.stdout().forEach(l -> speak("cli", l));
        r.stderr().forEach(l -> speak("cli", l));
        if (!r.ok()) {
            throw new DemoFailure("the CLI failed:\n" + r.output());
        }
    }

    /**
     * Checks a restored file with {@link ReferenceState}, in this JVM. The restore wrote it with the app's DuckDB
     * version, so this JVM's driver must be that version (a newer file format could not be opened by an older one).
     */
    private static Verification verify(Path dbFile, List<AckLog.Entry> log) throws Exception {
        String here = ChildJvm.classpathEntryOf(org.duckdb.DuckDBDriver.class).getFileName().toString();
        if (!here.equals("duckdb_jdbc-" + ChildJvm.duckdbVersion() + ".jar")) {
            throw new DemoFailure("the demo checks with " + here + " but the app ran DuckDB " + ChildJvm.duckdbVersion());
        }
        Properties readOnly = new Properties();
        readOnly.setProperty("duckdb.read_only", "true"); // only looking: the check must not change the evidence
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + dbFile, readOnly)) {
            return ReferenceState.verify(log, c);
        }
    }

    // ------------------------------------------------------------------ narration

    /**
     * Echoes what a reader wants from the running app: its own protocol lines (READY, PROGRESS, the DDL and the
     * big transaction) and the agent's log lines (stderr lines starting with "duckguard"). The harness collects the
     * child's lines; this polls them, so nothing in the harness has to know about narration.
     */
    private final class Follower {
        private final ChildJvm.Handle app;
        private int outSeen;
        private int errSeen;

        Follower(ChildJvm.Handle app) {
            this.app = app;
        }

        void pump() {
            List<String> out = app.stdout();
            for (; outSeen < out.size(); outSeen++) {
                String l = out.get(outSeen);
                if (l.equals("READY") || l.startsWith("PROGRESS") || l.startsWith("BIG_TXN") || l.startsWith("DDL")
                        || l.startsWith("FATAL")) {
                    speak("app", l);
                }
            }
            List<String> err = app.stderr();
            for (; errSeen < err.size(); errSeen++) {
                String l = err.get(errSeen);
                if (l.startsWith("duckguard")) {
                    speak("agent", l.replaceFirst("^duckguard \\S+ ", "")); // the timestamp: the demo prints its own
                }
            }
        }

        /** Echoes until {@code done}; past {@code timeout} fails with {@code failure}, or just returns if null. */
        void until(BooleanSupplier done, Duration timeout, String failure) throws InterruptedException {
            long deadline = System.nanoTime() + timeout.toNanos();
            while (!done.getAsBoolean()) {
                pump();
                if (!app.isAlive()) {
                    pump();
                    throw new DemoFailure("the app exited early; see " + app.logFile());
                }
                if (System.nanoTime() > deadline) {
                    if (failure != null) {
                        throw new DemoFailure(failure + " within " + timeout.toSeconds() + " s; see " + app.logFile());
                    }
                    return;
                }
                Thread.sleep(100);
            }
            pump();
        }

        void forAtLeast(Duration d) throws InterruptedException {
            long end = System.nanoTime() + d.toNanos();
            until(() -> System.nanoTime() >= end, d.plusSeconds(1), null);
        }
    }

    private void headline(String s) {
        System.out.println();
        System.out.println("== " + s);
    }

    private void say(String s) {
        System.out.println("   " + relative(s));
    }

    /** A line from someone else, marked with who speaks and when (seconds since the demo began). */
    private void speak(String who, String line) {
        System.out.printf("   [%5.1fs] %-5s | %s%n", (System.nanoTime() - t0) / 1e9, who, relative(line));
    }

    /** Shortens the absolute paths in a line to paths relative to the repository top. */
    private String relative(String line) {
        return top.isEmpty() ? line : line.replace(top, "");
    }

    private String elapsed() {
        return String.format("%.1f s", (System.nanoTime() - t0) / 1e9);
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }

    /** A check the demo makes failed: reported as one clear message, exit code 1. */
    private static final class DemoFailure extends RuntimeException {
        DemoFailure(String message) {
            super(message);
        }
    }
}
