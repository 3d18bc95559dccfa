package io.duckguard.runtime.capture;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;

/**
 * The POSIX lock trap (duckdb-facts.md section 6, invariant 4): closing ANY descriptor of a file drops this
 * process's fcntl locks on it, including DuckDB's. So duckguard opens each file DuckDB holds (by inode) exactly
 * once, reads only through that channel, and closes it only once the path no longer names that inode (DuckDB
 * deleted it: an old WAL after a checkpoint). A database file's channel is therefore kept for the JVM's life and
 * reused when the same file is opened again.
 */
final class HeldFiles {
    private static final Map<Object, FileChannel> BY_KEY = new HashMap<>();

    private HeldFiles() {}

    /** The file's identity (device + inode), or null if it does not exist. One stat, no descriptor. */
    static Object keyOf(Path p) {
        try {
            return Files.readAttributes(p, BasicFileAttributes.class).fileKey();
        } catch (NoSuchFileException e) {
            return null;
        } catch (IOException e) {
            return null;
        }
    }

    /** A read channel on the file {@code p} names now, with its key; null if the file does not exist. */
    static synchronized Held acquire(Path p) throws IOException {
        for (int attempt = 0; attempt < 5; attempt++) {
            Object before = keyOf(p);
            if (before == null) return null;
            FileChannel ch = BY_KEY.get(before);
            if (ch != null && ch.isOpen()) return new Held(ch, before);
            ch = FileChannel.open(p, StandardOpenOption.READ);
            Object after = keyOf(p);
            if (Objects.equals(before, after)) {
                BY_KEY.put(before, ch);
                return new Held(ch, before);
            }
            // The path was swapped between stat and open: we do not know which inode we hold. The inode we
            // opened is no longer at the path, so DuckDB has no lock through it to lose: closing is safe.
            ch.close();
        }
        throw new IOException("file " + p + " keeps changing under us");
    }

    /** Closes a held channel if its inode is no longer at {@code p}; otherwise keeps it for reuse. */
    static synchronized void releaseIfUnlinked(Path p, Held h) {
        if (h == null) return;
        if (!Objects.equals(keyOf(p), h.key())) {
            BY_KEY.remove(h.key());
            try {
                h.channel().close();
            } catch (IOException ignored) {
                // nothing to do: it was a read-only descriptor of a deleted file
            }
        }
    }

    record Held(FileChannel channel, Object key) {}
}
