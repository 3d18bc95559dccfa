package io.duckguard.runtime.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.runtime.config.AgentConfig.ConfigException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The agent's options: an operator must get exactly what the most specific source says, and a typo anywhere must
 * stop with one message that names the option (never be silently ignored: a mistyped {@code mode=sync} that fell
 * back to a default would change the durability guarantee without anyone noticing).
 */
class AgentConfigTest {
    @TempDir
    Path tmp;

    private static Properties sys(String... kv) {
        Properties p = new Properties();
        for (int i = 0; i < kv.length; i += 2) p.setProperty(kv[i], kv[i + 1]);
        return p;
    }

    private static Map<String, String> env(String... kv) {
        Map<String, String> m = new HashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put(kv[i], kv[i + 1]);
        return m;
    }

    private Path configFile(String text) throws Exception {
        Path f = tmp.resolve("duckguard.properties");
        Files.writeString(f, text);
        return f;
    }

    private static ConfigException fails(String args, Properties sys, Map<String, String> env) {
        return assertThrows(ConfigException.class, () -> AgentConfig.parse(args, sys, env));
    }

    @Test
    void defaultsApplyWhenOnlyTheRepositoryIsGiven() throws Exception {
        AgentConfig c = AgentConfig.parse("repository=" + tmp.resolve("repo"), sys(), env());
        assertEquals(tmp.resolve("repo"), c.repository);
        assertTrue(c.encrypted, "encryption is on by default (invariant 6)");
        assertEquals(AgentConfig.Mode.SYNC, c.mode);
        assertEquals(Duration.ofSeconds(1), c.maxLag);
        assertEquals(64_000_000L, c.checkpointWalSize);
        assertFalse(c.required);
        assertEquals(null, c.keyFile);
    }

    /** Each source in turn overrides all the less specific ones, for two keys at once. */
    @Test
    void precedenceIsArgsThenSystemPropertiesThenEnvironmentThenFileThenDefaults() throws Exception {
        Path file = configFile("repository=" + tmp.resolve("from-file") + "\nmode=async\nmax-lag=5s\n");
        String cfg = "config=" + file;

        AgentConfig onlyFile = AgentConfig.parse(cfg, sys(), env());
        assertEquals(tmp.resolve("from-file"), onlyFile.repository);
        assertEquals(AgentConfig.Mode.ASYNC, onlyFile.mode);
        assertEquals(Duration.ofSeconds(5), onlyFile.maxLag);

        Map<String, String> e = env("DUCKGUARD_REPOSITORY", tmp.resolve("from-env").toString(), "DUCKGUARD_MODE", "sync",
                "DUCKGUARD_MAX_LAG", "6s");
        AgentConfig envWins = AgentConfig.parse(cfg, sys(), e);
        assertEquals(tmp.resolve("from-env"), envWins.repository);
        assertEquals(AgentConfig.Mode.SYNC, envWins.mode);
        assertEquals(Duration.ofSeconds(6), envWins.maxLag);

        Properties s = sys("duckguard.repository", tmp.resolve("from-sys").toString(), "duckguard.mode", "async");
        AgentConfig sysWins = AgentConfig.parse(cfg, s, e);
        assertEquals(tmp.resolve("from-sys"), sysWins.repository);
        assertEquals(AgentConfig.Mode.ASYNC, sysWins.mode);
        assertEquals(Duration.ofSeconds(6), sysWins.maxLag, "a key a higher source does not set keeps the lower value");

        AgentConfig argsWin = AgentConfig.parse(cfg + ",repository=" + tmp.resolve("from-args") + ",mode=sync", s, e);
        assertEquals(tmp.resolve("from-args"), argsWin.repository);
        assertEquals(AgentConfig.Mode.SYNC, argsWin.mode);
    }

    @Test
    void theConfigFileMayBeNamedInTheEnvironment() throws Exception {
        Path file = configFile("repository=" + tmp.resolve("r") + "\n");
        AgentConfig c = AgentConfig.parse(null, sys(), env("DUCKGUARD_CONFIG", file.toString()));
        assertEquals(tmp.resolve("r"), c.repository);
    }

