package io.duckguard.runtime.repository;

import io.duckguard.runtime.crypto.CorruptObjectException;
import io.duckguard.runtime.crypto.DataKey;
import io.duckguard.runtime.crypto.MasterKey;
import io.duckguard.runtime.util.Log;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;

/**
 * Master key rotation: {@code keys rotate}, {@code keys retire}, {@code keys list}. Data is never re-encrypted:
 * a rotation adds a wrap of every data key for the new master key (a few hundred bytes per data key), a retirement
 * removes the wraps of the old one.
 *
 * <p>Crash-safe and safe beside a running agent: the new master key is first listed as active (so every data key
 * created from then on, by any process, is wrapped for it too), then every record gets its wrap (each record is
 * rewritten atomically), and only then does the new key become current; a crash leaves the old key current and a
 * rotation that can be run again. Retirement refuses while any data key would be left without a wrap for another
 * active master key. One {@code keys} command at a time per repository (a lock file, {@code keys/.lock}).
 */
public final class KeyRotation {
    /** Records are rewritten in parallel: each needs an fsync, which the file system batches across threads. */
    private static final int THREADS = Math.min(16, 4 * Runtime.getRuntime().availableProcessors());

    private KeyRotation() {}

    /** What a rotation did. */
    public record RotateReport(String oldKeyId, String newKeyId, int dataKeys, int rewrapped, long millis) {
        public double keysPerSecond() {
            return millis == 0 ? rewrapped * 1000.0 : rewrapped * 1000.0 / millis;
        }
    }

    /** What a retirement did. */
    public record RetireReport(String keyId, int wrapsRemoved, int dataKeys) {}

    /** One master key as {@code keys list} shows it. */
    public record KeyLine(String id, Instant created, long ageDays, String source, boolean current, Instant retired,
                          int wrappedDataKeys) {}

    /**
     * Adds {@code newKey} as a master key of {@code repo} (opened with the current or another active key) and wraps
     * every data key for it; then makes it the current key. Running it again with the same new key completes an
     * interrupted rotation (and wraps data keys created meanwhile by an agent that had not seen the new key yet).
     */
    public static RotateReport rotate(Repository repo, MasterKey newKey, Consumer<String> progress) throws IOException {
        DataKeys keys = requireKeys(repo);
        long t0 = System.nanoTime();
        try (Lock lock = lock(repo)) {
            MasterKeys reg = repo.masterKeys();
            String oldId = reg.currentId();
            MasterKeys.Entry existing = reg.get(newKey.keyId());
            if (existing != null && !existing.active()) {
                throw new RepositoryException("master key " + newKey.keyId() + " was retired from this repository on "
                        + existing.retired() + "; rotate to a new key");
            }
            if (existing != null && newKey.keyId().equals(oldId) && reg.active().size() == 1) {
                throw new RepositoryException("master key " + newKey.keyId() + " already is the current key of this repository; "
                        + "give a new key to rotate to");
            }
            if (existing == null) {
                // Active first: from here on every new data key, in any process, is wrapped for it as well.
                reg = reg.with(MasterKeys.entryOf(newKey, Instant.now()));
                writeRegistry(repo, reg);
                progress.accept("added master key " + newKey.keyId() + " (" + newKey.origin() + ")");
            }
            MasterKeys.Entry target = reg.get(newKey.keyId());
            int total = 0;
            int rewrapped = 0;
            List<String> failed = java.util.Collections.synchronizedList(new ArrayList<>());
            // Until a pass finds nothing to do: an agent may have created keys while the first pass ran.
            for (int pass = 0; pass < 10; pass++) {
                List<String> ids = keys.ids();
                total = ids.size();
                failed.clear();
                java.util.concurrent.atomic.AtomicInteger done = new java.util.concurrent.atomic.AtomicInteger();
                keys.rewriteAll(ids, THREADS, r -> {
                    if (r.wraps().containsKey(target.id())) return null;
                    DataKey k;
                    try {
                        k = keys.unwrap(r, DataKeys.DIR + "/" + r.id());
                    } catch (CorruptObjectException e) {
                        failed.add(r.id() + " (" + e.getMessage() + ")");
                        return null;
                    }
                    done.incrementAndGet();
                    return keys.withWrap(r, k, target);
                });
                rewrapped += done.get();
                if (done.get() == 0) break;
                progress.accept("re-wrapped " + rewrapped + " of " + total + " data keys");
            }
            if (!failed.isEmpty()) {
                throw new RepositoryException(failed.size() + " data keys could not be wrapped for the new key, so it did not "
                        + "become current (run keys rotate again with a key that opens them): "
                        + failed.subList(0, Math.min(5, failed.size())));
            }
            // The new key must open the repository before it becomes current.
            Repository.open(repo.root(), newKey);
            writeRegistry(repo, repo.masterKeys().withCurrent(newKey.keyId()));
            long millis = (System.nanoTime() - t0) / 1_000_000;
            RotateReport rep = new RotateReport(oldId, newKey.keyId(), total, rewrapped, millis);
            Log.info(String.format("repository %s: master key rotated %s -> %s: %d data keys re-wrapped in %d ms (%.0f/s), "
                    + "no data re-encrypted", repo.root(), oldId, newKey.keyId(), rewrapped, millis, rep.keysPerSecond()));
            return rep;
        }
    }

