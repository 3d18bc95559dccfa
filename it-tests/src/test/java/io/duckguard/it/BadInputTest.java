package io.duckguard.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.it.harness.ChildJvm;
import io.duckguard.it.harness.Cli;
import io.duckguard.it.harness.WorkDirs;
import io.duckguard.it.host.TradingApp;
import java.io.RandomAccessFile;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Bad options, keys and repositories: one clear line naming the problem; the app keeps running (unprotected, and
 * says so) unless required=true; the CLI exits non-zero and overwrites nothing.
 */
class BadInputTest {
    static final Duration START = Duration.ofSeconds(60);

    /** Runs the app to completion with these agent options; returns it (already exited). */
    private static ChildJvm.Handle runApp(Path dir, String name, Path db, String opts, String... jvmArgs) throws Exception {
        ChildJvm.Handle app = new ChildJvm().duckdbVersion(ChildJvm.duckdbVersion()).agent(opts).jvmArgs(jvmArgs)
                .mainClass(TradingApp.class.getName())
                .args("--db", db.toString(), "--threads", "1", "--txns", "40", "--big-txn-rows", "0")
                .workDir(dir).name(name).start();
        app.waitFor(START);
        return app;
    }

    private static String agentLines(ChildJvm.Handle h) {
        return String.join("\n", h.stderr().stream().filter(l -> l.startsWith("duckguard")).toList());
    }

    /** A work directory holding a repository (and its key) that protected t.duckdb once. */
    private record Protected(Path dir, Path repo, Path key) {}

    private static Protected protectedRepository(String name) throws Exception {
        Path dir = WorkDirs.create(BadInputTest.class, name);
        Protected p = new Protected(dir, dir.resolve("repo"), dir.resolve("key"));
        protectOnce(dir, dir.resolve("t.duckdb"), p.repo(), p.key());
        return p;
    }

    /** Creates a repository protecting {@code db} with {@code key}. */
    private static void protectOnce(Path dir, Path db, Path repo, Path key) throws Exception {
        ChildJvm.Handle app = runApp(dir, "first", db, AgentRuns.options(repo, key, ""));
        assertEquals(0, app.process().exitValue(), app::output);
        assertTrue(agentLines(app).contains("protected"), app::output);
    }

    @Test
    @Timeout(120)
    void unknownOptionIsOneClearLineTheAppRunsUnprotectedAndJmxSaysSo() throws Exception {
        Path dir = WorkDirs.create(BadInputTest.class, "unknown-option");
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        try (ChildJvm.Handle app = new ChildJvm().duckdbVersion(ChildJvm.duckdbVersion())
                .agent(AgentRuns.options(dir.resolve("repo"), dir.resolve("key"), "mode=sync,checkpiont.interval=1m"))
                .jvmArgs("-Dcom.sun.management.jmxremote.port=" + port, "-Dcom.sun.management.jmxremote.authenticate=false",
                        "-Dcom.sun.management.jmxremote.ssl=false", "-Djava.rmi.server.hostname=127.0.0.1")
                .mainClass(TradingApp.class.getName())
                .args("--db", dir.resolve("t.duckdb").toString(), "--threads", "1", "--seconds", "60", "--big-txn-rows", "0")
                .workDir(dir).name("app").start()) {
            app.waitForLine("^READY$", START);
            String lines = agentLines(app);
            assertTrue(lines.contains("unknown option 'checkpiont.interval'"), app::output);
            assertTrue(lines.contains("UNPROTECTED"), app::output);
            assertEquals(1, app.stderr().stream().filter(l -> l.contains("unknown option")).count(), app::output);
            try (JMXConnector jc = JMXConnectorFactory.connect(
                    new JMXServiceURL("service:jmx:rmi:///jndi/rmi://127.0.0.1:" + port + "/jmxrmi"))) {
                MBeanServerConnection c = jc.getMBeanServerConnection();
                ObjectName agent = new ObjectName("io.duckguard:type=Agent");
                assertEquals(Boolean.FALSE, c.getAttribute(agent, "Healthy"));
                assertTrue(((String) c.getAttribute(agent, "HealthReason")).contains("checkpiont.interval"));
            }
            app.waitForLine("^PROGRESS ", START); // the app trades on
            app.kill9();
        }
        assertFalse(Files.exists(dir.resolve("repo")), "nothing written with invalid options");
    }

    @Test
    @Timeout(120)
    void requiredTrueStopsTheJvmBeforeTheApp() throws Exception {
        Path dir = WorkDirs.create(BadInputTest.class, "required");
        ChildJvm.Handle app = runApp(dir, "app", dir.resolve("t.duckdb"), "repository=" + dir.resolve("repo") + ",mode=fast,required=true");
        assertNotEquals(0, app.process().exitValue(), app::output);
        assertFalse(app.stdout().contains("READY"), "the app must not start: " + app.output());
        assertTrue(agentLines(app).contains("invalid value 'fast' for option mode"), app::output);
        assertTrue(agentLines(app).contains("required=true"), app::output);
    }

