package io.duckguard.runtime.restore;

import io.duckguard.runtime.crypto.CorruptObjectException;
import io.duckguard.runtime.repository.BlockRef;
import io.duckguard.runtime.repository.CommitMark;
import io.duckguard.runtime.repository.DatabaseHistory;
import io.duckguard.runtime.repository.Manifest;
import io.duckguard.runtime.repository.Packs;
import io.duckguard.runtime.repository.RepositoryException;
import io.duckguard.runtime.repository.WalLog;
import io.duckguard.runtime.repository.WalRecord;
import io.duckguard.runtime.util.AtomicFiles;
import io.duckguard.runtime.util.Bytes;
import io.duckguard.runtime.wal.WalMerger;
import io.duckguard.runtime.wal.WalScanner;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Restores a database: snapshot n materialised into a scratch directory beside the output, WAL epoch n cut after
 * the target commit placed beside it, DuckDB opens it read-write and replays the WAL, duckguard checks the replay
 * reached the cut (DuckDB silently stops at a damaged length field), DuckDB checkpoints as it closes (an explicit
 * CHECKPOINT if it did not), then an atomic rename into place.
 * The output is never touched unless every step succeeded.
 */
public final class Restorer {
    /** What was restored. */
    public record Result(String database, long epoch, int commits, long lastCommitTime, long bytes, Path output,
                         long millis) {}

    /** The restore point a target resolves to: epoch, how many of its commits, and where they end in its WAL. */
    public record Point(long epoch, int commits, long walEnd, long lastCommitTime) {}

    private final DatabaseHistory history;
    /** Tests only: changes the merged WAL before it is replayed, to make its replay fail. */
    java.util.function.UnaryOperator<byte[]> mergedWalTap = java.util.function.UnaryOperator.identity();
    /** Tests only: runs on DuckDB's connection after the replay's checks, before the close that checkpoints. */
    ReplayCheck beforeCloseTap = c -> { };
    /** Tests only: runs once a snapshot known early has started materialising, before the target is resolved. */
    Runnable afterEarlyStartTap = () -> { };
    private final Consumer<String> progress;
    /** How often a long materialising reports how far it got (tests shorten it). */
    long progressEveryNanos = 2_000_000_000L;
    /** Bytes per second the restore may read from the repository; 0 = as fast as it can (drills limit it). */
    private long maxBytesPerSecond;

    /**
     * Limits how fast blocks are read, so that a drill running beside a live app leaves it the disk. Java cannot set
     * an I/O priority; pacing the reads is the portable equivalent.
     */
    public Restorer withMaxBytesPerSecond(long limit) {
        this.maxBytesPerSecond = limit;
        return this;
    }

    public Restorer(DatabaseHistory history, Consumer<String> progress) {
        this.history = history;
        this.progress = progress;
    }

    /** Finds the restore point for a target without restoring anything. */
    public Point resolve(RestoreTarget target) throws IOException, CorruptObjectException {
        List<Long> epochs = new ArrayList<>();
        for (long e : history.epochs()) if (history.hasManifest(e)) epochs.add(e);
        if (epochs.isEmpty()) {
            throw new RepositoryException("database '" + history.name() + "' has no complete snapshot in the repository yet");
        }
        switch (target.kind()) {
            case LATEST: {
                long e = epochs.get(epochs.size() - 1);
                for (long later : history.epochs()) {
                    if (later > e && history.hasWalLog(later) && walOf(later).commitCount() > 0) {
                        throw new CorruptObjectException("databases/" + history.name() + "/epochs/"
                                + String.format("%010d", later) + "/manifest", "missing while its WAL log holds commits: "
                                + "latest cannot be restored; restore an earlier point explicitly (snapshot:" + e + " or commit:" + e + ".N)");
                    }
                }
                WalLog.Contents c = walOf(e);
                return pointAfter(e, c, c.commitCount());
            }
            case SNAPSHOT:
            case COMMIT: {
                if (!epochs.contains(target.epoch()) && history.hasWalLog(target.epoch())) {
                    throw new CorruptObjectException("databases/" + history.name() + "/epochs/"
                            + String.format("%010d", target.epoch()) + "/manifest", "missing: epoch " + target.epoch()
                            + " cannot be restored (its WAL log is there, its snapshot is not)");
                }
                if (!epochs.contains(target.epoch())) {
                    throw new RepositoryException("epoch " + target.epoch() + " of '" + history.name()
                            + "' is not in the repository (restorable epochs: " + epochs + ")");
                }
                if (target.commit() == 0) return new Point(target.epoch(), 0, 0, 0); // the snapshot alone: no WAL needed
                WalLog.Contents c = walOf(target.epoch());
                if (target.commit() > c.commitCount()) checkNotCutShort(target.epoch(), c);
                if (target.commit() > c.commitCount() || target.commit() < 0) {
                    throw new RepositoryException("epoch " + target.epoch() + " has " + c.commitCount()
                            + " commits; commit " + target.commit() + " does not exist");
                }
                return pointAfter(target.epoch(), c, (int) target.commit());
            }
            case TIME: {
                long t = target.time().toEpochMilli();
                for (int i = epochs.size() - 1; i >= 0; i--) {
                    long e = epochs.get(i);
                    Manifest m = history.readManifest(e);
                    WalLog.Contents c = walOf(e);
                    int n = 0;
                    for (WalRecord r : c.records()) for (CommitMark cm : r.commits()) if (cm.timeMillis() <= t) n++;
                    if (n > 0 || m.createdMillis() <= t) return pointAfter(e, c, n);
                }
                throw new RepositoryException(target + " is before the oldest restorable point of '" + history.name() + "'");
            }
            default:
                throw new IllegalStateException();
        }
    }

