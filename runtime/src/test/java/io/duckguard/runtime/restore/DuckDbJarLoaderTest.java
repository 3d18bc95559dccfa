package io.duckguard.runtime.restore;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.sql.Driver;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.List;
import java.util.Properties;
import java.util.stream.Stream;
import java.util.zip.ZipFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CLI's DuckDB loads its native library from duckguard's cache: unpacked once, checked at every use, and really
 * the file the process maps (not a temporary copy duckdb_jdbc made). Runs on the duckdb_jdbc of the suite's execution.
 */
class DuckDbJarLoaderTest {
    @TempDir
    Path tmp;

    @Test
    void unpacksTheNativeLibraryOnceChecksItAndLoadsDuckDbFromIt() throws Exception {
        assumeTrue(System.getProperty("os.name").toLowerCase().startsWith("linux"), "the cache is Linux only");
        Path jar = Path.of(org.duckdb.DuckDBDriver.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        String before = System.getProperty("duckguard.cache-dir");
        System.setProperty("duckguard.cache-dir", tmp.toString());
        try {
            URLClassLoader first = DuckDbJarLoader.of(jar);
            assertInstanceOf(DuckDbJarLoader.class, first);
            Path lib = onlyLibrary();
            String entry = "libduckdb_java.so_linux_" + (System.getProperty("os.arch").contains("64")
                    && !System.getProperty("os.arch").startsWith("aarch") ? "amd64" : "arm64");
            byte[] original;
            try (ZipFile zip = new ZipFile(jar.toFile())) {
                original = zip.getInputStream(zip.getEntry(entry)).readAllBytes();
            }
            assertArrayEquals(original, Files.readAllBytes(lib), "the cached library is the jar's");
            assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(lib.getParent())));
            assertNull(first.getResource(entry), "DuckDBNative must not find its own copy");
            assertNotNull(first.getResource("org/duckdb/DuckDBDriver.class"));

            // A damaged cache file is noticed (CRC) and unpacked again; that unpack removes the temporary file of one
            // killed long ago, not a recent one (another process may be unpacking).
            byte[] damaged = original.clone();
            damaged[damaged.length / 2] ^= 1;
            Files.write(lib, damaged);
            Path abandoned = Files.write(lib.resolveSibling(DuckDbJarLoader.UNPACK_PREFIX + "killed.tmp"), new byte[100]);
            Files.setLastModifiedTime(abandoned, FileTime.fromMillis(System.currentTimeMillis() - 3_600_000L));
            Path recent = Files.write(lib.resolveSibling(DuckDbJarLoader.UNPACK_PREFIX + "running.tmp"), new byte[100]);
            assertInstanceOf(DuckDbJarLoader.class, DuckDbJarLoader.of(jar));
            assertFalse(Files.exists(abandoned), "an abandoned unpack is removed");
            assertTrue(Files.exists(recent), "a recent one stays");
            Files.delete(recent);
            assertArrayEquals(original, Files.readAllBytes(onlyLibrary()), "the damaged copy was replaced");

            // DuckDB from that loader runs SQL, and the process maps the cached file. (Not through DuckDbDriver.find:
            // it keeps one driver per jar and JVM, and an earlier test may have loaded this jar's already.)
            Driver duckdb = (Driver) Class.forName("org.duckdb.DuckDBDriver", true, DuckDbJarLoader.of(jar))
                    .getDeclaredConstructor().newInstance();
            try (Connection c = duckdb.connect("jdbc:duckdb:", new Properties()); Statement s = c.createStatement();
                 ResultSet rs = s.executeQuery("SELECT 42")) {
                rs.next();
                assertEquals(42, rs.getInt(1));
            }
            assertTrue(Files.readString(Path.of("/proc/self/maps")).contains(lib.toString()),
                    "DuckDB's native library was not loaded from " + lib);
        } finally {
            if (before == null) System.clearProperty("duckguard.cache-dir");
            else System.setProperty("duckguard.cache-dir", before);
        }
    }

    /** The one file in the cache (no temporary file left behind). */
    private Path onlyLibrary() throws Exception {
        try (Stream<Path> s = Files.walk(tmp.resolve("duckdb-native"))) {
            List<Path> files = s.filter(Files::isRegularFile).toList();
            assertEquals(1, files.size(), files.toString());
            assertEquals("libduckdb_java.so", files.get(0).getFileName().toString());
            return files.get(0);
        }
    }
}
