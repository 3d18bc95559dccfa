package io.duckguard.runtime.retention;

import io.duckguard.runtime.crypto.CorruptObjectException;
import io.duckguard.runtime.repository.BlockRef;
import io.duckguard.runtime.repository.DataKeys;
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

/**
 * Applies retention, then removes packs no manifest references. Crash-safe by ordering (invariant 8):
 * <ol>
 *   <li>per dropped epoch: its WAL log goes first, then its manifest, then its directory. A crash in between
 *       leaves an epoch without WAL (a snapshot-only point) or without manifest (never restorable, dropped next
 *       time): nothing a retained point needs;</li>
 *   <li>then the set of packs referenced by every remaining manifest, of every database, is computed from the
 *       manifests on disk, and only packs outside it go;</li>
 *   <li>the data key of every removed WAL log, manifest and pack is destroyed after the object itself is gone
 *       (crypto-shredding: a copy of the object kept elsewhere cannot be opened with this repository's keys any
 *       more); a key left behind by a crash in between, whose object no longer exists, is destroyed on the next
 *       run once it is older than {@code grace}.</li>
 * </ol>
 * A snapshot running at the same time (the agent, while the CLI collects) renames its new packs into place before
 * it writes its manifest; packs (and temporary files) younger than {@code grace} are therefore never removed.
 * Garbage collection never rewrites an object: a pack with one live block stays whole.
 */
public final class GarbageCollector {
    /** What a run did (or, dry, would do). */
    public record Report(List<String> removedEpochs, List<String> removedWalLogs, int packsRemoved, long bytesFreed,
                         int packsKept, int keysDestroyed) {}

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
        DataKeys keys = repo.keys();
        Set<String> destroyed = new HashSet<>();
        for (String name : repo.databaseNamesWithHistory()) {
            DatabaseHistory h = repo.database(name);
            RetentionPolicy.Plan plan = policy.plan(h, now);
            for (long e : plan.dropWal()) {
                wals.add(name + " epoch " + e);
                if (!dryRun) {
                    // The tombstone first: verify then knows this WAL log went by retention, not by damage.
                    AtomicFiles.write(h.epochDir(e).resolve(DatabaseHistory.WAL_REMOVED), new byte[0]);
                    deleteDurably(h.epochDir(e).resolve("wal"));
                }
                destroy(keys, DataKeys.walKeyId(name, e), destroyed, dryRun);
            }
            Set<Long> dropped = new HashSet<>(plan.dropEpoch());
            for (long e : plan.dropEpoch()) {
                epochs.add(name + " epoch " + e);
                if (!dryRun) {
                    Path dir = h.epochDir(e);
                    // Tombstone first: a crash after the WAL log went but before the manifest did leaves a
                    // snapshot-only epoch that verify knows retention made, not damage.
                    if (Files.exists(dir.resolve("wal"))) AtomicFiles.write(dir.resolve(DatabaseHistory.WAL_REMOVED), new byte[0]);
                    deleteDurably(dir.resolve("wal"));
                    deleteDurably(dir.resolve("manifest"));
                    deleteTree(dir);
                }
                destroy(keys, DataKeys.walKeyId(name, e), destroyed, dryRun);
                destroy(keys, DataKeys.manifestKeyId(name, e), destroyed, dryRun);
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
                    List<String> removedPacks = new ArrayList<>();
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
                            removedPacks.add(pack != null ? pack : n.substring(0, n.indexOf(AtomicFiles.TMP_MARK)));
                            if (!dryRun) {
                                io.duckguard.runtime.util.FaultInjection.gcStep();
                                Files.delete(p);
                            }
                        }
                    }
                    if (!dryRun) AtomicFiles.fsyncDirectory(prefix);
                    for (String pack : removedPacks) destroy(keys, DataKeys.packKeyId(pack), destroyed, dryRun);
                }
            }
        }
        if (keys != null) destroyOrphans(keys, cutoff, destroyed, dryRun);
        Report r = new Report(epochs, wals, removed, freed, kept, destroyed.size());
        progress.accept(String.format("%s%d epochs removed, %d WAL logs removed (snapshots kept), %d packs removed "
                        + "(%.1f MB), %d packs kept, %d data keys destroyed", dryRun ? "dry run: would have " : "",
                epochs.size(), wals.size(), removed, freed / 1e6, kept, destroyed.size()));
        if (!dryRun && (removed > 0 || !epochs.isEmpty())) Log.info("gc: " + epochs.size() + " epochs, " + removed + " packs removed");
        return r;
    }

    /** Destroys a data key (after what it encrypted is durably gone). */
    private static void destroy(DataKeys keys, String id, Set<String> destroyed, boolean dryRun) throws IOException {
        if (keys == null || !keys.exists(id)) return;
        destroyed.add(id);
        if (!dryRun) {
            io.duckguard.runtime.util.FaultInjection.gcStep();
            keys.destroy(id);
        }
    }

    /**
     * Keys of packs, WAL logs and manifests that no longer exist (a crash between removing an object and its key,
     * a snapshot that failed after storing its pack's key). Only keys older than the grace period: a key is stored
     * just before the object it encrypts.
     */
    private void destroyOrphans(DataKeys keys, FileTime cutoff, Set<String> destroyed, boolean dryRun) throws IOException {
        if (!dryRun && Files.isDirectory(keys.dir())) {
            // Temporary files of a record write cut short by a crash.
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(keys.dir(), "*" + AtomicFiles.TMP_MARK + "*")) {
                for (Path p : ds) if (Files.getLastModifiedTime(p).compareTo(cutoff) <= 0) Files.deleteIfExists(p);
            }
        }
        for (String id : keys.ids()) {
            if (destroyed.contains(id)) continue;
            DataKeys.Record r;
            try {
                r = keys.read(id);
            } catch (IOException e) {
                continue; // a damaged record is verify's business, not something to delete
            }
            boolean orphan;
            switch (r.kind()) {
                case "pack": {
                    String pack = r.owner();
                    if (pack.length() < 3 || !pack.matches("[0-9a-f]+")) continue;
                    Path fin = repo.packsDir().resolve(pack.substring(0, 2)).resolve(pack);
                    orphan = !Files.exists(fin) && !Files.exists(fin.resolveSibling(pack + AtomicFiles.TMP_MARK + "pack"));
                    break;
                }
                case "wal":
                case "manifest":
                    if (!r.owner().startsWith("databases/") || r.owner().contains("..")) continue;
                    orphan = !Files.exists(repo.root().resolve(r.owner()));
                    break;
                default:
                    orphan = false;
            }
            if (!orphan) continue;
            try {
                if (Files.getLastModifiedTime(keys.dir().resolve(id)).compareTo(cutoff) > 0) continue;
            } catch (IOException e) {
                continue;
            }
            destroy(keys, id, destroyed, dryRun);
        }
    }

    private static void deleteDurably(Path p) throws IOException {
        io.duckguard.runtime.util.FaultInjection.gcStep();
        if (Files.deleteIfExists(p)) AtomicFiles.fsyncDirectory(p.getParent());
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) return;
        io.duckguard.runtime.util.FileTrees.delete(dir);
        AtomicFiles.fsyncDirectory(dir.getParent());
    }
}
