package io.duckguard.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.duckguard.it.harness.ChildJvm;
import io.duckguard.it.harness.Cli;
import io.duckguard.it.harness.WorkDirs;
import io.duckguard.it.host.AckLog;
import io.duckguard.it.host.LockProbe;
import io.duckguard.it.host.ReferenceState.Verification;
import io.duckguard.it.host.SqlErrorProbe;
import io.duckguard.it.host.TradingApp;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.regex.MatchResult;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The real agent jar in child JVMs: transparency, the POSIX lock, async mode, JMX, the Java/DuckDB matrix. */
class AgentBehaviourTest {
    static final Duration START = Duration.ofSeconds(60);

    static Stream<String> versions() {
        return ChildJvm.duckdbVersions().stream();
    }

    /** Same deterministic workload with and without the agent: the same database, and the same app errors. */
    @ParameterizedTest(name = "DuckDB {0}")
    @MethodSource("versions")
    @Timeout(180)
    void agentIsTransparent(String version) throws Exception {
        Path dir = WorkDirs.create(AgentBehaviourTest.class, "transparent-" + version);
        List<String> digests = new ArrayList<>();
        List<List<String>> errors = new ArrayList<>();
        for (String opts : new String[] {null, AgentRuns.options(dir.resolve("repo"), dir.resolve("key"), "checkpoint.interval=200ms")}) {
            String tag = opts == null ? "plain" : "agent";
            Path db = dir.resolve(tag + ".duckdb");
            Path ack = dir.resolve(tag + ".acks");
            try (ChildJvm.Handle app = new ChildJvm().duckdbVersion(version).agent(opts).mainClass(TradingApp.class.getName())
                    .args("--db", db.toString(), "--ack-log", ack.toString(), "--threads", "1", "--txns", "300",
                            "--seed", "7", "--ddl", "--checkpoint-every", "100")
                    .workDir(dir).name(tag).start()) {
                app.waitForLine("^DONE \\d+$", START);
                assertEquals(0, app.waitFor(START), app::output);
            }
            Inspections.Inspection i = Inspections.inspect(version, db, ack, true, tag);
            assertTrue(i.verification().ok(), i.verification().describe());
            digests.add(i.digest());
            try (ChildJvm.Handle probe = new ChildJvm().duckdbVersion(version).agent(opts == null ? null
                            : AgentRuns.options(dir.resolve("repo2"), dir.resolve("key2"), ""))
                    .mainClass(SqlErrorProbe.class.getName()).args(dir.resolve(tag + "-errors.duckdb").toString())
                    .workDir(dir).name(tag + "-errors").start()) {
                probe.waitForLine("^DONE$", START);
                assertEquals(0, probe.waitFor(START), probe::output);
                errors.add(probe.stdout());
            }
        }
        assertEquals(digests.get(0), digests.get(1), "the agent changed what the app wrote");
        assertEquals(errors.get(0), errors.get(1), "the agent changed the app's own SQL errors");
        assertTrue(errors.get(0).stream().filter(l -> l.startsWith("ERR ")).count() >= 5, errors.get(0).toString());
    }

