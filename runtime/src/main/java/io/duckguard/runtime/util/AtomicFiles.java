package io.duckguard.runtime.util;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Crash-safe file writes (invariant 5): write a temporary file beside the target, fsync it, rename it atomically
 * over the target, fsync the directory. A kill -9 at any point leaves either the old file or the new one, plus at
 * most a stray {@code *.tmp-*} file that readers ignore and garbage collection removes.
 */
public final class AtomicFiles {
    public static final String TMP_MARK = ".tmp-";

    private AtomicFiles() {}

    public static void write(Path target, byte[] content) throws IOException {
        write(target, content, true);
    }

    /** Like {@link #write(Path, byte[])}; with {@code replace=false} an existing target is left alone. */
    public static void write(Path target, byte[] content, boolean replace) throws IOException {
        Path dir = target.toAbsolutePath().getParent();
        createDirectories(dir); // durable too: a new directory's entry in its parent needs an fsync of its own
        Path tmp = dir.resolve(target.getFileName() + TMP_MARK + Long.toHexString(ThreadLocalRandom.current().nextLong()));
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ByteBuffer buf = ByteBuffer.wrap(content);
            while (buf.hasRemaining()) ch.write(buf);
            ch.force(true);
        }
        try {
            if (!replace && Files.exists(target)) {
                Files.deleteIfExists(tmp);
                return;
            }
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException | FileAlreadyExistsException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
        fsyncDirectory(dir);
    }

    /**
     * Whether a failure is a full disk (ENOSPC). Java has no exception type for it, and DuckDB reports it inside an
     * SQLException, so the OS's message is the one reliable mark (Linux and macOS word it the same).
     */
    public static boolean isDiskFull(Throwable t) {
        return t != null && String.valueOf(t.getMessage()).contains("No space left on device");
    }

    /** Makes a rename or a file creation in {@code dir} durable. */
    public static void fsyncDirectory(Path dir) throws IOException {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        }
    }

    /**
     * Creates {@code dir} and its parents, making each new entry durable in its parent; {@code attrs} (e.g. mode 0700)
     * apply to every directory it creates.
     */
    public static void createDirectories(Path dir, java.nio.file.attribute.FileAttribute<?>... attrs) throws IOException {
        Path abs = dir.toAbsolutePath();
        if (Files.isDirectory(abs)) return;
        if (Files.exists(abs)) throw new IOException(abs + " exists and is not a directory");
        createDirectories(abs.getParent(), attrs);
        try {
            Files.createDirectory(abs, attrs);
        } catch (FileAlreadyExistsException e) {
            if (Files.isDirectory(abs)) return; // created concurrently
            throw new IOException(abs + " exists and is not a directory");
        }
        fsyncDirectory(abs.getParent());
    }
}
