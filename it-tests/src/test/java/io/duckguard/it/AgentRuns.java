package io.duckguard.it;

import io.duckguard.it.harness.Cli;
import java.nio.file.Path;
import java.time.Duration;

/** Small helpers shared by the tests that run the real agent jar. */
final class AgentRuns {
    private AgentRuns() {}

    /** Agent options for a repository and key file (created on first use), plus extra {@code k=v,...}. */
    static String options(Path repo, Path key, String extra) {
        return "repository=" + repo + ",key-file=" + key + (extra == null || extra.isEmpty() ? "" : "," + extra);
    }

    /** {@code java -jar duckguard-agent.jar ARGS} in {@code dir}. */
    static Cli.Result cli(Path dir, String... args) throws Exception {
        return new Cli().workDir(dir).timeout(Duration.ofMinutes(2)).run(args);
    }
}