    /** A WAL log shorter than the next epoch's manifest says it was when closed: damage, named as such. */
    private void checkNotCutShort(long epoch, WalLog.Contents c) throws IOException, CorruptObjectException {
        for (long later : history.epochs()) {
            if (later <= epoch || !history.hasManifest(later)) continue;
            long expected = history.readManifest(later).previousWalEnd();
            if (expected >= 0 && expected != c.walEnd()) {
                throw new CorruptObjectException("databases/" + history.name() + "/epochs/" + String.format("%010d", epoch)
                        + "/wal", "cut short: it ends at WAL offset " + c.walEnd() + " but was closed at " + expected
                        + "; commits after commit:" + epoch + "." + c.commitCount() + " are lost from this repository");
            }
            return;
        }
    }

    private WalLog.Contents walOf(long epoch) throws IOException, CorruptObjectException {
        if (!history.hasWalLog(epoch)) {
            return new WalLog.Contents(epoch, null, List.of(), 0, false);
        }
        WalLog.Contents c = lastWal;
        if (c != null && c.epoch() == epoch) return c; // resolve() read it; the replay needs it again
        c = history.readWalLog(epoch);
        lastWal = c;
        return c;
    }

    /** The WAL log read last (one restore reads one epoch's: 17 MB and 100k commit marks are worth keeping). */
    private WalLog.Contents lastWal;

    private static Point pointAfter(long epoch, WalLog.Contents c, int commits) {
        long end = 0;
        long time = 0;
        int seen = 0;
        outer:
        for (WalRecord r : c.records()) {
            for (CommitMark cm : r.commits()) {
                if (seen == commits) break outer;
                seen++;
                end = cm.walEnd();
                time = cm.timeMillis();
            }
        }
        return new Point(epoch, commits, end, time);
    }

