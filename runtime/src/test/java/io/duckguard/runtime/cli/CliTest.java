package io.duckguard.runtime.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.runtime.restore.RecordedHistory;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The operator's interface: exit codes (0 done, 1 failed, 2 bad usage) and one clear line on stderr when something
 * fails, so that scripts and people can tell what happened. Cli.run writes to System.out/err, which each call here
 * captures.
 */
class CliTest {
    @TempDir
    static Path shared;
    private static RecordedHistory recorded;

    @TempDir
    Path tmp;


    private static CliRun cli(String... args) {
        return CliRun.of(args);
    }

    @BeforeAll
    static void produce() throws Exception {
        recorded = RecordedHistory.produce(shared, "");
    }

    private static String[] repoArgs(String verb, String... more) {
        List<String> a = new java.util.ArrayList<>(List.of(verb, "--repository", recorded.repository.toString(),
                "--key-file", recorded.keyFile.toString()));
        a.addAll(List.of(more));
        return a.toArray(new String[0]);
    }

    // ---------------------------------------------------------------- usage

    @ParameterizedTest
    @ValueSource(strings = {"--help", "restore --help", "list --help", "help restore", "help list", "restore -h"})
    void helpExitsZeroAndShowsUsage(String args) {
        CliRun r = cli(args.split(" "));
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("Usage:"), r.out());
    }

    @Test
    void verbHelpDescribesItsOptions() {
        CliRun r = cli("restore", "--help");
        for (String opt : new String[] {"--repository", "--key-file", "--to", "--output", "--force", "--duckdb-jar"}) {
            assertTrue(r.out().contains(opt), opt + " in " + r.out());
        }
    }

    @Test
    void versionExitsZero() {
        CliRun r = cli("--version");
        assertEquals(0, r.code());
        assertTrue(r.out().contains("duckguard"), r.out());
    }

    @Test
    void noVerbIsBadUsage() {
        CliRun r = cli();
        assertEquals(2, r.code());
        assertTrue(r.err().contains("Usage:"), r.err());
    }

    @Test
    void unknownVerbIsBadUsage() {
        CliRun r = cli("restroe", "--repository", "/r");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("restroe"), r.err());
    }

    @Test
    void missingRequiredOptionIsBadUsage() {
        CliRun r = cli("restore", "--repository", tmp.toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--output"), "names the missing option: " + r.err());
        CliRun l = cli("list");
        assertEquals(2, l.code());
        assertTrue(l.err().contains("--repository"), l.err());
    }

    @Test
    void unknownOptionIsBadUsage() {
        CliRun r = cli("list", "--repository", tmp.toString(), "--verbose");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--verbose"), r.err());
    }

    // ---------------------------------------------------------------- failures: exit 1, one line

    @Test
    void restoreFromAMissingRepositoryFailsWithOneLine() {
        Path missing = tmp.resolve("no-such-repo");
        CliRun r = cli("restore", "--repository", missing.toString(), "--output", tmp.resolve("out.duckdb").toString());
        assertEquals(1, r.code());
        assertEquals(1, r.errLines().size(), r.err());
        assertTrue(r.err().startsWith("duckguard: "), r.err());
        assertTrue(r.err().contains("no duckguard repository") && r.err().contains(missing.toString()), r.err());
        assertFalse(Files.exists(tmp.resolve("out.duckdb")));
    }

    @Test
    void listWithoutTheKeyFailsWithOneLineSayingHowToGiveIt() {
        // No --key-file and no default key (user.home is redirected to an empty directory).
        String saved = System.getProperty("user.home");
        System.setProperty("user.home", tmp.toString());
        CliRun r;
        try {
            r = cli("list", "--repository", recorded.repository.toString());
        } finally {
            System.setProperty("user.home", saved);
        }
        assertEquals(1, r.code());
        assertEquals(1, r.errLines().size(), r.err());
        assertTrue(r.err().startsWith("duckguard: ") && r.err().contains("--key-file"), r.err());
    }

    @Test
    void aBadTargetFailsWithTheAcceptedForms() {
        CliRun r = cli(repoArgs("restore", "--to", "yesterday", "--output", tmp.resolve("o.duckdb").toString()));
        assertEquals(1, r.code());
        assertEquals(1, r.errLines().size(), r.err());
        assertTrue(r.err().startsWith("duckguard: ") && r.err().contains("commit:<epoch>.<n>"), r.err());
    }

    @Test
    void anUnknownDatabaseIsNamed() {
        CliRun r = cli(repoArgs("list", "--database", "orders.duckdb"));
        assertEquals(1, r.code());
        assertTrue(r.err().contains("orders.duckdb") && r.err().contains(RecordedHistory.DB), r.err());
    }

    @Test
    void restoreRefusesAnExistingOutput() throws Exception {
        Path out = tmp.resolve("exists.duckdb");
        Files.writeString(out, "precious");
        CliRun r = cli(repoArgs("restore", "--output", out.toString()));
        assertEquals(1, r.code());
        assertTrue(r.err().startsWith("duckguard: ") && r.err().contains("--force"), r.err());
        assertEquals("precious", Files.readString(out));
    }

    // ---------------------------------------------------------------- list and restore

    @Test
    void listShowsTheDatabaseAndItsEpochs() {
        CliRun r = cli(repoArgs("list"));
        assertEquals(0, r.code(), r.err());
        String out = r.out();
        assertTrue(out.contains("repository " + recorded.repository) && out.contains("encrypted"), out);
        assertTrue(out.contains("database " + RecordedHistory.DB), out);
        assertTrue(out.contains("from " + recorded.source), "shows where the database lives: " + out);
        for (int e = 1; e <= recorded.epochs(); e++) assertTrue(out.contains("  epoch " + e + ": snapshot:" + e + " "), "epoch " + e + ": " + out);
        assertTrue(out.contains("restorable: "), out);
        String epoch3 = out.lines().filter(l -> l.startsWith("  epoch 3: ")).findFirst().orElseThrow();
        assertTrue(epoch3.contains(" MB), " + (recorded.states.get(3).size() - 1) + " commits, last "), epoch3);
    }

    @Test
    void aLineFastArgsLeavesToPicocliRunsTheSameVerb() {
        // picocli takes --commits=true, FastArgs does not: the verb then prints through picocli's writers
        String[] args = repoArgs("list", "--commits=true");
        assertFalse(FastArgs.bind(Cli.VERBS.get("list").get(), java.util.Arrays.copyOfRange(args, 1, args.length)));
        CliRun picocli = cli(args);
        assertEquals(0, picocli.code(), picocli.err());
        CliRun fast = cli(repoArgs("list", "--commits"));
        assertEquals(fast.out(), picocli.out());
        assertTrue(fast.out().contains("commit:3.1 "), fast.out());
    }

    @Test
    void listCommitsShowsEveryRestorableCommit() {
        CliRun r = cli(repoArgs("list", "--commits", "--database", RecordedHistory.DB));
        assertEquals(0, r.code(), r.err());
        for (int n = 1; n < recorded.states.get(3).size(); n++) assertTrue(r.out().contains("commit:3." + n + " "), r.out());
    }

    @Test
    void listReportsADamagedEpochAndGoesOn() throws Exception {
        Path copy = io.duckguard.runtime.testing.TestFiles.copyTree(recorded.repository, tmp.resolve("repo"));
        Path manifest = copy.resolve("databases").resolve(RecordedHistory.DB).resolve("epochs").resolve("0000000002").resolve("manifest");
        byte[] b = Files.readAllBytes(manifest);
        b[b.length / 2] ^= 1;
        Files.write(manifest, b);
        CliRun r = cli("list", "--repository", copy.toString(), "--key-file", recorded.keyFile.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("epoch 2: DAMAGED") && r.out().contains("epochs/0000000002/manifest"), r.out());
        assertTrue(r.out().contains("epoch 3: snapshot"), r.out());
    }

    @Test
    void restoreWritesTheDatabaseAndSaysWhatItDid() throws Exception {
        Path out = tmp.resolve("restored.duckdb");
        // As the real CLI does, this loads the duckdb_jdbc jar recorded for the database in its own class loader.
        CliRun r = cli(repoArgs("restore", "--to", "commit:3.2", "--output", out.toString()));
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("restored " + RecordedHistory.DB) && r.out().contains("epoch 3, 2 commits replayed"), r.out());
        assertEquals(recorded.states.get(3).get(2), RecordedHistory.fingerprint(out));

        CliRun again = cli(repoArgs("restore", "--output", out.toString(), "--force"));
        assertEquals(0, again.code(), again.err());
        assertEquals(recorded.last(), RecordedHistory.fingerprint(out));
    }
}
