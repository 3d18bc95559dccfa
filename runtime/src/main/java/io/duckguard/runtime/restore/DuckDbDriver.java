package io.duckguard.runtime.restore;

import java.io.IOException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.Driver;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

/**
 * A DuckDB JDBC driver for the CLI. duckguard never bundles DuckDB: restore uses the same duckdb_jdbc the app
 * used (recorded in the repository), found in this order: {@code --duckdb-jar}, {@code DUCKGUARD_DUCKDB_JAR},
 * the jar the app loaded, the local Maven repository for the recorded version, the class path.
 */
public final class DuckDbDriver {
    /**
     * Loads the driver: a jar's DuckDB initializes its native library (0.4-0.6 s unpacked from the jar, ~0.07 s from
     * duckguard's cache, see {@link DuckDbJarLoader}), so only when a replay needs it.
     */
    @FunctionalInterface
    private interface Loader {
        Driver load() throws IOException;
    }

    private static final Map<Path, Driver> JAR_DRIVERS = new HashMap<>();

    private final Loader loader;
    private final String origin;
    private Driver driver;

    private DuckDbDriver(Loader loader, String origin) {
        this.loader = loader;
        this.origin = origin;
    }

    public String origin() {
        return origin;
    }

    public Connection connect(Path file) throws SQLException {
        return driver().connect("jdbc:duckdb:" + file.toAbsolutePath(), new Properties());
    }

    /** Read-only: DuckDB then writes nothing to the file, not even at close. */
    public Connection connectReadOnly(Path file) throws SQLException {
        Properties p = new Properties();
        p.setProperty("duckdb.read_only", "true");
        return driver().connect("jdbc:duckdb:" + file.toAbsolutePath(), p);
    }

    /**
     * Loads the driver and DuckDB's native library now, so that the first connect does not wait for them. Best
     * effort: a failure is left for that connect to report.
     */
    public void preload() {
        try {
            Class.forName("org.duckdb.DuckDBNative", true, driver().getClass().getClassLoader());
        } catch (SQLException | ReflectiveOperationException | LinkageError e) {
            // the connect reports it
        }
    }

    private synchronized Driver driver() throws SQLException {
        if (driver == null) {
            try {
                driver = loader.load();
            } catch (IOException e) {
                throw new SQLException(e.getMessage(), e);
            }
        }
        return driver;
    }

    private static Driver load(ClassLoader cl, String from) throws IOException {
        try {
            return (Driver) Class.forName("org.duckdb.DuckDBDriver", true, cl).getDeclaredConstructor().newInstance();
        } catch (ReflectiveOperationException | LinkageError e) {
            throw new IOException("cannot load DuckDB from " + from + ": " + e);
        }
    }

    /**
     * A jar's driver, its native library from duckguard's cache; if that fails, as duckdb_jdbc loads it itself. One
     * per jar and JVM: a native library loads into one class loader only, and loading 60 MB twice helps nobody.
     */
    private static synchronized Driver loadJar(Path jar) throws IOException {
        Path key = jar.toAbsolutePath().normalize();
        Driver known = JAR_DRIVERS.get(key);
        if (known != null) return known;
        Driver d = loadJarOnce(jar);
        JAR_DRIVERS.put(key, d);
        return d;
    }

    private static Driver loadJarOnce(Path jar) throws IOException {
        URLClassLoader cl = DuckDbJarLoader.of(jar);
        try {
            return load(cl, jar.toString());
        } catch (IOException e) {
            if (!(cl instanceof DuckDbJarLoader)) throw e;
            io.duckguard.runtime.util.Log.warn("DuckDB's native library from the cache failed (" + e.getMessage()
                    + "); loading it from " + jar);
            return load(new URLClassLoader(new URL[] {jar.toUri().toURL()}, ClassLoader.getPlatformClassLoader()),
                    jar.toString());
        }
    }

    /** {@link #find} for a database whose history recorded the app's jar and DuckDB version. */
    public static DuckDbDriver forDatabase(Path explicit, java.util.Properties info) throws IOException {
        return find(explicit, info.getProperty("duckdb-jar"), info.getProperty("duckdb-version"));
    }

    /** The DuckDB driver of a class loader that has DuckDB (the app's, for restores from inside the app). */
    public static DuckDbDriver fromClassLoader(ClassLoader cl) throws IOException {
        return new DuckDbDriver(() -> load(cl, "the application's class loader"), "the application's class loader");
    }

    /**
     * @param explicit    a jar given by the operator, or null
     * @param recordedJar the jar the protected app used (may be empty or gone)
     * @param version     the DuckDB version that wrote the database, e.g. v1.5.6 (may be empty)
     */
    public static DuckDbDriver find(Path explicit, String recordedJar, String version) throws IOException {
        List<Path> candidates = new ArrayList<>();
        if (explicit != null) {
            if (!Files.isRegularFile(explicit)) throw new IOException("--duckdb-jar " + explicit + " does not exist");
            candidates.add(explicit);
        }
        String env = System.getenv("DUCKGUARD_DUCKDB_JAR");
        if (env != null && !env.isBlank()) candidates.add(Path.of(env));
        if (recordedJar != null && !recordedJar.isBlank()) candidates.add(Path.of(recordedJar));
        if (version != null && version.startsWith("v")) {
            Path m2 = Path.of(System.getProperty("user.home"), ".m2", "repository", "org", "duckdb", "duckdb_jdbc");
            if (Files.isDirectory(m2)) {
                try (DirectoryStream<Path> ds = Files.newDirectoryStream(m2, version.substring(1) + "*")) {
                    for (Path d : ds) candidates.add(d.resolve("duckdb_jdbc-" + d.getFileName() + ".jar"));
                }
            }
        }
        for (Path jar : candidates) {
            if (!Files.isRegularFile(jar)) continue;
            return new DuckDbDriver(() -> loadJar(jar), jar.toString());
        }
        ClassLoader own = DuckDbDriver.class.getClassLoader();
        if (own.getResource("org/duckdb/DuckDBDriver.class") == null) {
            throw new IOException("no DuckDB JDBC driver found: pass --duckdb-jar /path/to/duckdb_jdbc.jar"
                    + (version == null || version.isEmpty() ? "" : " (the database was written by DuckDB " + version + ")"));
        }
        return new DuckDbDriver(() -> load(own, "the class path"), "class path");
    }
}