    public Result restore(RestoreTarget target, Path output, boolean force, DuckDbDriver duckdb)
            throws IOException, CorruptObjectException, SQLException {
        long t0 = System.nanoTime();
        lastWal = null; // a live epoch's WAL log grows: read it afresh for every restore
        Path out = output.toAbsolutePath().normalize();
        if (Files.exists(out) && !force) {
            throw new RepositoryException(out + " already exists; refusing to overwrite it (add --force)");
        }
        if (Files.exists(Path.of(out + ".wal")) && !force) {
            throw new RepositoryException(out + ".wal exists; DuckDB would replay it onto the restored file. Remove it or add --force");
        }
        Path parent = out.getParent();
        AtomicFiles.createDirectories(parent);
        removeStaleScratch(parent);
        // A target that names its epoch (or latest) has its snapshot known before its WAL log is read: the snapshot
        // starts materialising at once, and the WAL log (17 MB for 100k commits) is read and resolved meanwhile.
        Manifest early = snapshotKnownEarly(target);
        if (early != null) checkFreeSpace(parent, early, null, 0);
        Path scratch = Files.createTempDirectory(parent, SCRATCH_PREFIX);
        Materialisation mat = null;
        try {
            // Durable (tmp, fsync, rename, fsync dir): after a power cut the next restore must still read the owner.
            AtomicFiles.write(scratch.resolve(SCRATCH_OWNER),
                    String.join(" ", THIS_PROCESS).getBytes(java.nio.charset.StandardCharsets.UTF_8));
            Path file = scratch.resolve(out.getFileName());
            long t = System.nanoTime();
            // Flushed as it is written when nothing follows it; a snapshot that DuckDB replays commits onto is flushed
            // during that replay instead, which runs on one core: PITR 2.60 vs 2.96 s (medians of 5 alternating runs).
            if (early != null) {
                boolean replayFollows = target.kind() == RestoreTarget.Kind.COMMIT && target.commit() > 0;
                mat = Materialisation.start(this, early, file, !replayFollows);
                afterEarlyStartTap.run();
            }
            Point p = resolve(target);
            Manifest m = early != null && early.epoch() == p.epoch() ? early : history.readManifest(p.epoch());
            if (m != early && mat != null) { // latest, and the agent completed a newer snapshot meanwhile: use that one
                mat.close();
                Files.deleteIfExists(file);
                mat = null;
            }
            progress.accept(String.format("restoring '%s' to %s: snapshot %d (%.1f MB) + %d commits", history.name(), target,
                    p.epoch(), m.fileSize() / 1e6, p.commits()));
            checkFreeSpace(parent, m, p, mat == null ? 0 : mat.claimed.get());
            if (mat == null) {
                t = System.nanoTime();
                mat = Materialisation.start(this, m, file, p.commits() == 0);
            } else if (p.commits() > 0) {
                mat.stopFlushing(); // latest, with commits to replay
            }
            // The WAL to replay needs no file: read, check and merge it, and load DuckDB, on another thread while
            // the snapshot is materialised (PITR of 100k commits: ~0.2 s off the restore).
            java.util.concurrent.FutureTask<PreparedWal> wal = null;
            if (p.commits() > 0) {
                wal = new java.util.concurrent.FutureTask<>(() -> prepareWal(duckdb, m, p));
                io.duckguard.runtime.util.Threads.start("restore-wal", wal);
            }
            mat.await(); // if this fails, the WAL task's outcome is dropped: it only reads the repository
            mat = null;
            progress.accept(String.format("snapshot %d materialised: %.1f MB in %.2f s; AES-GCM: %s", m.epoch(),
                    m.fileSize() / 1e6, (System.nanoTime() - t) / 1e9, io.duckguard.runtime.crypto.NativeAesGcm.status()));
            // With no commit to replay the file is the snapshot itself, byte for byte (every chunk authenticated):
            // a checkpointed database as DuckDB left it. Opening it would only cost time.
            if (wal != null) {
                Thread flush = flushInBackground(file);
                try {
                    replay(duckdb, m, file, p, await(wal));
                } finally {
                    io.duckguard.runtime.util.Threads.joinQuietly(flush);
                }
            }
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
                ch.force(true);
            }
            if (force) Files.deleteIfExists(Path.of(out + ".wal"));
            Files.move(file, out, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            AtomicFiles.fsyncDirectory(parent);
            return new Result(history.name(), p.epoch(), p.commits(), p.lastCommitTime(), Files.size(out), out,
                    (System.nanoTime() - t0) / 1_000_000);
        } catch (IOException | SQLException e) {
            if (!AtomicFiles.isDiskFull(e)) throw e;
            throw new RepositoryException("the disk of " + parent + " filled up during the restore (" + e.getMessage()
                    + "); nothing was written to " + out + ". Free some space or choose another --output", e);
        } finally {
            if (mat != null) mat.close(); // a failure before it finished: stop its workers before the scratch goes
            deleteTree(scratch);
        }
    }

    /**
     * The manifest of the snapshot a target will restore, if that is known without reading a WAL log: latest (the
     * newest epoch with a manifest) and targets naming their epoch. Null otherwise (an instant; an epoch without a
     * manifest, which {@link #resolve} then reports).
     */
    private Manifest snapshotKnownEarly(RestoreTarget target) throws IOException, CorruptObjectException {
        long epoch = -1;
        switch (target.kind()) {
            case LATEST -> {
                for (long e : history.epochs()) if (history.hasManifest(e)) epoch = e;
            }
            case SNAPSHOT, COMMIT -> epoch = history.hasManifest(target.epoch()) ? target.epoch() : -1;
            default -> { }
        }
        return epoch < 0 ? null : history.readManifest(epoch);
    }

    /**
     * The scratch copy lives beside the output until the rename: it needs the snapshot's size, plus the WAL to
     * replay once the restore point {@code p} is known, less what is {@code written} of it already (chunks begun: one
     * being written has taken some of its space, never more). DuckDB's checkpoint may grow the file a little more;
     * running out then is reported as a full disk.
     */
    private static void checkFreeSpace(Path parent, Manifest m, Point p, long written) throws IOException {
        boolean withWal = p != null && p.commits() > 0;
        long need = m.fileSize() + (withWal ? p.walEnd() : 0);
        long stillNeeded = need - written;
        long free = Files.getFileStore(parent).getUsableSpace();
        if (free < stillNeeded) {
            throw new RepositoryException(String.format("not enough free space in %s: the restore needs %.1f MB "
                    + "(snapshot %d%s), %.1f MB are free. Free some space or choose another --output",
                    parent, stillNeeded / 1e6, m.epoch(), withWal ? " and its WAL" : "", free / 1e6));
        }
    }

