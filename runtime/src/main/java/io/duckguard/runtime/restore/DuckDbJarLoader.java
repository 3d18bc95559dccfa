package io.duckguard.runtime.restore;

import io.duckguard.runtime.util.Log;
import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Locale;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

/**
 * Loads a duckdb_jdbc jar for the CLI with its native library unpacked once into a cache, not on every run.
 *
 * <p>Why: duckdb_jdbc's {@code DuckDBNative} copies its 60-70 MB library out of the jar into a new temporary file at
 * every start (0.4-0.6 s of a fresh JVM, before DuckDB does anything). This loader unpacks it once to
 * {@code $XDG_CACHE_HOME/duckguard/duckdb-native/<crc>-<size>/} (default {@code ~/.cache}, or under
 * {@code -Dduckguard.cache-dir}; owner-only), hides that one jar entry from {@code DuckDBNative}, which then falls
 * back to {@code System.loadLibrary("duckdb_java")}, and answers that from the cache ({@link #findLibrary}).
 *
 * <p>Keyed by the entry's CRC-32 and size, so another DuckDB version gets its own copy; unpacked to a temporary name
 * and renamed, so a crash never leaves a partial library under the final name; its CRC is checked at every use. Linux
 * only: other systems, or a cache that cannot be written, keep duckdb_jdbc's own behaviour.
 */
final class DuckDbJarLoader extends URLClassLoader {
    static final String UNPACK_PREFIX = "unpack-";

    private final String hiddenEntry;
    private final Path library;

    private DuckDbJarLoader(URL jar, String hiddenEntry, Path library) {
        super(new URL[] {jar}, ClassLoader.getPlatformClassLoader());
        this.hiddenEntry = hiddenEntry;
        this.library = library;
    }

    /** A loader for {@code jar}; with the library cache when it can be used, else a plain one. */
    static URLClassLoader of(Path jar) throws IOException {
        URL url = jar.toUri().toURL();
        String entry = linuxEntryName();
        if (entry != null) {
            try {
                Path lib = cached(jar, entry);
                if (lib != null) return new DuckDbJarLoader(url, entry, lib);
            } catch (IOException | RuntimeException e) {
                Log.debug("DuckDB native library cache not used: " + e);
            }
        }
        return new URLClassLoader(new URL[] {url}, ClassLoader.getPlatformClassLoader());
    }

    @Override
    public URL findResource(String name) {
        return name.equals(hiddenEntry) || name.equals("/" + hiddenEntry) ? null : super.findResource(name);
    }

    @Override
    protected String findLibrary(String libname) {
        return "duckdb_java".equals(libname) ? library.toString() : super.findLibrary(libname);
    }

    /** The name duckdb_jdbc gives its Linux library for this CPU, or null elsewhere. */
    private static String linuxEntryName() {
        if (!System.getProperty("os.name", "").toLowerCase(Locale.ROOT).startsWith("linux")) return null;
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        String a = switch (arch) {
            case "amd64", "x86_64" -> "amd64";
            case "aarch64", "arm64" -> "arm64";
            default -> null;
        };
        return a == null ? null : "libduckdb_java.so_linux_" + a;
    }

    /** The cached library for {@code entry} of {@code jar}, unpacked now if missing; null if the jar lacks it. */
    private static Path cached(Path jar, String entry) throws IOException {
        try (ZipFile zip = new ZipFile(jar.toFile())) {
            ZipEntry e = zip.getEntry(entry);
            if (e == null || e.getSize() <= 0 || e.getCrc() < 0) return null;
            Path dir = cacheRoot().resolve(String.format("%08x-%d", e.getCrc(), e.getSize()));
            Path lib = dir.resolve("libduckdb_java.so");
            if (Files.isRegularFile(lib) && crc(lib) == e.getCrc()) return lib; // 60 MB read: ~30 ms against ~450

            Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            removeAbandonedUnpacks(dir);
            Path tmp = Files.createTempFile(dir, UNPACK_PREFIX, ".tmp");
            try {
                try (InputStream in = zip.getInputStream(e)) {
                    Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
                }
                if (crc(tmp) != e.getCrc()) throw new IOException("unpacking " + entry + " from " + jar + " gave other bytes");
                try {
                    Files.move(tmp, lib, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                } catch (AtomicMoveNotSupportedException x) {
                    Files.move(tmp, lib, StandardCopyOption.REPLACE_EXISTING);
                }
            } finally {
                Files.deleteIfExists(tmp);
            }
            return lib;
        }
    }

    /**
     * An unpack killed half-way leaves its temporary file (tens of MB) behind; the next unpack removes those older
     * than ten minutes (an unpack takes about a second, so a younger one may be another process's, still running).
     */
    private static void removeAbandonedUnpacks(Path dir) throws IOException {
        long before = System.currentTimeMillis() - 10 * 60_000L;
        try (java.nio.file.DirectoryStream<Path> ds = Files.newDirectoryStream(dir, UNPACK_PREFIX + "*.tmp")) {
            for (Path f : ds) {
                if (Files.getLastModifiedTime(f).toMillis() < before) Files.deleteIfExists(f);
            }
        }
    }

    private static long crc(Path file) throws IOException {
        CRC32 crc = new CRC32();
        byte[] buf = new byte[1 << 20];
        try (InputStream in = Files.newInputStream(file)) {
            for (int n; (n = in.read(buf)) > 0; ) crc.update(buf, 0, n);
        }
        return crc.getValue();
    }

    /** {@code -Dduckguard.cache-dir} (tests, operators), else the XDG cache directory. */
    static Path cacheRoot() {
        String dir = System.getProperty("duckguard.cache-dir");
        if (dir != null && !dir.isBlank()) return Path.of(dir).resolve("duckdb-native");
        String xdg = System.getenv("XDG_CACHE_HOME");
        Path base = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
        return base.resolve("duckguard").resolve("duckdb-native");
    }
}
