package io.duckguard.it.harness;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.CodeSource;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.MatchResult;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Builds and starts a child JVM: a chosen JDK, a chosen DuckDB driver version, with or without the duckguard agent,
 * running a main class of this module (the host app, the inspector) or a jar ({@code java -jar}, for the CLI).
 *
 * <pre>
 *   try (ChildJvm.Handle app = new ChildJvm()
 *           .duckdbVersion(ChildJvm.duckdbNextVersion())
 *           .agent("repository=" + repo + ",key-file=" + key + ",mode=sync")
 *           .mainClass(TradingApp.class.getName()).args("--db", db.toString(), "--seconds", "30")
 *           .workDir(dir).start()) {
 *       app.waitForLine("READY", Duration.ofSeconds(20));
 *       app.kill9();
 *   }
 * </pre>
 *
 * <p>Class path of a main-class child: this module's classes (where {@code TradingApp} was loaded from) + the
 * DuckDB jar of the chosen version from {@code duckguard.duckdb.dir} (copied there by the build) + HdrHistogram (as
 * found on this JVM's class path) + {@link #classpath extra entries}. The test JVM's own DuckDB is never passed on.
 *
 * <p>Each child gets its own {@code java.io.tmpdir} under its work dir, removed when the child has exited: the
 * DuckDB driver extracts its ~60 MB native library there on every start and only deletes it at a normal exit, so
 * every kill -9 would otherwise leave one behind in /tmp.
 */
public final class ChildJvm {

    /** Temurin 25 on these machines, or null where it is not installed. */
    public static final Path JAVA_25 = existingDir(Path.of("/usr/lib/jvm/temurin-25-jdk-amd64"));

    private static final AtomicInteger COUNTER = new AtomicInteger();

    private Path javaHome = currentJavaHome();
    private String duckdbVersion = duckdbVersion();
    private String agentOptions;
    private Path agentJar;
    private String mainClass;
    private Path jar;
    private final List<String> args = new ArrayList<>();
    private final List<String> jvmArgs = new ArrayList<>();
    private List<String> prefix = List.of();
    private final List<Path> extraClasspath = new ArrayList<>();
    private final Map<String, String> env = new LinkedHashMap<>();
    private Path workDir;
    private String name;
    private boolean echo = Boolean.getBoolean("duckguard.it.echo");

    // ------------------------------------------------------------------ environment of the test JVM

    /** The JDK running this (test) JVM. */
    public static Path currentJavaHome() {
        return Path.of(System.getProperty("java.home"));
    }

    public static boolean hasJava25() {
        return JAVA_25 != null && Files.isExecutable(JAVA_25.resolve("bin/java"));
    }

    /** The DuckDB version the project builds against (system property {@code duckguard.duckdb.version}). */
    public static String duckdbVersion() {
        return System.getProperty("duckguard.duckdb.version", "1.5.6.0");
    }

    /** The next DuckDB version the project tests (system property {@code duckguard.duckdb.next.version}). */
    public static String duckdbNextVersion() {
        return System.getProperty("duckguard.duckdb.next.version", "2.0.0.1");
    }

    /** Both tested DuckDB versions, current first. */
    public static List<String> duckdbVersions() {
        return List.of(duckdbVersion(), duckdbNextVersion());
    }

    /** The driver jar of one DuckDB version, as copied by the build into {@code duckguard.duckdb.dir}. */
    public static Path duckdbJar(String version) {
        Path dir = Path.of(System.getProperty("duckguard.duckdb.dir", "target/duckdb")).toAbsolutePath();
        Path jar = dir.resolve("duckdb_jdbc-" + version + ".jar");
        if (!Files.isRegularFile(jar)) {
            throw new IllegalStateException("DuckDB " + version + " driver not found at " + jar
                    + " (the it-tests build copies it there in generate-resources: run mvn through Maven)");
        }
        return jar;
    }

    /** The agent jar (system property {@code duckguard.agent.jar}); may not exist yet, see {@link #agentJarExists}. */
    public static Path agentJar() {
        return Path.of(System.getProperty("duckguard.agent.jar", "../agent/target/duckguard-agent.jar"))
                .toAbsolutePath().normalize();
    }

    public static boolean agentJarExists() {
        return Files.isRegularFile(agentJar());
    }

    /** The class-path entry (directory or jar) a class was loaded from in this JVM. */
    public static Path classpathEntryOf(Class<?> type) {
        CodeSource cs = type.getProtectionDomain().getCodeSource();
        if (cs == null) {
            throw new IllegalStateException(type + " has no code source (bootstrap class?)");
        }
        try {
            return Path.of(cs.getLocation().toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    // ------------------------------------------------------------------ builder

    /** The JDK to run (default: the current one). */
    public ChildJvm javaHome(Path javaHome) {
        this.javaHome = javaHome;
        return this;
    }

    /** Which DuckDB driver to put on the class path (default {@link #duckdbVersion()}). */
    public ChildJvm duckdbVersion(String version) {
        this.duckdbVersion = version;
        return this;
    }

    /** Agent options, e.g. {@code "repository=DIR,key-file=F,mode=sync"}; null = no agent, "" = agent, no options. */
    public ChildJvm agent(String options) {
        this.agentOptions = options;
        return this;
    }

    /** A different agent jar than {@link #agentJar()}. */
    public ChildJvm agentJar(Path jar) {
        this.agentJar = jar;
        return this;
    }

    public ChildJvm mainClass(String mainClass) {
        this.mainClass = mainClass;
        this.jar = null;
        return this;
    }

    /** Run {@code java -jar jar} instead of a main class (the class path options then do not apply). */
    public ChildJvm jar(Path jar) {
        this.jar = jar;
        this.mainClass = null;
        return this;
    }

    /** Program arguments (appended). */
    public ChildJvm args(String... args) {
        this.args.addAll(Arrays.asList(args));
        return this;
    }

    public ChildJvm args(List<String> args) {
        this.args.addAll(args);
        return this;
    }

    /** JVM options (appended after the defaults, so e.g. a later -Xmx wins). */
    public ChildJvm jvmArgs(String... jvmArgs) {
        this.jvmArgs.addAll(Arrays.asList(jvmArgs));
        return this;
    }

    /** Extra class-path entries, after the standard ones. */
    public ChildJvm classpath(Path... entries) {
        this.extraClasspath.addAll(Arrays.asList(entries));
        return this;
    }

    public ChildJvm env(String key, String value) {
        this.env.put(key, value);
        return this;
    }

    /** Working directory of the child, where its log and tmp dir go (default: a new {@link WorkDirs} dir). */
    public ChildJvm workDir(Path workDir) {
        this.workDir = workDir;
        return this;
    }

    /** Name used for the log file and echoed lines (default: the main class's simple name or "jar"). */
    public ChildJvm name(String name) {
        this.name = name;
        return this;
    }

    /** Also copy every child line to this JVM's stdout (default: system property {@code duckguard.it.echo}). */
    public ChildJvm echo(boolean echo) {
        this.echo = echo;
        return this;
    }

    /** A command the JVM runs under, e.g. {@code strace ... --} ({@link FsyncTrace}). */
    public ChildJvm prefix(List<String> command) {
        this.prefix = List.copyOf(command);
        return this;
    }

    /** The command line {@link #start()} would run, for logs. */
    public List<String> command() {
        return command(workDir == null ? Path.of("<workdir>") : workDir, Path.of("<tmpdir>"));
    }

    private List<String> command(Path dir, Path tmp) {
        if (mainClass == null && jar == null) {
            throw new IllegalStateException("set mainClass(...) or jar(...)");
        }
        List<String> cmd = new ArrayList<>(prefix);
        cmd.add(javaHome.resolve("bin/java").toString());
        cmd.add("-Xmx1g");
        cmd.add("-Djava.io.tmpdir=" + tmp);
        if (javaMajor(javaHome) >= 22) {
            // Silences the "restricted method" warning that DuckDB's System.load triggers on recent JDKs.
            cmd.add("--enable-native-access=ALL-UNNAMED");
        }
        if (agentOptions != null) {
            Path a = (agentJar != null ? agentJar : agentJar()).toAbsolutePath();
            if (!Files.isRegularFile(a)) {
                throw new IllegalStateException("agent jar not built: " + a);
            }
            cmd.add("-javaagent:" + a + (agentOptions.isEmpty() ? "" : "=" + agentOptions));
        }
        cmd.addAll(jvmArgs);
        if (jar != null) {
            cmd.add("-jar");
            cmd.add(jar.toAbsolutePath().toString());
        } else {
            List<String> cp = new ArrayList<>();
            cp.add(hostClasses().toString());
            cp.add(duckdbJar(duckdbVersion).toString());
            cp.add(classpathEntryOf(org.HdrHistogram.Histogram.class).toString());
            extraClasspath.forEach(p -> cp.add(p.toAbsolutePath().toString()));
            cmd.add("-cp");
            cmd.add(String.join(java.io.File.pathSeparator, cp));
            cmd.add(mainClass);
        }
        cmd.addAll(args);
        return cmd;
    }

    /** This module's main classes (target/classes), where the host app lives. */
    static Path hostClasses() {
        return classpathEntryOf(io.duckguard.it.host.TradingApp.class);
    }

    /** Starts the child; its stdout and stderr are collected line by line from now on. */
    public Handle start() throws IOException {
        String n = name != null ? name
                : mainClass != null ? mainClass.substring(mainClass.lastIndexOf('.') + 1) : "jar";
        Path dir = workDir != null ? workDir : WorkDirs.create(n);
        Files.createDirectories(dir);
        int seq = COUNTER.incrementAndGet();
        Path tmp = Files.createDirectories(dir.resolve("jvm-tmp-" + n + "-" + seq));
        List<String> cmd = command(dir, tmp);
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile());
        pb.environment().putAll(env);
        Path log = dir.resolve(n + "-" + seq + ".log");
        Files.writeString(log, "# " + String.join(" ", cmd) + "\n", StandardCharsets.UTF_8);
        Process p = pb.start();
        p.getOutputStream().close(); // the child gets no stdin (EOF at once), like CI
        return new Handle(p, n, cmd, log, tmp, echo);
    }

    // ------------------------------------------------------------------ running child

    /** A started child JVM. Closing it kills the child if it is still running. */
    public static final class Handle implements AutoCloseable {
        private final Process process;
        private final String name;
        private final List<String> command;
        private final Path logFile;
        private final Path tmpDir;
        private final Object lock = new Object();
        private final List<String> stdout = new ArrayList<>();
        private final List<String> stderr = new ArrayList<>();
        private final Thread outReader;
        private final Thread errReader;
        private final Writer log;

        private Handle(Process process, String name, List<String> command, Path logFile, Path tmpDir, boolean echo)
                throws IOException {
            this.process = process;
            this.name = name;
            this.command = List.copyOf(command);
            this.logFile = logFile;
            this.tmpDir = tmpDir;
            this.log = Files.newBufferedWriter(logFile, StandardCharsets.UTF_8,
                    java.nio.file.StandardOpenOption.APPEND);
            this.outReader = reader(process.getInputStream(), stdout, "out", echo);
            this.errReader = reader(process.getErrorStream(), stderr, "err", echo);
        }

        private Thread reader(InputStream in, List<String> sink, String stream, boolean echo) {
            Thread t = new Thread(() -> {
                try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                    String line;
                    while ((line = r.readLine()) != null) {
                        synchronized (lock) {
                            sink.add(line);
                            try {
                                log.write(stream + " " + line + "\n");
                                log.flush();
                            } catch (IOException ignored) {
                                // the log file is a convenience; the lines are kept in memory regardless
                            }
                            lock.notifyAll();
                        }
                        if (echo) {
                            System.out.println("[" + name + " " + pid() + " " + stream + "] " + line);
                        }
                    }
                } catch (IOException ignored) {
                    // stream closed: the child is gone
                } finally {
                    synchronized (lock) {
                        lock.notifyAll();
                    }
                }
            }, "child-" + name + "-" + stream);
            t.setDaemon(true);
            t.start();
            return t;
        }

        public Process process() {
            return process;
        }

        public long pid() {
            return process.pid();
        }

        public boolean isAlive() {
            return process.isAlive();
        }

        public List<String> command() {
            return command;
        }

        /** Where every stdout/stderr line is also written (prefixed "out "/"err "), under the work dir. */
        public Path logFile() {
            return logFile;
        }

        /** A snapshot of the stdout lines so far. */
        public List<String> stdout() {
            synchronized (lock) {
                return List.copyOf(stdout);
            }
        }

        public List<String> stderr() {
            synchronized (lock) {
                return List.copyOf(stderr);
            }
        }

        public int stdoutLineCount() {
            synchronized (lock) {
                return stdout.size();
            }
        }

        /** Stdout then stderr, for assertion messages (the last lines when long). */
        public String output() {
            synchronized (lock) {
                return tail("stdout", stdout) + tail("stderr", stderr);
            }
        }

        private static String tail(String what, List<String> lines) {
            int from = Math.max(0, lines.size() - 200);
            StringBuilder sb = new StringBuilder("--- " + what + (from > 0 ? " (last 200 of " + lines.size()
                    + " lines)" : "") + "\n");
            for (String l : lines.subList(from, lines.size())) {
                sb.append(l).append('\n');
            }
            return sb.toString();
        }

        /** Waits for a stderr line (any so far counts) matching {@code regex}: where the agent logs. */
        public MatchResult waitForStderrLine(String regex, Duration timeout) throws InterruptedException, TimeoutException {
            return waitFor(stderr, regex, timeout, 0);
        }

        /** Waits for a stdout line (any so far counts) matching {@code regex} (find, not full match). */
        public MatchResult waitForLine(String regex, Duration timeout) throws InterruptedException, TimeoutException {
            return waitForLine(regex, timeout, 0);
        }

        /**
         * Waits for a stdout line at index {@code fromLine} or later matching {@code regex}; returns the match
         * (groups available). Throws {@link TimeoutException} after {@code timeout}, and {@link IllegalStateException}
         * as soon as the child has exited and its output is drained without such a line; both carry the output.
         */
        public MatchResult waitForLine(String regex, Duration timeout, int fromLine)
                throws InterruptedException, TimeoutException {
            return waitFor(stdout, regex, timeout, fromLine);
        }

        private MatchResult waitFor(List<String> lines, String regex, Duration timeout, int fromLine)
                throws InterruptedException, TimeoutException {
            List<String> stdout = lines;
            Pattern p = Pattern.compile(regex);
            long deadline = System.nanoTime() + timeout.toNanos();
            int next = fromLine;
            synchronized (lock) {
                while (true) {
                    for (; next < stdout.size(); next++) {
                        Matcher m = p.matcher(stdout.get(next));
                        if (m.find()) {
                            return m.toMatchResult();
                        }
                    }
                    if (!process.isAlive() && !outReader.isAlive()) {
                        throw new IllegalStateException("child " + name + " exited (" + process.exitValue()
                                + ") without printing a line matching /" + regex + "/\n" + output());
                    }
                    long left = deadline - System.nanoTime();
                    if (left <= 0) {
                        throw new TimeoutException("no line matching /" + regex + "/ from " + name + " within "
                                + timeout + "\n" + output());
                    }
                    // Short waits: a reader thread that ended notifies, but process exit alone does not.
                    lock.wait(Math.max(1, Math.min(TimeUnit.NANOSECONDS.toMillis(left), 100)));
                }
            }
        }

        /**
         * SIGKILL, like {@code kill -9}: no shutdown hooks, no DuckDB checkpoint, files left as they are. (On Linux
         * {@link Process#destroyForcibly()} sends SIGKILL; the exit value, 137 = 128 + 9, confirms it.) Waits for the
         * process to be gone and returns its exit value.
         */
        public int kill9() throws InterruptedException {
            process.destroyForcibly();
            process.waitFor();
            drainAndCleanUp();
            return process.exitValue();
        }

        /** Waits for a normal exit; returns the exit value. On timeout the child keeps running. */
        public int waitFor(Duration timeout) throws InterruptedException, TimeoutException {
            if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                throw new TimeoutException("child " + name + " still running after " + timeout + "\n" + output());
            }
            drainAndCleanUp();
            return process.exitValue();
        }

        private void drainAndCleanUp() throws InterruptedException {
            outReader.join(5_000);
            errReader.join(5_000);
            synchronized (lock) {
                try {
                    log.close();
                } catch (IOException ignored) {
                    // best effort
                }
            }
            deleteTree(tmpDir);
        }

        /** Kills the child if still running, and removes its tmp dir. */
        @Override
        public void close() throws InterruptedException {
            if (process.isAlive()) {
                kill9();
            } else {
                drainAndCleanUp();
            }
        }
    }

    // ------------------------------------------------------------------ helpers

    static int javaMajor(Path javaHome) {
        Path release = javaHome.resolve("release");
        try {
            for (String line : Files.readAllLines(release)) {
                if (line.startsWith("JAVA_VERSION=")) {
                    String v = line.substring("JAVA_VERSION=".length()).replace("\"", "");
                    String first = v.split("[.+-]")[0];
                    return Integer.parseInt(first.equals("1") ? v.split("\\.")[1] : first);
                }
            }
        } catch (IOException | RuntimeException e) {
            // fall through: unknown
        }
        return javaHome.equals(currentJavaHome()) ? Runtime.version().feature() : 0;
    }

    static void deleteTree(Path dir) {
        if (dir == null || !Files.exists(dir)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            s.sorted((a, b) -> b.getNameCount() - a.getNameCount()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } catch (IOException | UncheckedIOException e) {
            // best effort: a leftover tmp dir under target/ is harmless
        }
    }

    private static Path existingDir(Path p) {
        return Files.isDirectory(p) ? p : null;
    }
}