    /**
     * Snapshot {@code m} being written to a file on all cores: each worker reads, authenticates and decrypts a chunk
     * into its own buffers and writes it at its offset (positional writes: no ordering, no hand-off, no garbage).
     * The file must come out at the manifest's size.
     *
     * <p>{@link #start} returns once the chunks are queued; the caller's thread is then free (the restore resolves
     * its target meanwhile). The workers ({@link io.duckguard.runtime.snapshot.Snapshotter#workers}) first wait for
     * fast AES-GCM when the snapshot is large. {@link #await} blocks until every chunk is written, reporting
     * progress; {@link #close} stops the workers early (any thread that owns it; idempotent).
     */
    private static final class Materialisation implements AutoCloseable {
        private final Restorer restorer;
        private final Manifest m;
        private final Packs.Reader reader;
        private final FileChannel ch;
        private final List<java.util.concurrent.Future<?>> tasks;
        private final java.util.concurrent.atomic.AtomicLong done = new java.util.concurrent.atomic.AtomicLong();
        /** Bytes of the chunks a worker has begun: the free space they take is already gone or going. */
        private final java.util.concurrent.atomic.AtomicLong claimed = new java.util.concurrent.atomic.AtomicLong();
        private final long startNanos = System.nanoTime();
        private final EarlyWriteback writeback;

        private Materialisation(Restorer restorer, Manifest m, Path file, boolean flushEarly) throws IOException {
            this.restorer = restorer;
            this.m = m;
            this.reader = new Packs.Reader(restorer.history.repository());
            FileChannel c;
            try {
                c = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
            } catch (IOException | RuntimeException e) {
                reader.close();
                throw e;
            }
            this.ch = c;
            this.tasks = new ArrayList<>(m.chunks().size());
            this.writeback = flushEarly ? new EarlyWriteback(ch, done) : null;
        }

        /** @param flushEarly flush the file while it is written ({@link EarlyWriteback}); else nothing syncs it */
        static Materialisation start(Restorer restorer, Manifest m, Path file, boolean flushEarly)
                throws IOException, CorruptObjectException {
            List<BlockRef> chunks = m.chunks();
            long end = chunks.isEmpty() ? 0 : Manifest.chunkOffset(chunks.size() - 1) + chunks.get(chunks.size() - 1).plainLength();
            if (end != m.fileSize()) {
                throw new CorruptObjectException("manifest of epoch " + m.epoch(), "its chunks cover " + end + " bytes, not the "
                        + m.fileSize() + " it records");
            }
            for (int i = 0; i < chunks.size() - 1; i++) {
                if (chunks.get(i).plainLength() != Manifest.chunkOffset(i + 1) - Manifest.chunkOffset(i)) {
                    throw new CorruptObjectException("manifest of epoch " + m.epoch(), "chunk " + i + " has length "
                            + chunks.get(i).plainLength() + ", which breaks the block grid");
                }
            }
            // A small snapshot decrypts faster cold than the warm-up takes (9.4 MB: 0.06 s, vs 0.2-0.35 s of waiting;
            // CLI restore 0.61-0.72 s instead of 0.77-1.02 s, 4 runs each): only a large one waits for compiled GCM.
            boolean waitForFastGcm = m.fileSize() >= WARM_UP_FROM_BYTES;
            if (waitForFastGcm) {
                io.duckguard.runtime.crypto.AesGcmWarmUp.start();
            } else {
                io.duckguard.runtime.crypto.AesGcmWarmUp.stop();
            }
            Materialisation mat = new Materialisation(restorer, m, file, flushEarly);
            java.util.concurrent.ExecutorService pool = io.duckguard.runtime.snapshot.Snapshotter.workers();
            try {
                for (int i = 0; i < chunks.size(); i++) {
                    BlockRef ref = chunks.get(i);
                    long off = Manifest.chunkOffset(i);
                    mat.tasks.add(pool.submit(() -> {
                        if (waitForFastGcm) io.duckguard.runtime.crypto.AesGcmWarmUp.await(); // once ready, a join
                        io.duckguard.runtime.util.FaultInjection.restoreChunk();
                        mat.claimed.addAndGet(ref.plainLength());
                        Packs.Reader.Buffers b = BUFFERS.get();
                        int n = mat.reader.read(ref, b);
                        ByteBuffer buf = ByteBuffer.wrap(b.plain, 0, n);
                        long pos = off;
                        while (buf.hasRemaining()) pos += mat.ch.write(buf, pos);
                        restorer.pace(mat.done.addAndGet(n), mat.startNanos);
                        return null;
                    }));
                }
            } catch (RuntimeException e) { // the pool refused a task
                mat.close();
                throw e;
            }
            return mat;
        }