    /** Invariant 4: snapshots and WAL reads never drop DuckDB's lock; another process still cannot open the file. */
    @ParameterizedTest(name = "DuckDB {0}")
    @MethodSource("versions")
    @Timeout(180)
    void anotherProcessStillCannotOpenTheDatabase(String version) throws Exception {
        Path dir = WorkDirs.create(AgentBehaviourTest.class, "lock-" + version);
        Path db = dir.resolve("trade_data.duckdb");
        try (ChildJvm.Handle app = new ChildJvm().duckdbVersion(version)
                .agent(AgentRuns.options(dir.resolve("repo"), dir.resolve("key"), "checkpoint.interval=200ms"))
                .mainClass(TradingApp.class.getName())
                .args("--db", db.toString(), "--threads", "2", "--seconds", "60", "--big-txn-rows", "0")
                .workDir(dir).name("app").start()) {
            app.waitForLine("^READY$", START);
            // Wait until the agent has been through several checkpoints and snapshots (it reads both files).
            app.waitForStderrLine("snapshot [3-9]\\d* \\(checkpoint\\)", START);
            for (String mode : new String[] {"", "--read-only"}) {
                try (ChildJvm.Handle probe = new ChildJvm().duckdbVersion(version).mainClass(LockProbe.class.getName())
                        .args(db.toString(), mode).workDir(dir).name("probe").start()) {
                    MatchResult m = probe.waitForLine("^(LOCKED|OPENED).*", START);
                    assertTrue(m.group().startsWith("LOCKED"), "another process opened the live database: " + m.group());
                    assertTrue(m.group().contains("lock"), m.group());
                }
            }
            assertTrue(app.isAlive(), app::output);
            app.kill9();
        }
    }

    /** Async mode: after kill -9, what is missing is only what was acknowledged within the lag window. */
    @Test
    @Timeout(180)
    void asyncModeLosesAtMostTheLagWindow() throws Exception {
        Path dir = WorkDirs.create(AgentBehaviourTest.class, "async");
        Path db = dir.resolve("trade_data.duckdb");
        Path ack = dir.resolve("acks.log");
        Path repo = dir.resolve("repo");
        Path key = dir.resolve("key");
        long maxLagMs = 1000;
        long killedAt;
        try (ChildJvm.Handle app = new ChildJvm().duckdbVersion(ChildJvm.duckdbVersion())
                .agent(AgentRuns.options(repo, key, "mode=async,max-lag=" + maxLagMs + "ms,checkpoint.interval=1s"))
                .mainClass(TradingApp.class.getName())
                .args("--db", db.toString(), "--ack-log", ack.toString(), "--threads", "4", "--seconds", "60")
                .workDir(dir).name("app").start()) {
            app.waitForLine("^READY$", START);
            Thread.sleep(4000);
            killedAt = System.currentTimeMillis();
            assertEquals(137, app.kill9(), app::output);
        }
        Files.delete(db);
        Files.deleteIfExists(Path.of(db + ".wal"));
        Path restored = dir.resolve("restored.duckdb");
        Cli.Result r = new Cli().workDir(dir).jvmArgs(AgentRuns.AWAIT_NATIVE_AES_GCM, AgentRuns.DEBUG).run("restore",
                "--repository", repo.toString(), "--key-file", key.toString(), "--output", restored.toString());
        assertEquals(0, r.exitCode(), r::output);
        AgentRuns.assertNativeAesGcm(r);
        AgentRuns.assertShortRunJit(r);
        Verification v = Inspections.inspect(ChildJvm.duckdbVersion(), restored, ack, false, "async").verification();
        assertEquals(List.of(), v.partial(), v.describe());
        assertEquals(List.of(), v.rolledBackButPresent(), v.describe());
        Set<Long> missing = Set.copyOf(v.missingAcked());
        // Anything acknowledged more than max-lag (plus scheduling slack on 2 busy cores) before the kill was shipped.
        long slack = 1500;
        List<String> tooOld = AckLog.read(ack).stream()
                .filter(e -> missing.contains(e.txnId()) && e.epochMillis() < killedAt - maxLagMs - slack)
                .map(e -> e.txnId() + "@" + (killedAt - e.epochMillis()) + "ms").collect(Collectors.toList());
        assertEquals(List.of(), tooOld, "async lost commits older than max-lag: " + v.describe());
        assertTrue(v.present() > 0, v.describe());
    }

