package io.duckguard.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.duckguard.it.harness.ChildJvm;
import io.duckguard.it.harness.Cli;
import io.duckguard.it.harness.WorkDirs;
import io.duckguard.it.host.AckLog;
import io.duckguard.it.host.ReferenceState.Verification;
import io.duckguard.it.host.TradingApp;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Runtime attach ({@code jcmd <pid> JVMTI.agent_load <jar> <options>}) to an app that has been trading without the
 * agent: from then on invariant 1 holds, and the restore also holds everything acknowledged BEFORE the attach (it
 * lives in the database file and the WAL the agent takes as its base when it attaches). The app is killed with
 * kill -9 a few seconds after the attach, its disk "dies", and the restore of the latest state is checked against
 * its ack log.
 *
 * <p>Before the attach the app has already done its DDL and its 130,000-row transaction, so the base the agent
 * adopts holds schema changes and a WAL (or a checkpointed file) of some size, not just a few small commits.
 */
class AttachTest {
    static final Duration START = Duration.ofSeconds(60);
    /** How long the protected app keeps trading between the agent's "protected" line and the kill. */
    static final long AFTER_ATTACH_MS = 2500;

    /** Java 17 (this JVM's JDK) with both DuckDB versions; Java 25, where dynamic agent loading is restricted, once. */
    static Stream<Arguments> hosts() {
        Stream<Arguments> current = ChildJvm.duckdbVersions().stream()
                .map(v -> Arguments.of(Runtime.version().feature(), v));
        return Stream.concat(current, Stream.of(Arguments.of(25, ChildJvm.duckdbVersion())));
    }

    @ParameterizedTest(name = "Java {0}, DuckDB {1}")
    @MethodSource("hosts")
    @Timeout(300)
    void attachedAtRuntimeThenKillAndDiskLossRestoresEveryAcknowledgedCommit(int java, String version) throws Exception {
        Path javaHome;
        if (java == Runtime.version().feature()) {
            javaHome = ChildJvm.currentJavaHome();
        } else {
            assumeTrue(ChildJvm.hasJava25(), "Temurin 25 is not installed");
            javaHome = ChildJvm.JAVA_25;
        }
        String ctx = "Java " + java + ", DuckDB " + version;
        Path dir = WorkDirs.create(AttachTest.class, "attach-java" + java + "-" + version);
        Path db = dir.resolve("trade_data.duckdb");
        Path ack = dir.resolve("acks.log");
        Path repo = dir.resolve("backup");
        Path key = dir.resolve("key");
        // A short checkpoint interval: the seconds after the attach then also cross agent-driven checkpoints, so
        // the restore is not just "the attach base + its WAL".
        String options = AgentRuns.options(repo, key, "mode=sync,checkpoint.interval=1s");
        int ackedBeforeAttach;
        int ackedWhenProtected;
        try (ChildJvm.Handle app = new ChildJvm().javaHome(javaHome).duckdbVersion(version)
                // No .agent(...): the app starts unprotected. On JDK 21+ loading an agent into a running JVM prints
                // a warning (and a later JDK will refuse it) unless the JVM allows it. JDK 17 accepts the same flag
                // (it is on by default there), so it is passed everywhere.
                .jvmArgs("-XX:+EnableDynamicAgentLoading")
                .mainClass(TradingApp.class.getName())
                .args("--db", db.toString(), "--ack-log", ack.toString(), "--threads", "4", "--seconds", "120",
                        "--ddl", "--ddl-at", "20", "--big-txn-at", "60")
                .workDir(dir).name("app").start()) {
            app.waitForLine("^READY$", START);
            // The one-off operations first (see the class comment), then at least one PROGRESS line after them.
            app.waitForLine("^DDL ddl_index ", START);
            app.waitForLine("^BIG_TXN ", START);
            int from = app.stdoutLineCount();
            app.waitForLine("^PROGRESS acked=[1-9]", START, from);
            AgentRuns.assertNoFatal(app, ctx + ", before the attach");
            ackedBeforeAttach = acknowledged(ack);

            String jcmdOut = jcmdAgentLoad(javaHome, app.pid(), ChildJvm.agentJar(), options, dir);
            // jcmd reports "return code: 0" whenever agentmain returned, even if the agent rejected its options
            // (it logs that and leaves the app unprotected): its output alone proves little, the agent's log decides.
            assertTrue(jcmdOut.contains("return code: 0"), () -> ctx + ": jcmd failed:\n" + jcmdOut);
            app.waitForStderrLine("protected \\(sync mode\\)", START);
            ackedWhenProtected = acknowledged(ack);
            Thread.sleep(AFTER_ATTACH_MS);

            assertTrue(app.isAlive(), () -> ctx + ": the app stopped by itself\n" + app.output());
            assertEquals(137, app.kill9(), () -> ctx + ": not killed by SIGKILL\n" + app.output());
            AgentRuns.assertNoFatal(app, ctx);
            assertTrue(app.stderr().stream().noneMatch(l -> l.contains(" ERROR ")),
                    () -> ctx + ": agent error\n" + app.output());
            assertTrue(app.stderr().stream().noneMatch(l -> l.contains("agent has been loaded dynamically")),
                    () -> ctx + ": the JVM warned about the dynamic load\n" + app.output());
        }
        int acked = acknowledged(ack);
        assertTrue(ackedBeforeAttach > 0, () -> ctx + ": nothing acknowledged before the attach");

        // The disk with the database dies.
        Files.deleteIfExists(db);
        Files.deleteIfExists(Path.of(db + ".wal"));
        Path restored = dir.resolve("restored.duckdb");
        Cli.Result r = new Cli().javaHome(javaHome).workDir(dir).timeout(Duration.ofMinutes(2)).run("restore",
                "--repository", repo.toString(), "--key-file", key.toString(), "--to", "latest",
                "--output", restored.toString());
        assertEquals(0, r.exitCode(), () -> ctx + ": restore failed\n" + r.output());
        assertTrue(r.stdoutText().contains("restored trade_data.duckdb"), () -> ctx + "\n" + r.output());

        Verification v;
        try {
            v = Inspections.inspect(version, restored, ack, false, ctx).verification();
        } catch (Exception | AssertionError e) {
            // Typically "Table with name applied_txns does not exist": the restore delivered a database without the
            // app's schema, i.e. without anything committed before the attach. Say so rather than only the SQL error.
            throw new AssertionError(ctx + ": the restored database cannot be checked against the ack log (" + acked
                    + " acknowledged, " + ackedBeforeAttach + " of them before the attach); the restore said:\n"
                    + r.stdoutText(), e);
        }
        assertEquals(acked, v.acked(), () -> ctx + ": " + v.describe());
        assertEquals(List.of(), v.missingAcked(), () -> ctx + ": acknowledged commits lost (" + ackedBeforeAttach
                + " were acknowledged before the attach): " + v.describe());
        assertEquals(List.of(), v.partial(), () -> ctx + ": partial transactions: " + v.describe());
        assertEquals(List.of(), v.rolledBackButPresent(), () -> ctx + ": " + v.describe());
        assertTrue(v.ok(), () -> ctx + ": " + v.describe());
        // Checked last, so that a loss above is what a failure reports first: protection must not stop the app.
        // In sync mode a commit waits for the repository, so a stuck agent shows here as no acks at all.
        assertTrue(acked > ackedWhenProtected, () -> ctx + ": the app acknowledged no commit in the "
                + AFTER_ATTACH_MS + " ms after the agent said it protects the database (" + ackedWhenProtected
                + " acknowledged until then); commits stalled");
    }