        /**
         * Waits until every chunk is written, reporting progress, then closes this (no fsync here: restore() syncs
         * the file once, after any replay).
         */
        void await() throws IOException, CorruptObjectException {
            try {
                long nextReport = startNanos + restorer.progressEveryNanos;
                for (java.util.concurrent.Future<?> f : tasks) {
                    while (!io.duckguard.runtime.util.Futures.doneWithin(f, 100)) {
                        if (System.nanoTime() - nextReport >= 0) {
                            long bytes = done.get();
                            restorer.progress.accept(String.format("materialising snapshot %d: %.1f of %.1f MB (%d%%)",
                                    m.epoch(), bytes / 1e6, m.fileSize() / 1e6, bytes * 100 / Math.max(1, m.fileSize())));
                            nextReport = System.nanoTime() + restorer.progressEveryNanos;
                        }
                    }
                    Restorer.await(f);
                }
            } finally {
                close();
            }
        }

        /** Stops flushing while writing (a replay follows after all); idempotent. */
        void stopFlushing() {
            if (writeback != null) writeback.stop();
        }

        @Override
        public void close() throws IOException {
            for (java.util.concurrent.Future<?> f : tasks) f.cancel(true);
            stopFlushing();
            try {
                reader.close();
            } finally {
                ch.close();
            }
        }
    }