    @Test
    void aMissingConfigFileIsReportedWithItsPath() {
        Path missing = tmp.resolve("nope.properties");
        ConfigException e = fails("config=" + missing, sys(), env());
        assertTrue(e.getMessage().contains(missing.toString()), e.getMessage());
    }

    @Test
    void environmentNamesMapToDottedAndDashedKeys() throws Exception {
        AgentConfig c = AgentConfig.parse("repository=/r", sys(),
                env("DUCKGUARD_CHECKPOINT_WAL_SIZE", "1MiB", "DUCKGUARD_KEY_FILE", "/k", "DUCKGUARD_SYNC_TIMEOUT", "7s"));
        assertEquals(1 << 20, c.checkpointWalSize);
        assertEquals("1MiB", c.get("checkpoint.wal-size"));
        assertEquals(Path.of("/k"), c.keyFile);
        assertEquals(Duration.ofSeconds(7), c.syncTimeout);
        assertEquals("checkpoint.wal-size", AgentConfig.envToKey("DUCKGUARD_CHECKPOINT_WAL_SIZE"));
        assertEquals("checkpoint.interval", AgentConfig.envToKey("DUCKGUARD_CHECKPOINT_INTERVAL"));
        assertEquals("key-file", AgentConfig.envToKey("DUCKGUARD_KEY_FILE"));
    }

    @Test
    void environmentVariablesWithoutThePrefixAreIgnored() throws Exception {
        AgentConfig c = AgentConfig.parse("repository=/r", sys(), env("MODE", "fast", "PATH", "/bin"));
        assertEquals(AgentConfig.Mode.SYNC, c.mode);
    }

    // ---------------------------------------------------------------- unknown options

    @Test
    void unknownAgentArgumentIsNamed() {
        ConfigException e = fails("repository=/r,mdoe=sync", sys(), env());
        assertTrue(e.getMessage().contains("'mdoe'"), e.getMessage());
        assertTrue(e.getMessage().contains("agent argument"), e.getMessage());
        assertTrue(e.getMessage().contains("mode"), "lists the known options: " + e.getMessage());
    }

    @Test
    void unknownSystemPropertyIsNamed() {
        ConfigException e = fails("repository=/r", sys("duckguard.max_lag", "1s"), env());
        assertTrue(e.getMessage().contains("'max_lag'"), e.getMessage());
        assertTrue(e.getMessage().contains("system property"), e.getMessage());
    }

    @Test
    void unknownEnvironmentVariableIsNamed() {
        ConfigException e = fails("repository=/r", sys(), env("DUCKGUARD_REPO", "/x"));
        assertTrue(e.getMessage().contains("'repo'"), e.getMessage());
        assertTrue(e.getMessage().contains("environment"), e.getMessage());
    }

    @Test
    void unknownConfigFileKeyIsNamed() throws Exception {
        Path file = configFile("repository=/r\nchekpoint.interval=1m\n");
        ConfigException e = fails("config=" + file, sys(), env());
        assertTrue(e.getMessage().contains("'chekpoint.interval'"), e.getMessage());
        assertTrue(e.getMessage().contains(file.toString()), "names the file: " + e.getMessage());
    }

    @Test
    void agentArgumentWithoutEqualsSignIsRejected() {
        ConfigException e = fails("repository=/r,sync", sys(), env());
        assertTrue(e.getMessage().contains("'sync'"), e.getMessage());
    }

    /**
     * The CLI reads {@code DUCKGUARD_DUCKDB_JAR} (DuckDbDriver); an operator who exports it in the shell that also
     * starts the app must not have the agent refuse to start with "unknown option 'duckdb_jar'".
     */
    @Test
    void environmentVariableOfTheCliDoesNotBreakTheAgent() throws Exception {
        AgentConfig c = AgentConfig.parse("repository=/r", sys(), env("DUCKGUARD_DUCKDB_JAR", "/opt/duckdb_jdbc.jar"));
        assertEquals(Path.of("/r"), c.repository);
    }

    // ---------------------------------------------------------------- invalid values

