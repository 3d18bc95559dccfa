package io.duckguard.runtime.repository;

import io.duckguard.runtime.crypto.CorruptObjectException;
import io.duckguard.runtime.crypto.DataKey;
import io.duckguard.runtime.crypto.KeyWrap;
import io.duckguard.runtime.crypto.MasterKey;
import io.duckguard.runtime.crypto.ObjectCodec;
import io.duckguard.runtime.util.AtomicFiles;
import io.duckguard.runtime.util.Bytes;
import java.io.IOException;
import java.io.StringReader;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The repository's data keys: {@code keys/<data key id>}, one small text record per key holding the key wrapped
 * once for each master key (never the key itself), plus what it encrypts:
 *
 * <pre>
 * kind=id|meta|legacy|pack|wal|manifest
 * owner=&lt;pack name&gt; | databases/&lt;db&gt;/epochs/&lt;n&gt;/wal | ...
 * created=&lt;instant&gt;
 * wrap.&lt;master key id&gt;=&lt;hex of the wrap (see KeyWrap)&gt;
 * </pre>
 *
 * Which key encrypts what: one key per pack (its blocks), one per epoch's WAL log and one per epoch's manifest of
 * each database, the repository-wide {@code id} key (HMAC of block content ids: it never changes, so dedup survives
 * rotations), {@code meta} for small metadata, and {@code legacy} for objects a format-1 repository wrote before
 * its upgrade. Garbage collection destroys the record of a pack or epoch it removes (crypto-shredding).
 *
 * <p>Records are written tmp -> fsync -> rename -> fsync directory. A new record is wrapped for every active master
 * key listed in repository.properties, read afresh each time, so keys created while {@code keys rotate} runs in
 * another process are wrapped for the new master key too. Unwrapped keys are cached; thread-safe.
 */
public final class DataKeys implements ObjectCodec.KeyResolver {
    public static final String DIR = "keys";
    public static final String ID_KEY = "id";
    public static final String META_KEY = "meta";

    /** One record as stored. */
    public record Record(String id, String kind, String owner, Instant created, Map<String, byte[]> wraps) {}

    /** Reads the master key registry (repository.properties) afresh. */
    @FunctionalInterface
    interface Registry {
        MasterKeys read() throws IOException;
    }

    private final Path dir;
    private final Registry registry;
    private final List<MasterKey> secrets;
    private final ConcurrentHashMap<String, DataKey> cache = new ConcurrentHashMap<>();

    DataKeys(Path root, Registry registry, List<MasterKey> secrets) {
        this.dir = root.resolve(DIR);
        this.registry = registry;
        this.secrets = List.copyOf(secrets);
    }

    public static String packKeyId(String pack) {
        return "p-" + pack;
    }

    public static String walKeyId(String database, long epoch) {
        return "w-" + epochHash("wal", database, epoch);
    }

    public static String manifestKeyId(String database, long epoch) {
        return "m-" + epochHash("manifest", database, epoch);
    }

    private static String epochHash(String part, String database, long epoch) {
        byte[] b = (part + "\0" + database + "\0" + epoch).getBytes(StandardCharsets.UTF_8);
        return Bytes.hex(Bytes.sha256(b, 0, b.length)).substring(0, 32);
    }

    public Path dir() {
        return dir;
    }

    public boolean exists(String id) {
        return DataKey.isValidId(id) && Files.isRegularFile(dir.resolve(id));
    }