    private static int acknowledged(Path ackLog) throws IOException {
        return (int) AckLog.read(ackLog).stream().filter(AckLog.Entry::acknowledged).count();
    }

    /**
     * {@code jcmd <pid> JVMTI.agent_load <jar> "<options>"}, with the jcmd of the target's JDK; returns its output
     * (also kept in {@code dir/jcmd.log}).
     *
     * <p>jcmd joins its arguments into one command line that the target JVM parses again, and that parser reads a
     * bare {@code key=value} as one of the diagnostic command's own named options: {@code repository=...} would
     * arrive cut off at the first '='. So the options go as one argv element that itself carries double quotes,
     * exactly what {@code jcmd PID JVMTI.agent_load JAR '"repository=...,mode=sync"'} passes from a shell.
     */
    private static String jcmdAgentLoad(Path javaHome, long pid, Path agentJar, String options, Path dir)
            throws IOException, InterruptedException {
        List<String> cmd = List.of(javaHome.resolve("bin/jcmd").toString(), Long.toString(pid), "JVMTI.agent_load",
                agentJar.toAbsolutePath().toString(), '"' + options + '"');
        // Output to a file, not a pipe: nothing can block on a full pipe, and the wait below can time out.
        Path log = dir.resolve("jcmd.log");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        p.getOutputStream().close();
        boolean done = p.waitFor(60, TimeUnit.SECONDS);
        if (!done) {
            p.destroyForcibly().waitFor();
        }
        String out = "# " + String.join(" ", cmd) + "\n" + Files.readString(log, StandardCharsets.UTF_8);
        assertTrue(done, () -> "jcmd did not finish within 60 s:\n" + out);
        assertEquals(0, p.exitValue(), () -> "jcmd exited " + p.exitValue() + ":\n" + out);
        return out;
    }
}
