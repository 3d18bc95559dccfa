package io.duckguard.runtime.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.Map;
import java.util.Properties;
import org.junit.jupiter.api.Test;

/** The agent's key options: one master key source, keys.max-age, and secrets in the environment that are not options. */
class KeyOptionsTest {
    private static AgentConfig parse(String args, Map<String, String> env) throws Exception {
        return AgentConfig.parse(args, new Properties(), env);
    }

    private static String error(String args, Map<String, String> env) {
        return assertThrows(AgentConfig.ConfigException.class, () -> parse(args, env)).getMessage();
    }

    @Test
    void defaultsAndEachSource() throws Exception {
        AgentConfig c = parse("repository=/r", Map.of());
        assertEquals(Duration.ofDays(90), c.keysMaxAge);
        assertNull(c.keySource(), "the default key file");
        assertEquals("key file /k", parse("repository=/r,key-file=/k", Map.of()).keySource().describe());
        assertEquals("keystore /ks.p12", parse("repository=/r,keystore=/ks.p12,keystore-password-env=KSPW", Map.of()).keySource().describe());
        assertEquals("the passphrase in $PASS", parse("repository=/r,passphrase-env=PASS", Map.of()).keySource().describe());
        assertEquals(Duration.ofDays(30), parse("repository=/r,keys.max-age=30d", Map.of()).keysMaxAge);
    }

    @Test
    void contradictionsAreOneClearLine() {
        assertTrue(error("repository=/r,key-file=/k,passphrase-env=P", Map.of()).contains("give only one"));
        assertTrue(error("repository=/r,keystore=/ks", Map.of()).contains("keystore-password-env"));
        assertTrue(error("repository=/r,keystore-password-env=X", Map.of()).contains("without keystore"));
        assertTrue(error("repository=/r,encryption=none,passphrase-env=P", Map.of()).contains("contradicts"));
        assertTrue(error("repository=/r,keys.max-age=soon", Map.of()).contains("keys.max-age"));
    }

    @Test
    void theVariableHoldingThePassphraseIsNotMistakenForAnOption() throws Exception {
        Map<String, String> env = Map.of("DUCKGUARD_PASSPHRASE", "a long and unguessable passphrase",
                "DUCKGUARD_PASSPHRASE_ENV", "DUCKGUARD_PASSPHRASE", "DUCKGUARD_REPOSITORY", "/r");
        AgentConfig c = parse("", env);
        assertEquals("DUCKGUARD_PASSPHRASE", c.passphraseEnv);
        assertEquals("the passphrase in $DUCKGUARD_PASSPHRASE", c.keySource().describe());
        // Any other unknown DUCKGUARD_ variable is still an error.
        assertTrue(error("repository=/r", Map.of("DUCKGUARD_PASSPHRASE", "x")).contains("unknown option"));
    }
}