    @ParameterizedTest(name = "{0}={1}")
    @CsvSource(delimiter = '|', value = {
        "mode|fast|sync or async",
        "max-lag|abc|500ms",
        "max-lag|0s|positive duration",
        "sync-timeout|-1s|positive duration",
        "encryption|rot13|aes-256-gcm",
        "required|maybe|true or false",
        "jmx|yes|true or false",
        "sync-failure|panic|degrade or wait",
        "checkpoint.wal-size|lots|64MB",
        "checkpoint.interval|1y|500ms",
    })
    void invalidValueNamesTheOptionTheValueAndWhatIsAccepted(String key, String value, String accepted) {
        ConfigException e = fails("repository=/r," + key + "=" + value, sys(), env());
        String m = e.getMessage();
        assertTrue(m.contains("option " + key), m);
        assertTrue(m.contains("'" + value + "'"), m);
        assertTrue(m.contains(accepted), m);
        assertTrue(m.contains("agent argument"), "names where the value came from: " + m);
    }

    @Test
    void invalidValueFromTheEnvironmentSaysSo() {
        ConfigException e = fails("repository=/r", sys(), env("DUCKGUARD_MODE", "fast"));
        assertTrue(e.getMessage().contains("environment"), e.getMessage());
        assertTrue(e.getMessage().contains("sync or async"), e.getMessage());
    }

    @Test
    void valuesAreCaseInsensitiveWhereThatIsHarmless() throws Exception {
        AgentConfig c = AgentConfig.parse("repository=/r,mode=ASYNC,encryption=NONE,required=True", sys(), env());
        assertEquals(AgentConfig.Mode.ASYNC, c.mode);
        assertFalse(c.encrypted);
        assertTrue(c.required);
    }

    @Test
    void missingRepositoryIsReported() {
        ConfigException e = fails("mode=sync", sys(), env());
        assertTrue(e.getMessage().contains("repository"), e.getMessage());
        ConfigException blank = fails("repository=  ", sys(), env());
        assertTrue(blank.getMessage().contains("repository="), blank.getMessage());
    }

    @Test
    void encryptionNoneWithAKeyFileIsAContradiction() {
        ConfigException e = fails("repository=/r,encryption=none,key-file=/k", sys(), env());
        assertTrue(e.getMessage().contains("encryption=none"), e.getMessage());
        assertTrue(e.getMessage().contains("key-file"), e.getMessage());
    }

    // ---------------------------------------------------------------- required, readable from broken options

    @Test
    void requiredIsReadableWhenOtherOptionsAreInvalid() {
        // required=true must make the agent stop the JVM when the rest is broken: so it must be found anyway.
        assertTrue(AgentConfig.requiredRequested("required=true,mode=fast,bogus=1", sys(), env()));
        assertTrue(AgentConfig.requiredRequested("mode=fast", sys("duckguard.required", "true"), env()));
        assertTrue(AgentConfig.requiredRequested(null, sys(), env("DUCKGUARD_REQUIRED", " TRUE ")));
        assertFalse(AgentConfig.requiredRequested("required=false", sys("duckguard.required", "true"), env()),
                "agent arguments win here too");
        assertFalse(AgentConfig.requiredRequested("mode=fast", sys(), env()));
    }

    @Test
    void requiredIsReadableWhenAnotherAgentArgumentIsMalformed() {
        assertTrue(AgentConfig.requiredRequested("required=true,oops", sys(), env()));
    }

    /**
     * AgentLifecycle takes "required" only from requiredRequested, even when the options are valid: with
     * required=true in the config file and a repository that cannot be opened, the app would run unprotected.
     */
    @Test
    void requiredIsReadFromTheConfigFileToo() throws Exception {
        Path file = configFile("repository=/r\nrequired=true\n");
        assertTrue(AgentConfig.parse("config=" + file, sys(), env()).required, "the full parse sees it");
        assertTrue(AgentConfig.requiredRequested("config=" + file, sys(), env()));
    }

    @Test
    void requiredIsParsedBeforeOtherValidation() {
        // The full parse also validates required first, so "required=maybe" is reported as such, not as a
        // missing repository.
        ConfigException e = fails("required=maybe", sys(), env());
        assertTrue(e.getMessage().contains("option required"), e.getMessage());
    }
}