    /**
     * Removes master key {@code id} from {@code repo} (opened with another active key): refuses the current key and
     * refuses while any data key has no wrap for another active key. The key is marked retired first (no new data
     * key is wrapped for it from then on), then its wraps are removed; running it again finishes an interrupted one.
     */
    public static RetireReport retire(Repository repo, String id, Consumer<String> progress) throws IOException {
        DataKeys keys = requireKeys(repo);
        try (Lock lock = lock(repo)) {
            MasterKeys reg = repo.masterKeys();
            MasterKeys.Entry e = reg.get(id);
            if (e == null) {
                throw new RepositoryException("repository " + repo.root() + " has no master key " + id + " (it has "
                        + reg.activeIds() + ")");
            }
            if (id.equals(reg.currentId())) {
                throw new RepositoryException("master key " + id + " is the current key of repository " + repo.root()
                        + "; rotate to a new key first (keys rotate), then retire this one");
            }
            if (id.equals(repo.masterKey().keyId())) {
                throw new RepositoryException("open the repository with a key that stays (the current key, "
                        + reg.currentId() + "), not with the key being retired");
            }
            List<String> others = new ArrayList<>(reg.activeIds());
            others.remove(id);
            List<String> lacking = new ArrayList<>();
            for (String kid : keys.ids()) {
                DataKeys.Record r = readOrNull(keys, kid);
                if (r == null) continue;
                boolean covered = false;
                for (String o : others) covered |= r.wraps().containsKey(o);
                if (!covered) lacking.add(kid);
            }
            if (!lacking.isEmpty()) {
                throw new RepositoryException("refusing to retire master key " + id + ": " + lacking.size() + " data keys are "
                        + "wrapped for no other active key (e.g. " + lacking.subList(0, Math.min(5, lacking.size()))
                        + "); run keys rotate again first");
            }
            if (e.active()) {
                writeRegistry(repo, reg.withRetired(id, Instant.now()));
                progress.accept("master key " + id + " marked retired");
            }
            List<String> ids = keys.ids();
            java.util.concurrent.atomic.AtomicInteger removed = new java.util.concurrent.atomic.AtomicInteger();
            keys.rewriteAll(ids, THREADS, r -> {
                if (!r.wraps().containsKey(id)) return null;
                Map<String, byte[]> wraps = new TreeMap<>(r.wraps());
                wraps.remove(id);
                if (wraps.isEmpty()) return null; // checked above; never leave a key without a wrap
                removed.incrementAndGet();
                return new DataKeys.Record(r.id(), r.kind(), r.owner(), r.created(), wraps);
            });
            int total = ids.size();
            Log.info("repository " + repo.root() + ": master key " + id + " retired (" + removed.get() + " wraps removed)");
            return new RetireReport(id, removed.get(), total);
        }
    }

    /** The master keys of the repository in {@code dir}; needs no key (nothing secret is shown). */
    public static List<KeyLine> list(Path dir) throws IOException {
        java.util.Properties p = Repository.readProps(dir);
        if ("none".equals(p.getProperty("encryption"))) return List.of();
        if (p.getProperty("master-keys") == null) { // format 1: one key, no registry yet
            Instant created = Instant.parse(p.getProperty("created"));
            return List.of(new KeyLine(p.getProperty("key-id", "?"), created, Duration.between(created, Instant.now()).toDays(),
                    "file", true, null, -1));
        }
        MasterKeys reg = MasterKeys.from(p);
        DataKeys keys = new DataKeys(dir, () -> reg, List.of());
        Map<String, Integer> wrapped = new TreeMap<>();
        for (String kid : keys.ids()) {
            DataKeys.Record r = readOrNull(keys, kid);
            if (r == null) continue;
            for (String m : r.wraps().keySet()) wrapped.merge(m, 1, Integer::sum);
        }
        List<KeyLine> out = new ArrayList<>();
        for (MasterKeys.Entry e : reg.all()) {
            long age = e.created() == null ? -1 : Duration.between(e.created(), Instant.now()).toDays();
            out.add(new KeyLine(e.id(), e.created(), age, e.source(), e.id().equals(reg.currentId()), e.retired(),
                    wrapped.getOrDefault(e.id(), 0)));
        }
        return out;
    }

    private static DataKeys.Record readOrNull(DataKeys keys, String id) throws IOException {
        try {
            return keys.read(id);
        } catch (java.nio.file.NoSuchFileException e) {
            return null;
        }
    }

    private static DataKeys requireKeys(Repository repo) throws RepositoryException {
        if (!repo.codec().encrypted()) throw new RepositoryException("repository " + repo.root() + " is not encrypted (encryption=none): it has no keys");
        if (repo.keys() == null) {
            throw new RepositoryException("repository " + repo.root() + " has format 1; open it for writing (it is upgraded) first");
        }
        return repo.keys();
    }

    private static void writeRegistry(Repository repo, MasterKeys reg) throws IOException {
        java.util.Properties p = Repository.readProps(repo.root());
        reg.writeTo(p);
        Repository.writeProps(repo.root(), p, true);
    }

    /** An exclusive lock on keys/.lock for one keys command (released on close, and by the OS if the process dies). */
    private record Lock(FileChannel ch, FileLock lock) implements AutoCloseable {
        @Override
        public void close() throws IOException {
            try {
                lock.release();
            } finally {
                ch.close();
            }
        }
    }

    private static Lock lock(Repository repo) throws IOException {
        Path dir = repo.keys().dir();
        io.duckguard.runtime.util.AtomicFiles.createDirectories(dir);
        FileChannel ch = FileChannel.open(dir.resolve(".lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        FileLock l;
        try {
            l = ch.tryLock();
        } catch (java.nio.channels.OverlappingFileLockException e) {
            l = null;
        }
        if (l == null) {
            ch.close();
            throw new RepositoryException("another keys command is running on repository " + repo.root());
        }
        return new Lock(ch, l);
    }
}
