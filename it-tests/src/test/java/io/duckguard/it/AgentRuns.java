package io.duckguard.it;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.it.harness.ChildJvm;
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

    /**
     * Makes a CLI restore of a small database wait for the native AES-GCM as a large one does, so that a test sees
     * the bundled library load from the real jar.
     */
    static final String AWAIT_NATIVE_AES_GCM = "-Dduckguard.test.warm-up-from-bytes=0";
    static final String DEBUG = "-Dduckguard.debug=true";

    /**
     * The CLI restore kept C2 to the JDK's cryptography (cli.ShortRunJit): the agent jar's manifest opens the JDK
     * internal it needs, and this JVM's diagnostic command took the directive. Needs {@link #DEBUG}.
     */
    static void assertShortRunJit(Cli.Result r) {
        org.junit.jupiter.api.Assertions.assertTrue(r.stderr().stream()
                .anyMatch(l -> l.contains("compiler directive added: C2 only for the JDK's cryptography")), r::output);
    }

    /** The restore decrypted with the bundled native AES-GCM, and the JVM printed no warning about it (Java 24+). */
    static void assertNativeAesGcm(Cli.Result r) {
        org.junit.jupiter.api.Assertions.assertTrue(
                r.stdout().stream().anyMatch(l -> l.contains("; AES-GCM: native (Amazon Corretto Crypto Provider ")), r::output);
        org.junit.jupiter.api.Assertions.assertTrue(r.stderr().stream().noneMatch(l -> l.startsWith("WARNING")), r::output);
    }

    /** {@code java -jar duckguard-agent.jar ARGS} in {@code dir}. */
    static Cli.Result cli(Path dir, String... args) throws Exception {
        return new Cli().workDir(dir).timeout(Duration.ofMinutes(2)).run(args);
    }

    /**
     * Neither the app's own fatal error (a line starting FATAL) nor DuckDB's: a "FATAL Error" in a FAILED line means
     * DuckDB invalidated the database, which the agent must never cause. (DuckDB 1.5.6 and 2.0.0.1 do it by
     * themselves when DDL overlaps other writes; the TradingApp runs its DDL alone for that reason.)
     */
    static boolean noFatal(ChildJvm.Handle app) {
        return app.stdout().stream().noneMatch(l -> l.startsWith("FATAL") || l.contains("FATAL Error"));
    }

    static void assertNoFatal(ChildJvm.Handle app, String ctx) {
        assertTrue(noFatal(app), () -> ctx + ": fatal error in the app\n" + app.output());
    }
}
