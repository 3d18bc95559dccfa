package io.duckguard.it.harness;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeoutException;

/**
 * Runs the agent jar as a CLI, {@code java -jar duckguard-agent.jar <verb> ...}, in a child JVM and captures the
 * result:
 * <pre>
 *   Cli.Result r = new Cli().run("restore", "--repository", repo.toString(), "--key-file", key.toString(),
 *           "--to", "latest", "--output", out.toString());
 *   assertEquals(0, r.exitCode(), r.output());
 * </pre>
 * The CLI runs with {@code -jar}, so nothing of this module is on its class path; JVM options (e.g. a system
 * property naming a DuckDB jar, if the CLI needs one) go through {@link #jvmArgs}.
 */
public final class Cli {
    private Path javaHome = ChildJvm.currentJavaHome();
    private Path agentJar = ChildJvm.agentJar();
    private Duration timeout = Duration.ofMinutes(2);
    private Path workDir;
    private final List<String> jvmArgs = new ArrayList<>();
    private List<String> prefix = List.of();
    private final List<String[]> env = new ArrayList<>();

    /** Exit code ({@code -1} when it timed out and was killed), the output lines, and how long it took. */
    public record Result(int exitCode, boolean timedOut, List<String> stdout, List<String> stderr, Duration elapsed) {
        public boolean ok() {
            return exitCode == 0 && !timedOut;
        }

        /** Stdout followed by stderr, for assertion messages. */
        public String output() {
            return "exit " + exitCode + (timedOut ? " (timed out)" : "") + " after " + elapsed.toMillis() + " ms\n"
                    + "--- stdout\n" + String.join("\n", stdout) + "\n--- stderr\n" + String.join("\n", stderr);
        }

        public String stdoutText() {
            return String.join("\n", stdout);
        }
    }

    public Cli javaHome(Path javaHome) {
        this.javaHome = javaHome;
        return this;
    }

    public Cli agentJar(Path agentJar) {
        this.agentJar = agentJar;
        return this;
    }

    /** After this long the CLI is killed and the result says timedOut (default 2 minutes). */
    public Cli timeout(Duration timeout) {
        this.timeout = timeout;
        return this;
    }

    /** Working directory (default: a new {@link WorkDirs} directory). Relative CLI paths resolve against it. */
    public Cli workDir(Path workDir) {
        this.workDir = workDir;
        return this;
    }

    public Cli jvmArgs(String... args) {
        this.jvmArgs.addAll(Arrays.asList(args));
        return this;
    }

    /** A command the CLI's JVM runs under, e.g. {@code strace ... --} ({@link FsyncTrace}). */
    public Cli prefix(List<String> command) {
        this.prefix = List.copyOf(command);
        return this;
    }

    public Cli env(String key, String value) {
        this.env.add(new String[] {key, value});
        return this;
    }

    /** Runs {@code java -jar <agent jar> args...} and waits for it (up to the timeout). */
    public Result run(String... args) throws IOException, InterruptedException {
        if (!java.nio.file.Files.isRegularFile(agentJar)) {
            throw new IllegalStateException("agent jar not built: " + agentJar);
        }
        ChildJvm jvm = new ChildJvm().javaHome(javaHome).jar(agentJar).name("cli").args(args)
                .jvmArgs(jvmArgs.toArray(String[]::new)).prefix(prefix).workDir(workDir != null ? workDir : WorkDirs.create("cli"));
        env.forEach(kv -> jvm.env(kv[0], kv[1]));
        long t0 = System.nanoTime();
        try (ChildJvm.Handle h = jvm.start()) {
            int code;
            boolean timedOut = false;
            try {
                code = h.waitFor(timeout);
            } catch (TimeoutException e) {
                h.kill9();
                code = -1;
                timedOut = true;
            }
            return new Result(code, timedOut, h.stdout(), h.stderr(), Duration.ofNanos(System.nanoTime() - t0));
        }
    }
}