    /** Ids of every record, sorted (temporary files and anything that is not a key id are skipped). */
    public List<String> ids() throws IOException {
        if (!Files.isDirectory(dir)) return List.of();
        List<String> out = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            for (Path p : ds) {
                String n = p.getFileName().toString();
                if (DataKey.isValidId(n) && Files.isRegularFile(p)) out.add(n);
            }
        }
        Collections.sort(out);
        return out;
    }

    /** Finds and unwraps the key an object names (the codec's resolver). */
    @Override
    public DataKey resolve(String id, String objectName) throws CorruptObjectException {
        DataKey k = cache.get(id);
        if (k != null) return k;
        Record r;
        try {
            r = read(id);
        } catch (NoSuchFileException e) {
            throw new CorruptObjectException(objectName, "its data key " + id + " does not exist (" + DIR + "/" + id
                    + "): it was destroyed when its epoch or pack was removed, or the record was lost");
        } catch (IOException e) {
            throw new CorruptObjectException(objectName, "cannot read its data key " + DIR + "/" + id + ": " + e.getMessage());
        }
        k = unwrap(r, objectName);
        DataKey had = cache.putIfAbsent(id, k);
        return had != null ? had : k;
    }

    /** Unwraps a record with a master key this process holds. */
    DataKey unwrap(Record r, String objectName) throws CorruptObjectException {
        for (MasterKey m : secrets) {
            byte[] w = r.wraps().get(m.keyId());
            if (w == null) continue;
            try {
                return KeyWrap.unwrap(r.id(), w, m);
            } catch (GeneralSecurityException e) {
                throw new CorruptObjectException(objectName, "data key " + DIR + "/" + r.id() + " does not open with master "
                        + "key " + m.keyId() + ": its record was changed or swapped");
            }
        }
        List<String> held = new ArrayList<>();
        for (MasterKey m : secrets) held.add(m.keyId());
        throw new CorruptObjectException(objectName, "data key " + r.id() + " is not wrapped for master key "
                + String.join(",", held) + " (it is for " + r.wraps().keySet() + "); open the repository with one of "
                + "those keys, or finish the rotation (keys rotate)");
    }

    /**
     * The key with a deterministic id (an epoch's) for writing, created and stored if it does not exist yet. Its
     * record's time is refreshed, so that garbage collection, which takes a key whose object does not exist for
     * the leftover of a crash once it is older than its grace period, cannot take it while the object is being
     * written; a record that went missing while its key was in use here is stored again.
     */
    synchronized DataKey getOrCreate(String id, String kind, String owner) throws IOException {
        Path f = dir.resolve(id);
        DataKey k = cache.get(id);
        if (k == null && Files.exists(f)) {
            try {
                k = resolve(id, DIR + "/" + id);
            } catch (CorruptObjectException e) {
                throw new RepositoryException(e.getMessage());
            }
        }
        if (k == null) return store(DataKey.generate(id), kind, owner);
        try {
            Files.setLastModifiedTime(f, java.nio.file.attribute.FileTime.from(Instant.now()));
        } catch (NoSuchFileException e) {
            return store(k, kind, owner);
        }
        return k;
    }

    /**
     * Wraps {@code key} for every active master key and makes its record durable; afterwards objects sealed with it
     * can be written. Re-reads the registry after writing: a master key added by a concurrent rotation (which lists
     * the records only after adding it) gets its wrap here.
     */
    DataKey store(DataKey key, String kind, String owner) throws IOException {
        MasterKeys before = registry.read();
        Map<String, byte[]> wraps = new TreeMap<>();
        addWraps(key, before, wraps);
        write(new Record(key.id(), kind, owner, Instant.now(), wraps));
        MasterKeys after = registry.read();
        if (addWraps(key, after, wraps)) write(new Record(key.id(), kind, owner, Instant.now(), wraps));
        cache.put(key.id(), key);
        return key;
    }

    private static boolean addWraps(DataKey key, MasterKeys reg, Map<String, byte[]> wraps) throws RepositoryException {
        boolean added = false;
        for (MasterKeys.Entry e : reg.active()) {
            if (wraps.containsKey(e.id())) continue;
            if (e.publicKey() == null) throw new RepositoryException("master key " + e.id() + " has no public key in repository.properties");
            wraps.put(e.id(), KeyWrap.wrap(key, e.id(), e.publicKey()));
            added = true;
        }
        if (wraps.isEmpty()) throw new RepositoryException("the repository has no active master key to wrap data keys for");
        return added;
    }

    /** Adds a wrap for a master key to an existing record (rotation). */
    Record withWrap(Record r, DataKey key, MasterKeys.Entry master) {
        Map<String, byte[]> wraps = new TreeMap<>(r.wraps());
        wraps.put(master.id(), KeyWrap.wrap(key, master.id(), master.publicKey()));
        return new Record(r.id(), r.kind(), r.owner(), r.created(), wraps);
    }

    /** Destroys a data key: its record is deleted durably, and its cached copy dropped. */
    public void destroy(String id) throws IOException {
        if (!DataKey.isValidId(id)) return;
        cache.remove(id);
        if (Files.deleteIfExists(dir.resolve(id))) AtomicFiles.fsyncDirectory(dir);
    }

    public Record read(String id) throws IOException {
        if (!DataKey.isValidId(id)) throw new RepositoryException("'" + id + "' is not a data key id");
        String text = Files.readString(dir.resolve(id), StandardCharsets.UTF_8);
        Properties p = new Properties();
        p.load(new StringReader(text));
        Map<String, byte[]> wraps = new TreeMap<>();
        try {
            for (String k : p.stringPropertyNames()) {
                if (k.startsWith("wrap.")) wraps.put(k.substring(5), Bytes.unhex(p.getProperty(k).trim()));
            }
            String created = p.getProperty("created");
            return new Record(id, p.getProperty("kind", "?"), p.getProperty("owner", ""),
                    created == null ? null : Instant.parse(created), wraps);
        } catch (RuntimeException e) {
            throw new RepositoryException("data key record " + DIR + "/" + id + " is damaged: " + e.getMessage());
        }
    }

    void write(Record r) throws IOException {
        AtomicFiles.createDirectories(dir);
        AtomicFiles.write(dir.resolve(r.id()), encode(r), true);
    }

    /**
     * Rewrites many records (rotation, retirement) on {@code threads} threads: each one tmp -> fsync -> rename,
     * then the directory is fsynced once. A crash before that may undo some of the renames, never tear a record:
     * the caller's state (the registry) only moves on after this returns.
     */
    void rewriteAll(List<String> ids, int threads, RecordChange change) throws IOException {
        if (ids.isEmpty()) return;
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(Math.max(1, threads),
                io.duckguard.runtime.util.Threads.factory("keys", true));
        try {
            List<java.util.concurrent.Future<?>> fs = new ArrayList<>();
            for (String id : ids) {
                fs.add(pool.submit(() -> {
                    Record r;
                    try {
                        r = read(id);
                    } catch (NoSuchFileException e) {
                        return null; // destroyed meanwhile by garbage collection
                    }
                    Record changed = change.apply(r);
                    if (changed == null) return null;
                    Path target = dir.resolve(id);
                    Path tmp = dir.resolve(id + AtomicFiles.TMP_MARK + Long.toHexString(java.util.concurrent.ThreadLocalRandom.current().nextLong()));
                    try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(tmp,
                            java.nio.file.StandardOpenOption.CREATE_NEW, java.nio.file.StandardOpenOption.WRITE)) {
                        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(encode(changed));
                        while (b.hasRemaining()) ch.write(b);
                        ch.force(true);
                    }
                    if (!Files.exists(target)) { // destroyed meanwhile: do not bring it back
                        Files.deleteIfExists(tmp);
                        return null;
                    }
                    Files.move(tmp, target, java.nio.file.StandardCopyOption.ATOMIC_MOVE, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                    return null;
                }));
            }
            for (java.util.concurrent.Future<?> f : fs) io.duckguard.runtime.util.Futures.await(f);
        } finally {
            pool.shutdownNow();
        }
        AtomicFiles.fsyncDirectory(dir);
    }

    /** A change to one record; null = leave it as it is. */
    @FunctionalInterface
    interface RecordChange {
        Record apply(Record r) throws IOException;
    }

    private static byte[] encode(Record r) throws IOException {
        Properties p = new Properties();
        p.setProperty("kind", r.kind());
        p.setProperty("owner", r.owner());
        if (r.created() != null) p.setProperty("created", r.created().toString());
        for (Map.Entry<String, byte[]> w : r.wraps().entrySet()) p.setProperty("wrap." + w.getKey(), Bytes.hex(w.getValue()));
        StringWriter sw = new StringWriter();
        p.store(sw, "duckguard data key: wrapped for each master key, never stored in the clear");
        return sw.toString().getBytes(StandardCharsets.UTF_8);
    }
}
