package io.duckguard.runtime.capture;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.concurrent.TimeUnit;

/**
 * DuckDB's {@code <db>.wal.checkpoint}: while a concurrent checkpoint runs (one that starts while a transaction older
 * than the last commit is open), inserts and appends commit into this file, and DuckDB renames it to {@code <db>.wal}
 * when the checkpoint ends (duckdb-facts section 1). Such a commit returns before the rename, while the old WAL looks
 * fully shipped, so a sync-mode waiter must wait for this file (which becomes the next epoch's WAL, same inode).
 *
 * <p>The guard: a file left over from a crash is neither replayed nor removed by DuckDB at open (only the next
 * checkpoint removes it), and waiting on it would hold every sync commit until sync-timeout, or for ever with
 * sync-failure=wait. So the file as it was when the agent started (identity, size, modification time) is ignored
 * until it changes or disappears; a live one changes with every commit written into it.
 *
 * <p>Threads: {@link #live()} is called by app threads after a commit; the leftover stamp is a volatile that only
 * ever goes from set to null.
 */
final class CheckpointWal {
    private record Stamp(Object key, long size, long modifiedNanos) {
        static Stamp of(BasicFileAttributes a) {
            return new Stamp(a.fileKey(), a.size(), a.lastModifiedTime().to(TimeUnit.NANOSECONDS));
        }
    }

    private final Path path;
    private final File file;
    private volatile Stamp leftover;

    CheckpointWal(Path dbPath) {
        this.path = Path.of(dbPath + ".wal.checkpoint");
        this.file = path.toFile();
        BasicFileAttributes a = attributes();
        this.leftover = a == null ? null : Stamp.of(a);
    }

    /**
     * The attributes of a live {@code <db>.wal.checkpoint}, or null when there is none (absent, or the leftover the
     * agent found at start, unchanged). One stat when the file is absent, the common case.
     */
    BasicFileAttributes live() {
        if (!file.exists()) {
            if (leftover != null) leftover = null; // gone once: a file there later is a new one
            return null;
        }
        BasicFileAttributes a = attributes();
        if (a == null) return null;
        Stamp left = leftover;
        return left != null && left.equals(Stamp.of(a)) ? null : a;
    }

    /** The file DuckDB left over from an earlier run, if it is still there unchanged; null otherwise. */
    Path leftover() {
        return leftover == null ? null : path;
    }

    private BasicFileAttributes attributes() {
        try {
            return Files.readAttributes(path, BasicFileAttributes.class);
        } catch (IOException e) {
            return null; // absent (renamed away between the two stats): nothing to wait for here
        }
    }
}