    @Test
    @Timeout(120)
    void wrongKeyAtStartIsNamedAndTheAppRuns() throws Exception {
        Path dir = WorkDirs.create(BadInputTest.class, "wrong-key");
        Path repo = dir.resolve("repo");
        protectOnce(dir, dir.resolve("t.duckdb"), repo, dir.resolve("key"));
        ChildJvm.Handle app = runApp(dir, "second", dir.resolve("t.duckdb"), AgentRuns.options(repo, dir.resolve("other.key"), ""));
        assertTrue(agentLines(app).contains("does not exist, but repository"), app::output);
        // A key that exists but is another repository's.
        ChildJvm.Handle other = runApp(dir, "other", dir.resolve("o.duckdb"), AgentRuns.options(dir.resolve("repo-o"), dir.resolve("o.key"), ""));
        assertEquals(0, other.process().exitValue(), other::output);
        ChildJvm.Handle wrong = runApp(dir, "third", dir.resolve("t.duckdb"), AgentRuns.options(repo, dir.resolve("o.key"), ""));
        assertTrue(agentLines(wrong).contains("wrong key for repository"), wrong::output);
        assertTrue(wrong.stdout().stream().anyMatch(l -> l.startsWith("DONE")), "the app still ran: " + wrong.output());
        // World-readable key file.
        Files.setPosixFilePermissions(dir.resolve("o.key"), java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
        ChildJvm.Handle loose = runApp(dir, "loose", dir.resolve("o.duckdb"), AgentRuns.options(dir.resolve("repo-o"), dir.resolve("o.key"), ""));
        assertTrue(agentLines(loose).contains("chmod 600"), loose::output);
    }

    @Test
    @Timeout(120)
    void unwritableRepositoryIsNamed() throws Exception {
        Path dir = WorkDirs.create(BadInputTest.class, "unwritable");
        Path file = dir.resolve("not-a-dir");
        Files.writeString(file, "x");
        // Tests run as root, which ignores permissions: a repository below a regular file can never be created.
        ChildJvm.Handle app = runApp(dir, "app", dir.resolve("t.duckdb"), AgentRuns.options(file.resolve("repo"), dir.resolve("key"), ""));
        assertEquals(0, app.process().exitValue(), app::output);
        assertTrue(agentLines(app).contains("not a directory"), app::output);
        assertTrue(agentLines(app).contains("UNPROTECTED"), app::output);
    }

    @Test
    @Timeout(120)
    void repositoryOfAnotherDatabaseIsRefused() throws Exception {
        Path dir = WorkDirs.create(BadInputTest.class, "other-db");
        Path repo = dir.resolve("repo");
        Path key = dir.resolve("key");
        Files.createDirectories(dir.resolve("a"));
        Files.createDirectories(dir.resolve("b"));
        protectOnce(dir, dir.resolve("a/trade.duckdb"), repo, key);
        ChildJvm.Handle app = runApp(dir, "b", dir.resolve("b/trade.duckdb"), AgentRuns.options(repo, key, ""));
        assertEquals(0, app.process().exitValue(), app::output);
        assertTrue(agentLines(app).contains("already protects database 'trade.duckdb' from"), app::output);
        assertTrue(agentLines(app).contains("NOT protected"), app::output);
    }

    @Test
    @Timeout(180)
    void cliErrorsAreOneLineAndOverwriteNothing() throws Exception {
        Protected p = protectedRepository("cli");
        Path dir = p.dir(), repo = p.repo(), key = p.key();
        Path out = dir.resolve("out.duckdb");

        Cli.Result missing = AgentRuns.cli(dir, "restore", "--repository", dir.resolve("nope").toString(), "--key-file",
                key.toString(), "--output", out.toString());
        assertEquals(1, missing.exitCode(), missing::output);
        assertTrue(missing.stderr().get(0).startsWith("duckguard: no duckguard repository"), missing::output);

        Path otherKey = dir.resolve("other.key");
        assertEquals(0, AgentRuns.cli(dir, "list", "--repository", repo.toString(), "--key-file", key.toString()).exitCode());
        protectOnce(dir, dir.resolve("o.duckdb"), dir.resolve("repo-o"), otherKey);
        Cli.Result wrongKey = AgentRuns.cli(dir, "restore", "--repository", repo.toString(), "--key-file",
                otherKey.toString(), "--output", out.toString());
        assertEquals(1, wrongKey.exitCode(), wrongKey::output);
        assertEquals(List.of(), wrongKey.stdout(), wrongKey::output);
        assertTrue(wrongKey.stderr().get(0).contains("wrong key for repository"), wrongKey::output);

        Cli.Result usage = AgentRuns.cli(dir, "restore", "--repository", repo.toString());
        assertEquals(2, usage.exitCode(), usage::output);

        // Damage one pack: restore names the object, exits 1, and leaves an existing output untouched.
        Files.writeString(out, "precious");
        Path pack;
        try (Stream<Path> s = Files.walk(repo.resolve("packs"))) {
            pack = s.filter(Files::isRegularFile).findFirst().orElseThrow();
        }
        try (RandomAccessFile f = new RandomAccessFile(pack.toFile(), "rw")) {
            f.seek(f.length() / 2);
            int b = f.read();
            f.seek(f.length() / 2);
            f.write(b ^ 0x40);
        }
        Cli.Result corrupt = AgentRuns.cli(dir, "restore", "--repository", repo.toString(), "--key-file", key.toString(),
                "--output", out.toString(), "--force");
        assertEquals(1, corrupt.exitCode(), corrupt::output);
        assertTrue(corrupt.stderr().stream().anyMatch(l -> l.startsWith("duckguard: repository object block:")), corrupt::output);
        assertEquals("precious", Files.readString(out), "a failed restore must not touch the output");

        Cli.Result exists = AgentRuns.cli(dir, "restore", "--repository", repo.toString(), "--key-file", key.toString(),
                "--output", out.toString());
        assertEquals(1, exists.exitCode(), exists::output);
        assertTrue(exists.stderr().get(0).contains("--force"), exists::output);
    }

    /**
     * A CLI restore killed with kill -9 while it materialises leaves its scratch directory (a whole database) beside
     * the output, and no output. The next restore there removes that directory, says so, and succeeds.
     */
    @Test
    @Timeout(180)
    void aRestoreKilledMidWayIsCleanedUpByTheNext() throws Exception {
        Protected p = protectedRepository("killed-restore");
        Path dir = p.dir(), repo = p.repo(), key = p.key();
        Path out = dir.resolve("out").resolve("restored.duckdb");
        String[] restore = {"restore", "--repository", repo.toString(), "--key-file", key.toString(), "--output",
                out.toString()};
        try (ChildJvm.Handle cli = new ChildJvm().jar(ChildJvm.agentJar()).name("cli-killed").args(restore)
                .jvmArgs("-Dduckguard.test.restore-chunk-delay-ms=3000").workDir(dir).start()) {
            cli.waitForLine("^restoring ", START);
            Thread.sleep(500); // inside the materialising: every chunk waits 3 s first
            assertEquals(137, cli.kill9(), cli::output);
        }
        assertEquals(1, scratchDirs(out.getParent()).size(), "the killed restore left its scratch directory");
        assertFalse(Files.exists(out), "a killed restore leaves no output");

        Cli.Result again = AgentRuns.cli(dir, restore);
        assertEquals(0, again.exitCode(), again::output);
        assertTrue(again.stdout().stream().anyMatch(l -> l.contains("left by an interrupted restore")), again::output);
        assertEquals(List.of(), scratchDirs(out.getParent()));
        assertTrue(Files.size(out) > 0);
    }

    /**
     * restore --force onto the database file of an app that is running refuses (DuckDB's lock is held by another
     * process) and touches nothing: renaming a file over it would leave the app writing to the unlinked old one.
     */
    @Test
    @Timeout(180)
    void restoreForceOntoARunningAppsDatabaseIsRefused() throws Exception {
        Protected p = protectedRepository("live-target");
        Path live = p.dir().resolve("live.duckdb");
        try (ChildJvm.Handle app = new ChildJvm().duckdbVersion(ChildJvm.duckdbVersion())
                .mainClass(TradingApp.class.getName())
                .args("--db", live.toString(), "--threads", "1", "--seconds", "60", "--big-txn-rows", "0")
                .workDir(p.dir()).name("live-app").start()) {
            app.waitForLine("^READY$", START);
            long sizeBefore = Files.size(live);
            Object inode = Files.readAttributes(live, java.nio.file.attribute.BasicFileAttributes.class).fileKey();
            Cli.Result r = AgentRuns.cli(p.dir(), "restore", "--repository", p.repo().toString(), "--key-file",
                    p.key().toString(), "--output", live.toString(), "--force");
            assertEquals(1, r.exitCode(), r::output);
            assertTrue(r.stderr().get(0).contains("is open in a running DuckDB"), r::output);
            assertEquals(inode, Files.readAttributes(live, java.nio.file.attribute.BasicFileAttributes.class).fileKey(),
                    "the live file was not replaced");
            assertTrue(Files.size(live) >= sizeBefore);
            assertTrue(app.isAlive(), app::output);
            app.kill9();
        }
        // With the app gone, the same command replaces the file.
        Cli.Result after = AgentRuns.cli(p.dir(), "restore", "--repository", p.repo().toString(), "--key-file",
                p.key().toString(), "--output", live.toString(), "--force");
        assertEquals(0, after.exitCode(), after::output);
    }

    private static List<Path> scratchDirs(Path dir) throws Exception {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().startsWith(".duckguard-restore-")).toList();
        }
    }
}
