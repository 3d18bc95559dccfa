package io.duckguard.runtime.util;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/** Whole directory trees: how many bytes their files hold, and deleting them (children first). */
public final class FileTrees {
    private FileTrees() {}

    /** The total size of the regular files under {@code dir} (walks the tree). */
    public static long bytes(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
        }
    }

    /** Deletes {@code dir} and everything under it. Not atomic: callers that need crash safety fsync around it. */
    public static void delete(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }
}
