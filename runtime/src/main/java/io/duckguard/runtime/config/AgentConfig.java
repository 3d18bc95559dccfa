package io.duckguard.runtime.config;

import io.duckguard.runtime.util.Durations;
import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;

/**
 * The agent's options. Sources, highest precedence first (the most specific wins):
 * <ol>
 *   <li>agent arguments {@code -javaagent:duckguard-agent.jar=k=v,k=v}</li>
 *   <li>system properties {@code -Dduckguard.k=v}</li>
 *   <li>environment {@code DUCKGUARD_K=v} (upper case, '.' and '-' become '_')</li>
 *   <li>the properties file named by {@code config=FILE} (given in any of the above)</li>
 *   <li>defaults</li>
 * </ol>
 * Every key must be known and every value valid; otherwise {@link #parse} throws one {@link ConfigException}
 * naming the option, the source, and what would be accepted.
 */
public final class AgentConfig {
    public enum Mode { SYNC, ASYNC }

    public enum SyncFailure { DEGRADE, WAIT }

    /** Known options and their defaults (null = no default). Order is the order of the documentation. */
    static final Map<String, String> DEFAULTS = new LinkedHashMap<>();

    static {
        DEFAULTS.put("repository", null);
        DEFAULTS.put("key-file", null);
        DEFAULTS.put("keystore", null);
        DEFAULTS.put("keystore-password-env", null);
        DEFAULTS.put("passphrase-env", null);
        DEFAULTS.put("encryption", "aes-256-gcm");
        DEFAULTS.put("keys.max-age", "90d");
        DEFAULTS.put("mode", "sync");
        DEFAULTS.put("max-lag", "1s");
        DEFAULTS.put("sync-timeout", "30s");
        DEFAULTS.put("sync-failure", "degrade");
        DEFAULTS.put("checkpoint.interval", "1m");
        DEFAULTS.put("checkpoint.wal-size", "64MB");
        DEFAULTS.put("retention.window", "1h");
        DEFAULTS.put("retention.snapshots", "10");
        DEFAULTS.put("retention.daily", "0");
        DEFAULTS.put("retention.weekly", "0");
        DEFAULTS.put("gc.interval", "10m");
        DEFAULTS.put("drill.interval", "24h");
        DEFAULTS.put("drill.max-io", "100MB");
        DEFAULTS.put("required", "false");
        DEFAULTS.put("jmx", "true");
        DEFAULTS.put("debug", "false");
        DEFAULTS.put("config", null);
    }

    /** Environment variables that belong to the CLI, not to the agent (an app may inherit them). */
    static final java.util.Set<String> CLI_ONLY_ENV = java.util.Set.of("DUCKGUARD_DUCKDB_JAR");

    private final Map<String, String> values;

    public final Path repository;
    public final Path keyFile;
    /** PKCS#12 keystore holding the master key, and the environment variable holding its password. */
    public final Path keystore;
    public final String keystorePasswordEnv;
    /** Environment variable holding the passphrase the master key is derived from (Argon2id). */
    public final String passphraseEnv;
    /** Warn (log, JMX) once the repository's current master key is older than this. */
    public final Duration keysMaxAge;
    private final Map<String, String> env;
    public final boolean encrypted;
    public final Mode mode;
    public final Duration maxLag;
    public final Duration syncTimeout;
    public final SyncFailure syncFailure;
    public final Duration checkpointInterval;
    public final long checkpointWalSize;
    public final io.duckguard.runtime.retention.RetentionPolicy retention;
    public final Duration gcInterval;
    public final Duration drillInterval;
    /** Bytes per second a drill may read from the repository (0 = unlimited). */
    public final long drillMaxIo;
    public final boolean required;
    public final boolean jmx;
    public final boolean debug;