    /**
     * Starts writing {@code file}'s dirty pages to disk on thread {@code duckguard-restore-flush} (daemon), while
     * DuckDB replays onto it on one core: the checkpoint's fsync then finds little left. Errors are left to the
     * final fsync, which reports them.
     */
    private static Thread flushInBackground(Path file) {
        return io.duckguard.runtime.util.Threads.start("restore-flush", () -> {
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
                ch.force(false);
            } catch (IOException e) {
                // the final force reports it
            }
        });
    }

    /**
     * Flushes the file being materialised every {@value #WRITEBACK_BYTES} bytes while the workers go on writing, so
     * that the disk writes overlap the decryption and the final fsync finds little left to do (Java has no
     * sync_file_range; fdatasync of what is dirty so far does the same here). Thread {@code duckguard-restore-flush},
     * daemon; it only ever calls {@code force}; {@link #stop} waits for it.
     */
    private static final class EarlyWriteback {
        private static final long WRITEBACK_BYTES = 128L << 20;
        private final Thread thread;
        private volatile boolean stopped;

        EarlyWriteback(FileChannel ch, java.util.concurrent.atomic.AtomicLong written) {
            thread = io.duckguard.runtime.util.Threads.start("restore-flush", () -> {
                long flushed = 0;
                while (!stopped) {
                    long now = written.get();
                    if (now - flushed >= WRITEBACK_BYTES) {
                        try {
                            ch.force(false);
                        } catch (IOException e) {
                            return; // the final force reports it
                        }
                        flushed = now;
                    } else {
                        java.util.concurrent.locks.LockSupport.parkNanos(2_000_000L);
                    }
                }
            });
        }

        void stop() {
            stopped = true;
            io.duckguard.runtime.util.Threads.joinQuietly(thread);
        }
    }

    private static <T> T await(java.util.concurrent.Future<T> f) throws IOException, CorruptObjectException {
        try {
            return io.duckguard.runtime.util.Futures.await(f);
        } catch (IOException e) {
            if (e.getCause() instanceof CorruptObjectException c) throw c; // damage is reported as such
            throw e;
        }
    }

    /**
     * Snapshots at least this large wait for {@link io.duckguard.runtime.crypto.AesGcmWarmUp} first. Tests of the
     * CLI jar lower it to see the native AES-GCM used on a small database.
     */
    private static final long WARM_UP_FROM_BYTES = Long.getLong("duckguard.test.warm-up-from-bytes", 32L << 20);

    /** Per worker thread: the restore path allocates nothing per block. */
    private static final ThreadLocal<Packs.Reader.Buffers> BUFFERS = ThreadLocal.withInitial(Packs.Reader.Buffers::new);

    /** Sleeps while {@code done} bytes are ahead of the allowed rate. */
    private void pace(long done, long startNanos) throws IOException {
        if (maxBytesPerSecond <= 0) return;
        long dueNanos = startNanos + done * 1_000_000_000L / maxBytesPerSecond;
        long wait = dueNanos - System.nanoTime();
        if (wait > 0) {
            try {
                Thread.sleep(wait / 1_000_000L, (int) (wait % 1_000_000L));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted", e);
            }
        }
    }

    /**
     * Writes WAL epoch p.epoch cut at p.walEnd. Refuses a WAL log bound to another base (the wrong-base guard), and
     * checks that DuckDB's own framing of the bytes puts every commit exactly where the agent recorded it: DuckDB
     * 1.5.6 stops replaying silently at a damaged entry length and still leaves the WAL at full length, so after
     * the fact nothing would tell.
     */
    private byte[] checkedWal(Point p, Manifest m) throws IOException, CorruptObjectException {
        WalLog.Contents c = walOf(p.epoch());
        String name = "WAL epoch " + p.epoch() + " of " + history.name();
        if (!Arrays.equals(c.baseSha256(), m.fileSha256())) {
            throw new CorruptObjectException(name, "it was written against a different base than "
                    + "snapshot " + m.epoch() + " (wrong-base guard): refusing to replay it");
        }
        byte[] wal = new byte[Math.toIntExact(p.walEnd())];
        List<Long> recorded = new ArrayList<>();
        for (WalRecord r : c.records()) {
            if (r.walStart() >= p.walEnd()) break;
            int len = (int) (Math.min(r.walEnd(), p.walEnd()) - r.walStart());
            System.arraycopy(r.walBytes(), 0, wal, (int) r.walStart(), len);
            for (CommitMark cm : r.commits()) if (cm.walEnd() <= p.walEnd()) recorded.add(cm.walEnd());
        }
        try {
            WalScanner.Result scan = WalScanner.scan(wal, wal.length, 0);
            List<Long> found = new ArrayList<>();
            for (int i = 0; i < scan.count; i++) found.add(scan.commitEnds[i]);
            if (!found.equals(recorded)) {
                int i = 0;
                while (i < Math.min(found.size(), recorded.size()) && found.get(i).equals(recorded.get(i))) i++;
                throw new CorruptObjectException(name, "DuckDB's framing disagrees with the recorded commits after "
                        + "commit " + i + " (WAL offset " + (i == 0 ? 0 : recorded.get(i - 1)) + "): the shipped WAL is "
                        + "damaged; restore commit:" + p.epoch() + "." + i + " or earlier");
            }
        } catch (WalScanner.WalFormatException e) {
            throw new CorruptObjectException(name, "not a valid DuckDB WAL: " + e.getMessage());
        }
        return wal;
    }

    /** The checked WAL of the target, and its merged form unless {@code notMerged} says why not. */
    private record PreparedWal(byte[] wal, WalMerger.Merged merged, String notMerged) {}

    /**
     * Runs beside the {@link Materialisation} (thread {@code duckguard-restore-wal}): reads and checks the WAL up to the
     * target, merges it, and loads DuckDB's driver and native library (best effort: a failure there is reported by
     * the connect that follows, as without this).
     */
    private PreparedWal prepareWal(DuckDbDriver duckdb, Manifest m, Point p) throws IOException, CorruptObjectException {
        byte[] wal = checkedWal(p, m);
        WalMerger.Merged merged = null;
        String notMerged = null;
        try {
            merged = WalMerger.merge(wal, wal.length);
            WalScanner.Result check = WalScanner.scan(merged.wal(), merged.wal().length, 0);
            if (check.count != merged.transactions() || check.lastCommitEnd(0) != merged.wal().length) {
                throw new WalScanner.WalFormatException("the merged WAL does not frame as " + merged.transactions()
                        + " transactions");
            }
        } catch (WalScanner.WalFormatException e) {
            merged = null;
            notMerged = e.getMessage();
        }
        duckdb.preload();
        return new PreparedWal(wal, merged, notMerged);
    }

    /**
     * Replays the target's commits onto the materialised snapshot. DuckDB pays ~100 us per replayed commit, so
     * runs of commits are first merged into single transactions where that is the same ({@link WalMerger}); if
     * DuckDB refuses the merged WAL (an eager constraint check) or stops short, the snapshot is materialised again
     * and the original WAL replayed commit by commit, with every check as before.
     */
    private void replay(DuckDbDriver duckdb, Manifest m, Path file, Point p, PreparedWal prepared)
            throws IOException, CorruptObjectException, SQLException {
        byte[] wal = prepared.wal();
        Path walFile = Path.of(file + ".wal");
        WalMerger.Merged merged = prepared.merged();
        if (prepared.notMerged() != null) {
            progress.accept("WAL of epoch " + p.epoch() + " not merged (" + prepared.notMerged() + "); replaying it as it is");
        }
        Map<String, Long> expected = null;
        if (merged != null && merged.transactions() < merged.commits() && merged.rowDelta() != null) {
            try {
                expected = rowCounts(duckdb, file, merged.rowDelta());
            } catch (SQLException e) {
                progress.accept("WAL of epoch " + p.epoch() + " not merged (row counts of the snapshot: " + e.getMessage()
                        + "); replaying it as it is");
            }
        }
        if (expected != null) {
            Map<String, Long> want = expected;
            byte[] mergedWal = mergedWalTap.apply(merged.wal());
            writeFile(walFile, mergedWal);
            try {
                long t = System.nanoTime();
                int transactions = merged.transactions();
                long replayNanos = replayAndCheckpoint(duckdb, file, mergedWal.length, p,
                        c -> checkRowCounts(c, want, transactions));
                progress.accept(String.format("replayed %d commits as %d transactions (%d insert entries joined) in %.2f s,"
                        + " checkpointed in %.2f s", merged.commits(), merged.transactions(), merged.insertsJoined(),
                        replayNanos / 1e9, (System.nanoTime() - t - replayNanos) / 1e9));
                return;
            } catch (SQLException | RepositoryException e) {
                progress.accept("replaying " + merged.commits() + " commits as " + merged.transactions()
                        + " transactions failed (" + e.getMessage() + "); replaying them one by one");
                Files.deleteIfExists(walFile);
                Files.deleteIfExists(file);
                Materialisation.start(this, m, file, false).await(); // DuckDB's checkpoint syncs it
            }
        }
        writeFile(walFile, wal);
        long t = System.nanoTime();
        long replayNanos = replayAndCheckpoint(duckdb, file, wal.length, p, c -> { });
        progress.accept(String.format("replayed %d commits in %.2f s, checkpointed in %.2f s", p.commits(),
                replayNanos / 1e9, (System.nanoTime() - t - replayNanos) / 1e9));
    }

    /**
     * The WAL DuckDB is to replay, beside the scratch file. Not synced: a crash leaves the whole scratch directory to
     * be removed, and DuckDB reads it from the page cache; the checkpoint that follows makes the file durable.
     */
    private static void writeFile(Path f, byte[] data) throws IOException {
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.wrap(data);
            long pos = 0;
            while (b.hasRemaining()) pos += ch.write(b, pos);
        }
    }

    /** A check of the replayed database before it is checkpointed. */
    @FunctionalInterface
    interface ReplayCheck {
        void check(Connection c) throws SQLException, IOException;
    }

    /** The row count of each table the merged WAL changes, as the snapshot has it plus that change. */
    private static Map<String, Long> rowCounts(DuckDbDriver duckdb, Path file, Map<String, Long> delta) throws SQLException {
        Map<String, Long> expected = new java.util.HashMap<>();
        try (Connection c = duckdb.connectReadOnly(file); Statement s = c.createStatement()) {
            for (Map.Entry<String, Long> e : delta.entrySet()) expected.put(e.getKey(), count(s, e.getKey()) + e.getValue());
        }
        return expected;
    }

    private static long count(Statement s, String table) throws SQLException {
        StringBuilder q = new StringBuilder("SELECT count(*) FROM ");
        String[] parts = table.split("\0", -1);
        for (int i = 0; i < parts.length; i++) q.append(i > 0 ? "." : "").append('"').append(parts[i].replace("\"", "\"\"")).append('"');
        try (java.sql.ResultSet rs = s.executeQuery(q.toString())) {
            rs.next();
            return rs.getLong(1);
        }
    }

    /**
     * DuckDB 1.5.6 stops replaying at an error inside a transaction without saying so (it prints a line and keeps
     * the transactions before): a merged WAL must prove it was replayed to its end. Every later transaction that
     * inserts or deletes changes a row count, so counts as expected mean nothing was dropped that could have failed
     * (a run of updates alone is as safe merged as not: it cannot name a row inserted in the run).
     */
    private static void checkRowCounts(Connection c, Map<String, Long> expected, int transactions)
            throws SQLException, RepositoryException {
        try (Statement s = c.createStatement()) {
            for (Map.Entry<String, Long> e : expected.entrySet()) {
                long n = count(s, e.getKey());
                if (n != e.getValue()) {
                    throw new RepositoryException("after replaying the WAL as " + transactions + " transactions, table "
                            + e.getKey().replace('\0', '.') + " has " + n + " rows where " + e.getValue() + " were expected");
                }
            }
        }
    }

    /**
     * DuckDB replays the WAL when it opens the file read-write, truncating it at the last entry it accepted. If
     * that is short of the cut, DuckDB stopped early (a damaged length field looks like a torn tail to it):
     * report it instead of returning a database that silently lacks commits.
     *
     * <p>The checkpoint is DuckDB's own at the close of its last connection, which then deletes the WAL. Not a
     * CHECKPOINT statement: that one runs on a DuckDB worker while the calling thread polls for the result, one of
     * the two cores spinning for the whole checkpoint (measured with perf: ~0.9 of a core for 0.6 s); at close the
     * closing thread checkpoints itself, with the worker. DuckDB only logs a checkpoint that fails at close, so a
     * WAL still there afterwards means it did not happen: then an explicit CHECKPOINT, whose error is reported.
     *
     * @return how long DuckDB took to open the file, i.e. to replay the WAL (nanoseconds)
     */
    private long replayAndCheckpoint(DuckDbDriver duckdb, Path file, long walLength, Point p, ReplayCheck check)
            throws SQLException, IOException {
        Path wal = Path.of(file + ".wal");
        long t0 = System.nanoTime();
        long replayed;
        try (Connection c = duckdb.connect(file)) {
            replayed = System.nanoTime() - t0;
            long kept = Files.exists(wal) ? Files.size(wal) : 0;
            if (kept != walLength) {
                throw new RepositoryException("DuckDB replayed only " + kept + " of " + walLength
                        + " WAL bytes of epoch " + p.epoch() + ": the shipped WAL is damaged; restore an earlier point");
            }
            check.check(c);
            beforeCloseTap.check(c);
        }
        if (Files.exists(wal) && Files.size(wal) > 0) {
            progress.accept("DuckDB did not checkpoint at close (its WAL is still there); running CHECKPOINT");
            try (Connection c = duckdb.connect(file); Statement s = c.createStatement()) {
                s.execute("CHECKPOINT");
            }
        }
        Files.deleteIfExists(wal); // checkpointed: the WAL holds nothing the file lacks
        return replayed;
    }

    /** Scratch directories are named {@code <prefix><random>} beside the output and say who owns them. */
    static final String SCRATCH_PREFIX = ".duckguard-restore-";
    static final String SCRATCH_OWNER = "owner";

    /**
     * This process as a scratch directory's owner, {@code <pid> <boot id> <host>}, to tell a running restore from a
     * dead one. Read from /proc (Linux) once: no name lookup that could hang; elsewhere "unknown", and nothing is
     * ever judged stale.
     */
    private static final String[] THIS_PROCESS = {Long.toString(ProcessHandle.current().pid()),
            proc("sys/kernel/random/boot_id"), proc("sys/kernel/hostname")};

    private static String proc(String file) {
        try {
            String v = Files.readString(Path.of("/proc", file)).trim();
            return v.isEmpty() || v.contains(" ") ? "unknown" : v;
        } catch (IOException | RuntimeException e) {
            return "unknown";
        }
    }

    /**
     * Removes the scratch directories of restores that were killed (kill -9, power loss) before they could clean up:
     * each holds a whole database and would otherwise fill the disk over retries. Only those this host owns and whose
     * process is gone (not running, or from an earlier boot); a running restore's, another host's (a shared volume)
     * and one without a readable owner are left alone.
     */
    private void removeStaleScratch(Path parent) {
        String[] me = THIS_PROCESS;
        if (me[1].equals("unknown") || me[2].equals("unknown")) return;
        try (java.nio.file.DirectoryStream<Path> ds = Files.newDirectoryStream(parent, SCRATCH_PREFIX + "*")) {
            for (Path d : ds) {
                if (!Files.isDirectory(d, java.nio.file.LinkOption.NOFOLLOW_LINKS)) continue;
                String[] owner;
                long pid;
                try {
                    owner = Files.readString(d.resolve(SCRATCH_OWNER)).trim().split(" ");
                    if (owner.length != 3 || !owner[2].equals(me[2])) continue;
                    pid = Long.parseLong(owner[0]);
                } catch (IOException | NumberFormatException e) {
                    continue;
                }
                boolean sameBoot = owner[1].equals(me[1]);
                if (sameBoot && ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) continue;
                long bytes = treeSize(d);
                deleteTree(d);
                progress.accept(String.format("removed %s, left by an interrupted restore (process %d%s): %.1f MB",
                        d, pid, sameBoot ? " is gone" : ", before the last reboot", bytes / 1e6));
            }
        } catch (IOException e) {
            progress.accept("could not look for scratch directories of interrupted restores in " + parent + ": " + e);
        }
    }

    private static long treeSize(Path dir) {
        try {
            return io.duckguard.runtime.util.FileTrees.bytes(dir);
        } catch (IOException e) {
            return 0; // only for the message
        }
    }

    private static void deleteTree(Path dir) {
        try {
            io.duckguard.runtime.util.FileTrees.delete(dir);
        } catch (IOException ignored) {
            // scratch space only
        }
    }
}
