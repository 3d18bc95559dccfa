package io.duckguard.it.harness;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Fresh directories for tests under {@code target/it-work} (system property {@code duckguard.work.dir}), never
 * under /tmp: databases, WALs, repositories and child logs stay next to the build, survive the test for a
 * post-mortem, and go away with {@code mvn clean}.
 */
public final class WorkDirs {
    private static final DateTimeFormatter STAMP = DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss");
    private static final AtomicInteger COUNTER = new AtomicInteger();

    private WorkDirs() {
    }

    public static Path root() {
        return Path.of(System.getProperty("duckguard.work.dir", "target/it-work")).toAbsolutePath().normalize();
    }

    /** A new, empty directory {@code <root>/<name>-<timestamp>-<n>}. */
    public static Path create(String name) {
        return createUnder(root(), name);
    }

    /** A new, empty directory {@code <root>/<TestClass>/<name>-<timestamp>-<n>}. */
    public static Path create(Class<?> testClass, String name) {
        return createUnder(root().resolve(testClass.getSimpleName()), name);
    }

    private static Path createUnder(Path parent, String name) {
        String safe = name.replaceAll("[^A-Za-z0-9._-]", "_");
        try {
            Files.createDirectories(parent);
            while (true) {
                Path dir = parent.resolve(safe + "-" + LocalDateTime.now().format(STAMP) + "-"
                        + COUNTER.incrementAndGet());
                try {
                    return Files.createDirectory(dir);
                } catch (java.nio.file.FileAlreadyExistsException e) {
                    // another JVM (an earlier run in the same second) got that name: take the next number
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