    /** The JMX view: attributes readable as open types, and checkpointNow opens a new epoch. */
    @Test
    @Timeout(180)
    void jmxShowsHealthAndLagAndCheckpointsOnDemand() throws Exception {
        Path dir = WorkDirs.create(AgentBehaviourTest.class, "jmx");
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        try (ChildJvm.Handle app = new ChildJvm().duckdbVersion(ChildJvm.duckdbVersion())
                .agent(AgentRuns.options(dir.resolve("repo"), dir.resolve("key"), "mode=async,checkpoint.interval=1h"))
                .jvmArgs("-Dcom.sun.management.jmxremote.port=" + port, "-Dcom.sun.management.jmxremote.authenticate=false",
                        "-Dcom.sun.management.jmxremote.ssl=false", "-Dcom.sun.management.jmxremote.host=127.0.0.1",
                        "-Djava.rmi.server.hostname=127.0.0.1", AgentRuns.AWAIT_NATIVE_AES_GCM)
                .mainClass(TradingApp.class.getName())
                .args("--db", dir.resolve("trade_data.duckdb").toString(), "--threads", "2", "--seconds", "60",
                        "--big-txn-rows", "0")
                .workDir(dir).name("app").start()) {
            app.waitForLine("^READY$", START);
            app.waitForStderrLine("snapshot 1 ", START);
            JMXServiceURL url = new JMXServiceURL("service:jmx:rmi:///jndi/rmi://127.0.0.1:" + port + "/jmxrmi");
            try (JMXConnector jc = JMXConnectorFactory.connect(url)) {
                MBeanServerConnection c = jc.getMBeanServerConnection();
                ObjectName db = new ObjectName("io.duckguard:type=Database,name=trade_data.duckdb");
                assertEquals(Boolean.TRUE, c.getAttribute(db, "Healthy"), () -> "" + attr(c, db, "HealthReason"));
                assertEquals("async", c.getAttribute(db, "Mode"));
                for (String a : new String[] {"ShippedLagMillis", "UnshippedBytes", "RepositoryBytes", "AgentErrors",
                    "CurrentEpoch", "CommitsShipped"}) {
                    assertTrue(c.getAttribute(db, a) instanceof Long, a);
                }
                Thread.sleep(1500);
                assertTrue((Long) c.getAttribute(db, "CommitsShipped") > 0);
                assertNotEquals("", c.getAttribute(db, "LastShippedCommitTime"));
                assertTrue((Long) c.getAttribute(db, "RepositoryBytes") > 0);
                long epoch = (Long) c.getAttribute(db, "CurrentEpoch");
                c.invoke(db, "checkpointNow", new Object[0], new String[0]);
                long deadline = System.currentTimeMillis() + 20_000;
                while ((Long) c.getAttribute(db, "CurrentEpoch") == epoch && System.currentTimeMillis() < deadline) {
                    Thread.sleep(100);
                }
                assertTrue((Long) c.getAttribute(db, "CurrentEpoch") > epoch, "checkpointNow did not open a new epoch");
                ObjectName agent = new ObjectName("io.duckguard:type=Agent");
                assertEquals(Boolean.TRUE, c.getAttribute(agent, "Healthy"));
                assertEquals(0L, c.getAttribute(agent, "AdviceErrors"));
                assertEquals(0L, c.getAttribute(agent, "KeyAgeDays"), "a new repository's key is 0 days old");
                assertTrue(((String[]) c.invoke(db, "listRestorePoints", new Object[0], new String[0])).length >= 2);
                assertTrue(!((String) c.getAttribute(db, "RestorableFrom")).isEmpty());

                // A restore drill passes; then one corrupted block, and the next drill shows the failure in JMX.
                c.invoke(db, "drillNow", new Object[0], new String[0]);
                String pass = awaitDrill(c, db, "");
                assertTrue(pass.startsWith("PASS "), pass);
                assertEquals(pass.split(" ")[1], c.getAttribute(db, "LastVerifiedRestorableCommit"));
                // The drill's restore waited for the AES-GCM warm-up (as a large one does): inside the app that must
                // never load the CLI's native AES-GCM (invariant 7: the agent does not load native code of its own).
                String maps = Files.readString(Path.of("/proc", Long.toString(app.pid()), "maps"));
                assertFalse(maps.contains("Corretto"), "the native AES-GCM was loaded into the app");
                Path pack;
                try (Stream<Path> s = Files.walk(dir.resolve("repo").resolve("packs"))) {
                    pack = s.filter(Files::isRegularFile).max(java.util.Comparator.comparingLong(p -> p.toFile().length())).orElseThrow();
                }
                try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(pack.toFile(), "rw")) {
                    f.seek(f.length() / 2);
                    int b = f.read();
                    f.seek(f.length() / 2);
                    f.write(b ^ 0x20);
                }
                c.invoke(db, "drillNow", new Object[0], new String[0]);
                String fail = awaitDrill(c, db, pass);
                assertTrue(fail.startsWith("FAIL ") && fail.contains("block:"), fail);
            }
            app.kill9();
        }
    }

    private static String awaitDrill(MBeanServerConnection c, ObjectName db, String previous) throws Exception {
        long deadline = System.currentTimeMillis() + 60_000;
        while (System.currentTimeMillis() < deadline) {
            String r = (String) c.getAttribute(db, "LastDrillResult");
            if (!r.isEmpty() && !r.equals(previous)) return r;
            Thread.sleep(100);
        }
        throw new AssertionError("no drill result within 60 s");
    }

    private static Object attr(MBeanServerConnection c, ObjectName n, String a) {
        try {
            return c.getAttribute(n, a);
        } catch (Exception e) {
            return e.toString();
        }
    }

    /** The matrix: host JVM 25 with both DuckDB versions (JVM 17 runs everywhere else in the suite). */
    @ParameterizedTest(name = "Java 25, DuckDB {0}")
    @MethodSource("versions")
    @Timeout(180)
    void java25HostIsProtected(String version) throws Exception {
        assumeTrue(ChildJvm.hasJava25(), "Temurin 25 is not installed");
        Path dir = WorkDirs.create(AgentBehaviourTest.class, "java25-" + version);
        Path db = dir.resolve("trade_data.duckdb");
        Path ack = dir.resolve("acks.log");
        Path repo = dir.resolve("repo");
        Path key = dir.resolve("key");
        try (ChildJvm.Handle app = new ChildJvm().javaHome(ChildJvm.JAVA_25).duckdbVersion(version)
                .agent(AgentRuns.options(repo, key, "mode=sync,checkpoint.interval=500ms"))
                .mainClass(TradingApp.class.getName())
                .args("--db", db.toString(), "--ack-log", ack.toString(), "--threads", "4", "--seconds", "60", "--ddl")
                .workDir(dir).name("app").start()) {
            app.waitForLine("^READY$", START);
            app.waitForLine("^BIG_TXN ", START);
            Thread.sleep(1500);
            assertEquals(137, app.kill9(), app::output);
            assertTrue(app.stderr().stream().noneMatch(l -> l.contains(" ERROR ") || l.contains("Exception")), app::output);
        }
        Files.delete(db);
        Files.deleteIfExists(Path.of(db + ".wal"));
        Path restored = dir.resolve("restored.duckdb");
        Cli.Result r = new Cli().javaHome(ChildJvm.JAVA_25).workDir(dir).jvmArgs(AgentRuns.AWAIT_NATIVE_AES_GCM, AgentRuns.DEBUG)
                .run("restore", "--repository", repo.toString(), "--key-file", key.toString(), "--output", restored.toString());
        assertEquals(0, r.exitCode(), r::output);
        AgentRuns.assertNativeAesGcm(r);
        AgentRuns.assertShortRunJit(r);
        Verification v = Inspections.inspect(version, restored, ack, false, "java 25").verification();
        assertTrue(v.ok(), v.describe());
        assertTrue(v.acked() > 0);
    }

    static void assertNoAgentError(ChildJvm.Handle h) {
        assertFalse(h.stderr().stream().anyMatch(l -> l.contains(" ERROR ")), h::output);
    }
}