    private AgentConfig(Map<String, String> v, Map<String, String> origin, Map<String, String> env) throws ConfigException {
        this.values = v;
        this.env = env;
        this.required = bool(v, origin, "required");
        String repo = v.get("repository");
        if (repo == null || repo.isBlank()) {
            throw new ConfigException("no repository given: add repository=/path/to/backup to the agent options");
        }
        this.repository = Path.of(repo).toAbsolutePath().normalize();
        this.keyFile = v.get("key-file") == null ? null : Path.of(v.get("key-file")).toAbsolutePath().normalize();
        String enc = v.get("encryption").toLowerCase(Locale.ROOT);
        if (!enc.equals("aes-256-gcm") && !enc.equals("none")) {
            throw bad(origin, "encryption", v.get("encryption"), "aes-256-gcm (default) or none");
        }
        this.encrypted = enc.equals("aes-256-gcm");
        if (!encrypted && keyFile != null) {
            throw new ConfigException("encryption=none and key-file=" + keyFile + " contradict each other; drop one");
        }
        this.keystore = v.get("keystore") == null ? null : Path.of(v.get("keystore")).toAbsolutePath().normalize();
        this.keystorePasswordEnv = v.get("keystore-password-env");
        this.passphraseEnv = v.get("passphrase-env");
        int sources = (keyFile != null ? 1 : 0) + (keystore != null ? 1 : 0) + (passphraseEnv != null ? 1 : 0);
        if (sources > 1) {
            throw new ConfigException("key-file, keystore and passphrase-env each name the master key: give only one");
        }
        if (!encrypted && sources > 0) {
            throw new ConfigException("encryption=none contradicts " + (keystore != null ? "keystore=" : "passphrase-env=")
                    + "; drop one");
        }
        if ((keystore == null) != (keystorePasswordEnv == null)) {
            throw new ConfigException(keystore == null ? "keystore-password-env is given without keystore="
                    : "keystore=" + keystore + " needs keystore-password-env=VAR (the environment variable holding its password)");
        }
        this.keysMaxAge = duration(v, origin, "keys.max-age");
        this.mode = switch (v.get("mode").toLowerCase(Locale.ROOT)) {
            case "sync" -> Mode.SYNC;
            case "async" -> Mode.ASYNC;
            default -> throw bad(origin, "mode", v.get("mode"), "sync or async");
        };
        this.syncFailure = switch (v.get("sync-failure").toLowerCase(Locale.ROOT)) {
            case "degrade" -> SyncFailure.DEGRADE;
            case "wait" -> SyncFailure.WAIT;
            default -> throw bad(origin, "sync-failure", v.get("sync-failure"), "degrade or wait");
        };
        this.maxLag = duration(v, origin, "max-lag");
        this.syncTimeout = duration(v, origin, "sync-timeout");
        this.checkpointInterval = duration(v, origin, "checkpoint.interval");
        try {
            this.checkpointWalSize = Durations.parseSize(v.get("checkpoint.wal-size"));
        } catch (IllegalArgumentException e) {
            throw bad(origin, "checkpoint.wal-size", v.get("checkpoint.wal-size"), "a size such as 64MB");
        }
        this.retention = new io.duckguard.runtime.retention.RetentionPolicy(duration(v, origin, "retention.window"),
                count(v, origin, "retention.snapshots"), count(v, origin, "retention.daily"), count(v, origin, "retention.weekly"));
        this.gcInterval = duration(v, origin, "gc.interval");
        this.drillInterval = duration(v, origin, "drill.interval");
        try {
            this.drillMaxIo = Durations.parseSize(v.get("drill.max-io"));
        } catch (IllegalArgumentException e) {
            throw bad(origin, "drill.max-io", v.get("drill.max-io"), "bytes per second such as 100MB (0 = unlimited)");
        }
        this.jmx = bool(v, origin, "jmx");
        this.debug = bool(v, origin, "debug");
    }

    public String get(String key) {
        return values.get(key);
    }

    /** Where the master key comes from: key file, keystore or passphrase; null = the default key file. */
    public io.duckguard.runtime.crypto.KeySource keySource() {
        if (keyFile != null) return io.duckguard.runtime.crypto.KeySource.file(keyFile);
        if (keystore != null) return io.duckguard.runtime.crypto.KeySource.keystore(keystore, keystorePasswordEnv, env::get);
        if (passphraseEnv != null) return io.duckguard.runtime.crypto.KeySource.passphrase(passphraseEnv, env::get);
        return null;
    }

