package io.duckguard.runtime.retention;

import io.duckguard.runtime.crypto.CorruptObjectException;
import io.duckguard.runtime.repository.BlockRef;
import io.duckguard.runtime.repository.DatabaseHistory;
import io.duckguard.runtime.repository.Repository;
import io.duckguard.runtime.util.AtomicFiles;
import io.duckguard.runtime.util.Log;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * Applies retention, then removes packs no manifest references. Crash-safe by ordering (invariant 8):
 * <ol>
 *   <li>per dropped epoch: its WAL log goes first, then its manifest, then its directory. A crash in between
 *       leaves an epoch without WAL (a snapshot-only point) or without manifest (never restorable, dropped next
 *       time): nothing a retained point needs;</li>
 *   <li>then the set of packs referenced by every remaining manifest, of every database, is computed from the
 *       manifests on disk, and only packs outside it go.</li>
 * </ol>
 * A snapshot running at the same time (the agent, while the CLI collects) renames its new packs into place before
 * it writes its manifest; packs (and temporary files) younger than {@code grace} are therefore never removed.
 * Garbage collection never rewrites an object: a pack with one live block stays whole.
 */
public final class GarbageCollector {
    /** What a run did (or, dry, would do). */
    public record Report(List<String> removedEpochs, List<String> removedWalLogs, int packsRemoved, long bytesFreed,
                         int packsKept) {}

    private final Repository repo;
    private final Duration grace;
    private final Consumer<String> progress;

    public GarbageCollector(Repository repo, Duration grace, Consumer<String> progress) {
        this.repo = repo;
        this.grace = grace;
        this.progress = progress;
    }

    public Report run(RetentionPolicy policy, boolean dryRun) throws IOException, CorruptObjectException {
        Instant now = Instant.now();
        List<String> epochs = new ArrayList<>();
        List<String> wals = new ArrayList<>();
        Set<String> live = new HashSet<>();
        for (String name : repo.databaseNames()) {
            DatabaseHistory h = repo.database(name);
            RetentionPolicy.Plan plan = policy.plan(h, now);
            for (long e : plan.dropWal()) {
                wals.add(name + " epoch " + e);
                if (!dryRun) deleteDurably(h.epochDir(e).resolve("wal"));
            }
            Set<Long> dropped = new HashSet<>(plan.dropEpoch());
            for (long e : plan.dropEpoch()) {
                epochs.add(name + " epoch " + e);
                if (!dryRun) {
                    Path dir = h.epochDir(e);
                    deleteDurably(dir.resolve("wal"));
                    deleteDurably(dir.resolve("manifest"));
                    deleteTree(dir);
                }
            }
            // Live packs: those of every manifest that stays (read back from disk, not from the plan's memory).
            for (long e : h.epochs()) {
                if (dropped.contains(e) || !h.hasManifest(e)) continue;
                for (BlockRef b : h.readManifest(e).chunks()) live.add(b.pack());
            }
        }
        int removed = 0;
        int kept = 0;
        long freed = 0;
        FileTime cutoff = FileTime.from(now.minus(grace));
        Path packs = repo.packsDir();
        if (Files.isDirectory(packs)) {
            try (DirectoryStream<Path> prefixes = Files.newDirectoryStream(packs)) {
                for (Path prefix : prefixes) {
                    try (DirectoryStream<Path> ds = Files.newDirectoryStream(prefix)) {
                        for (Path p : ds) {
                            String n = p.getFileName().toString();
                            String pack = n.contains(AtomicFiles.TMP_MARK) ? null : n;
                            if (pack != null && live.contains(pack)) {
                                kept++;
                                continue;
                            }
                            if (Files.getLastModifiedTime(p).compareTo(cutoff) > 0) {
                                kept++; // young: maybe a snapshot that has not written its manifest yet
                                continue;
                            }
                            freed += Files.size(p);
                            removed++;
                            if (!dryRun) {
                                io.duckguard.runtime.util.FaultInjection.gcStep();
                                Files.delete(p);
                            }
                        }
                    }
                    if (!dryRun) AtomicFiles.fsyncDirectory(prefix);
                }
            }
        }
        Report r = new Report(epochs, wals, removed, freed, kept);
        progress.accept(String.format("%s%d epochs removed, %d WAL logs removed (snapshots kept), %d packs removed "
                        + "(%.1f MB), %d packs kept", dryRun ? "dry run: would have " : "", epochs.size(), wals.size(),
                removed, freed / 1e6, kept));
        if (!dryRun && (removed > 0 || !epochs.isEmpty())) Log.info("gc: " + epochs.size() + " epochs, " + removed + " packs removed");
        return r;
    }

    private static void deleteDurably(Path p) throws IOException {
        io.duckguard.runtime.util.FaultInjection.gcStep();
        if (Files.deleteIfExists(p)) AtomicFiles.fsyncDirectory(p.getParent());
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) return;
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
        AtomicFiles.fsyncDirectory(dir.getParent());
    }
}