    /** Parses the options from all sources; see the class comment for precedence. */
    public static AgentConfig parse(String agentArgs, Properties sysProps, Map<String, String> env) throws ConfigException {
        Map<String, String> fromArgs = parseArgs(agentArgs);
        Map<String, String> fromSys = new LinkedHashMap<>();
        for (String k : sysProps.stringPropertyNames()) {
            // duckguard.test.* are fault-injection switches of the crash tests, not agent options.
            if (k.startsWith("duckguard.") && !k.equals("duckguard.debug") && !k.startsWith("duckguard.test.")) {
                fromSys.put(k.substring("duckguard.".length()), sysProps.getProperty(k));
            }
        }
        Map<String, String> fromEnv = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : env.entrySet()) {
            if (e.getKey().startsWith("DUCKGUARD_") && !CLI_ONLY_ENV.contains(e.getKey())) {
                fromEnv.put(envToKey(e.getKey()), e.getValue());
            }
        }
        Map<String, String> origin = new LinkedHashMap<>();
        check(fromArgs, "agent argument");
        check(fromSys, "system property duckguard.");
        String configFile = first("config", fromArgs, fromSys, fromEnv);
        Map<String, String> fromFile = new LinkedHashMap<>();
        if (configFile != null) {
            Properties p = new Properties();
            try (Reader r = Files.newBufferedReader(Path.of(configFile))) {
                p.load(r);
            } catch (IOException e) {
                throw new ConfigException("cannot read config file " + configFile + ": " + e.getMessage());
            }
            for (String k : p.stringPropertyNames()) fromFile.put(k.trim(), p.getProperty(k).trim());
            check(fromFile, "config file " + configFile + ": ");
        }
        // The variables that hold a passphrase or keystore password are secrets, not options (even if named DUCKGUARD_...).
        java.util.Set<String> secretVars = new java.util.HashSet<>();
        for (Map<String, String> m : List.of(fromArgs, fromSys, fromEnv, fromFile)) {
            for (String k : new String[] {"passphrase-env", "keystore-password-env"}) if (m.get(k) != null) secretVars.add(m.get(k));
        }
        for (String var : secretVars) if (var.startsWith("DUCKGUARD_")) fromEnv.remove(envToKey(var));
        check(fromEnv, "environment DUCKGUARD_");
        Map<String, String> merged = new LinkedHashMap<>(DEFAULTS);
        layer(merged, origin, fromFile, "config file " + configFile);
        layer(merged, origin, fromEnv, "environment");
        layer(merged, origin, fromSys, "system property");
        layer(merged, origin, fromArgs, "agent argument");
        return new AgentConfig(merged, origin, env);
    }

    /**
     * Whether the raw options ask for {@code required=true}, read leniently from every source (a typo elsewhere in
     * the options must not turn required=true into "run unprotected"), with the same precedence as {@link #parse}.
     */
    public static boolean requiredRequested(String agentArgs, Properties sysProps, Map<String, String> env) {
        String v = null;
        String configFile = null;
        if (agentArgs != null) {
            for (String part : agentArgs.split(",")) {
                int eq = part.indexOf('=');
                if (eq <= 0) continue;
                String k = part.substring(0, eq).trim();
                if (k.equals("required")) v = part.substring(eq + 1).trim();
                if (k.equals("config")) configFile = part.substring(eq + 1).trim();
            }
        }
        if (v == null) v = sysProps.getProperty("duckguard.required");
        if (v == null) v = env.get("DUCKGUARD_REQUIRED");
        if (configFile == null) configFile = sysProps.getProperty("duckguard.config", env.get("DUCKGUARD_CONFIG"));
        if (v == null && configFile != null) {
            Properties p = new Properties();
            try (Reader r = Files.newBufferedReader(Path.of(configFile))) {
                p.load(r);
                v = p.getProperty("required");
            } catch (IOException | RuntimeException e) {
                // parse() reports the unreadable file
            }
        }
        return "true".equalsIgnoreCase(v == null ? null : v.trim());
    }

    static Map<String, String> parseArgs(String args) throws ConfigException {
        Map<String, String> m = new LinkedHashMap<>();
        if (args == null || args.isBlank()) return m;
        for (String part : args.split(",")) {
            if (part.isBlank()) continue;
            int eq = part.indexOf('=');
            if (eq <= 0) {
                throw new ConfigException("agent argument '" + part + "' is not key=value (separate options with ',')");
            }
            m.put(part.substring(0, eq).trim(), part.substring(eq + 1).trim());
        }
        return m;
    }

    static String envToKey(String env) {
        String k = env.substring("DUCKGUARD_".length()).toLowerCase(Locale.ROOT);
        // Match against known keys, where '_' may stand for '.' or '-'.
        for (String known : DEFAULTS.keySet()) {
            if (known.replace('.', '_').replace('-', '_').equals(k)) return known;
        }
        return k;
    }

    private static void check(Map<String, String> m, String source) throws ConfigException {
        for (String k : m.keySet()) {
            if (!DEFAULTS.containsKey(k)) {
                throw new ConfigException("unknown option '" + k + "' (" + source.trim() + "); known options: "
                        + String.join(", ", DEFAULTS.keySet()));
            }
        }
    }

    private static void layer(Map<String, String> merged, Map<String, String> origin, Map<String, String> src, String name) {
        for (Map.Entry<String, String> e : src.entrySet()) {
            merged.put(e.getKey(), e.getValue());
            origin.put(e.getKey(), name);
        }
    }

    @SafeVarargs
    private static String first(String key, Map<String, String>... maps) {
        for (Map<String, String> m : maps) if (m.containsKey(key)) return m.get(key);
        return null;
    }

    private static ConfigException bad(Map<String, String> origin, String key, String value, String expected) {
        String from = origin.getOrDefault(key, "default");
        return new ConfigException("invalid value '" + value + "' for option " + key + " (" + from + "): expected " + expected);
    }

    private static Duration duration(Map<String, String> v, Map<String, String> origin, String key) throws ConfigException {
        try {
            Duration d = Durations.parseDuration(v.get(key));
            if (d.isNegative() || d.isZero()) throw new IllegalArgumentException();
            return d;
        } catch (IllegalArgumentException e) {
            throw bad(origin, key, v.get(key), "a positive duration such as 500ms, 1s, 5m");
        }
    }

    private static int count(Map<String, String> v, Map<String, String> origin, String key) throws ConfigException {
        try {
            int n = Integer.parseInt(v.get(key).trim());
            if (n < 0) throw new NumberFormatException();
            return n;
        } catch (NumberFormatException e) {
            throw bad(origin, key, v.get(key), "a whole number >= 0");
        }
    }

    private static boolean bool(Map<String, String> v, Map<String, String> origin, String key) throws ConfigException {
        String s = v.get(key).trim().toLowerCase(Locale.ROOT);
        if (s.equals("true")) return true;
        if (s.equals("false")) return false;
        throw bad(origin, key, v.get(key), "true or false");
    }

    /** An invalid configuration; the message is the one line shown to the operator. */
    public static final class ConfigException extends Exception {
        public ConfigException(String m) {
            super(m);
        }
    }
}
