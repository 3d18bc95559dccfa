package io.duckguard.runtime.repository;

import io.duckguard.runtime.crypto.CorruptObjectException;
import io.duckguard.runtime.crypto.DataKey;
import io.duckguard.runtime.crypto.MasterKey;
import io.duckguard.runtime.crypto.ObjectCodec;
import io.duckguard.runtime.util.AtomicFiles;
import io.duckguard.runtime.util.Bytes;
import io.duckguard.runtime.util.Log;
import java.io.IOException;
import java.io.StringReader;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Properties;
import java.util.UUID;

/**
 * A backup repository: a directory on the backup volume.
 *
 * <pre>
 * repository.properties            format, id, encryption, master keys (ids, public keys, KDF salts: no secret,
 *                                  no user data)
 * keys/&lt;data key id&gt;               a data key wrapped for each master key (see {@link DataKeys})
 * packs/XX/&lt;pack id&gt;                sealed blocks of snapshots, content-addressed by keyed hash; key p-&lt;pack id&gt;
 * databases/&lt;name&gt;/database.properties   which database file this history belongs to
 * databases/&lt;name&gt;/epochs/&lt;epoch&gt;/manifest    snapshot n: the file right after checkpoint n (sealed)
 * databases/&lt;name&gt;/epochs/&lt;epoch&gt;/wal         WAL epoch n: append-only log of sealed commit batches
 * </pre>
 *
 * Every file is written tmp, fsync, rename, fsync directory, except the WAL logs, which are append-only with
 * self-delimiting authenticated records (a torn tail is detected and cut). Master keys are never stored here.
 *
 * <p>Format 2 (envelope encryption) is written; format 1 (one master key used directly) is still read. The agent
 * upgrades a format-1 repository when it opens it ({@link #open(Path, MasterKey, boolean)}); read-only tools leave
 * it as it is.
 *
 * <p>Thread-safe: the object is immutable after open; per-database histories synchronize their own writes.
 */
public final class Repository {
    public static final int FORMAT = 2;
    static final String PROPS = "repository.properties";
    private static final String KEY_CHECK_TEXT = "duckguard key check";

    private final Path root;
    private final String id;
    private final ObjectCodec codec;
    private final DataKeys keys; // null: no encryption, or a format-1 repository opened read-only
    private final int format;
    private final MasterKey masterKey; // null: no encryption

    private Repository(Path root, String id, ObjectCodec codec, DataKeys keys, int format, MasterKey masterKey) {
        this.root = root;
        this.id = id;
        this.codec = codec;
        this.keys = keys;
        this.format = format;
        this.masterKey = masterKey;
    }

    public static boolean exists(Path dir) {
        return Files.isRegularFile(dir.resolve(PROPS));
    }

    /** Creates a new, empty repository in {@code dir} (which may exist but must be empty). */
    public static Repository create(Path dir, MasterKey key) throws IOException {
        return create(dir, key, UUID.randomUUID().toString());
    }

    /** Creates a new repository with a given id (so its default key file can be written first). */
    public static Repository create(Path dir, MasterKey key, String id) throws IOException {
        if (exists(dir)) throw new RepositoryException("a repository already exists in " + dir);
        if (Files.isDirectory(dir)) {
            List<String> names = new ArrayList<>();
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
                for (Path p : ds) names.add(p.getFileName().toString());
            }
            if (names.equals(List.of(DataKeys.DIR))) {
                // left by a creation that crashed before repository.properties
                io.duckguard.runtime.util.FileTrees.delete(dir.resolve(DataKeys.DIR));
            } else if (!names.isEmpty()) {
                throw new RepositoryException(dir + " is not empty and holds no duckguard repository; "
                        + "give an empty or new directory");
            }
        }
        try {
            AtomicFiles.createDirectories(dir);
        } catch (IOException e) {
            throw new RepositoryException("cannot create repository directory " + dir + ": " + e, e);
        }
        if (!Files.isWritable(dir)) throw new RepositoryException("repository directory " + dir + " is not writable");
        Instant now = Instant.now();
        Properties p = new Properties();
        p.setProperty("format", Integer.toString(FORMAT));
        p.setProperty("id", id);
        p.setProperty("created", now.toString());
        p.setProperty("encryption", key == null ? "none" : "aes-256-gcm");
        if (key != null) {
            // The data keys first: repository.properties, written last, is what makes the directory a repository.
            MasterKeys reg = MasterKeys.first(key, now);
            DataKeys dk = new DataKeys(dir, () -> reg, List.of(key));
            dk.store(DataKey.generate(DataKeys.ID_KEY), "id", "repository");
            dk.store(DataKey.generate(DataKeys.META_KEY), "meta", "repository");
            reg.writeTo(p);
        }
        writeProps(dir, p, false);
        return open(dir, key);
    }

    /** Opens an existing repository for reading and writing; a format-1 repository is opened read-only. */
    public static Repository open(Path dir, MasterKey key) throws IOException {
        return open(dir, key, false);
    }

    /**
     * Opens an existing repository. Clear errors for: no repository there, a newer format, encryption expected but
     * no key given, and a key that is not (or no longer) one of this repository's master keys. With {@code upgrade},
     * an encrypted format-1 repository is upgraded to format 2 first (its old objects stay readable: their key
     * becomes data key {@code legacy}, and block ids keep their key, so dedup goes on).
     */
    public static Repository open(Path dir, MasterKey key, boolean upgrade) throws IOException {
        Path propsFile = dir.resolve(PROPS);
        if (!Files.isRegularFile(propsFile)) {
            throw new RepositoryException("no duckguard repository at " + dir + " (" + PROPS + " is missing)");
        }
        Properties p = readProps(dir);
        int format;
        try {
            format = Integer.parseInt(p.getProperty("format", "?"));
        } catch (NumberFormatException e) {
            throw new RepositoryException(propsFile + " is damaged (no format number)");
        }
        if (format < 1 || format > FORMAT) {
            throw new RepositoryException("repository " + dir + " has format " + format + "; this duckguard reads formats 1 to "
                    + FORMAT + " (use a matching duckguard version)");
        }
        String id = p.getProperty("id");
        if (id == null) throw new RepositoryException(propsFile + " is damaged (no id)");
        String encryption = p.getProperty("encryption", "?");
        if ("none".equals(encryption)) {
            // Fail closed: a repository that has keys is encrypted, whatever an edited repository.properties says.
            if (Files.exists(dir.resolve(DataKeys.DIR)) || p.getProperty("key-id") != null) {
                throw new RepositoryException("repository " + dir + " holds encryption keys but " + PROPS + " says "
                        + "encryption=none: refusing to treat an encrypted repository as unencrypted (was " + PROPS + " edited?)");
            }
            return new Repository(dir, id, new ObjectCodec((MasterKey) null, 3), null, format, null);
        }
        if (!"aes-256-gcm".equals(encryption)) {
            throw new RepositoryException(propsFile + " names unknown encryption '" + encryption + "'");
        }
        String keyId = p.getProperty("key-id", "?");
        if (key == null) {
            throw new RepositoryException("repository " + dir + " is encrypted (key id " + keyId
                    + "); give its key with --key-file / key-file=");
        }
        if (format == 1) {
            ObjectCodec legacy = new ObjectCodec(key, 3);
            try {
                byte[] check = legacy.open(Bytes.unhex(p.getProperty("key-check", "")), "key-check:" + id);
                if (!KEY_CHECK_TEXT.equals(new String(check, StandardCharsets.UTF_8))) throw new CorruptObjectException("key-check", "mismatch");
            } catch (CorruptObjectException | IllegalArgumentException e) {
                throw new RepositoryException("wrong key for repository " + dir + ": it was created with key id " + keyId
                        + ", the given key has id " + key.keyId());
            }
            if (!upgrade) return new Repository(dir, id, legacy, null, 1, key);
            upgrade(dir, p, key);
            return open(dir, key, false);
        }
        MasterKeys reg = MasterKeys.from(p);
        MasterKeys.Entry entry = reg.get(key.keyId());
        if (entry == null) {
            throw new RepositoryException("wrong key for repository " + dir + ": the given key has id " + key.keyId()
                    + ", the repository's master keys are " + reg.activeIds() + " (current: " + reg.currentId() + ")");
        }
        if (!entry.active()) {
            throw new RepositoryException("master key " + key.keyId() + " of repository " + dir + " was retired on "
                    + entry.retired() + " (keys retire): use the current key, id " + reg.currentId());
        }
        if (!Arrays.equals(entry.publicKey(), key.publicKey())) {
            throw new RepositoryException(propsFile + " is damaged: master key " + key.keyId() + " has another public key there");
        }
        DataKeys dk = new DataKeys(dir, () -> MasterKeys.from(readProps(dir)), List.of(key));
        DataKey idKey;
        DataKey meta;
        try {
            idKey = dk.resolve(DataKeys.ID_KEY, DataKeys.DIR + "/" + DataKeys.ID_KEY);
            meta = dk.resolve(DataKeys.META_KEY, DataKeys.DIR + "/" + DataKeys.META_KEY);
        } catch (CorruptObjectException e) {
            throw new RepositoryException("cannot open the keys of repository " + dir + " with master key " + key.keyId()
                    + ": " + e.getMessage());
        }
        return new Repository(dir, id, new ObjectCodec(dk, meta, idKey, 3), dk, format, key);
    }

    /**
     * Format 1 -> 2: the key format 1 derived for objects becomes data key {@code legacy}, its id key becomes data
     * key {@code id} (block ids stay valid), both wrapped for the master key; a new {@code meta} key; then
     * repository.properties (last: a crash before it leaves a format-1 repository, upgraded again next time).
     */
    private static void upgrade(Path dir, Properties p, MasterKey key) throws IOException {
        Instant created;
        try {
            created = Instant.parse(p.getProperty("created"));
        } catch (RuntimeException e) {
            created = Instant.now();
        }
        MasterKeys reg = MasterKeys.first(key, created);
        DataKeys dk = new DataKeys(dir, () -> reg, List.of(key));
        dk.store(DataKey.of(DataKeys.ID_KEY, key.derive("duckguard object id v1")), "id", "repository");
        dk.store(ObjectCodec.legacyKey(key), "legacy", "objects written by format 1");
        if (!dk.exists(DataKeys.META_KEY)) dk.store(DataKey.generate(DataKeys.META_KEY), "meta", "repository");
        p.setProperty("format", Integer.toString(FORMAT));
        p.setProperty("upgraded", Instant.now().toString());
        reg.writeTo(p);
        writeProps(dir, p, true);
        Log.info("upgraded repository " + dir + " from format 1 to format 2 (envelope encryption, keys/); "
                + "duckguard versions before it cannot read it any more");
    }

    static Properties readProps(Path dir) throws IOException {
        Properties p = new Properties();
        p.load(new StringReader(Files.readString(dir.resolve(PROPS), StandardCharsets.UTF_8)));
        return p;
    }

    static void writeProps(Path dir, Properties p, boolean replace) throws IOException {
        StringWriter w = new StringWriter();
        p.store(w, "duckguard repository - do not edit");
        AtomicFiles.write(dir.resolve(PROPS), w.toString().getBytes(StandardCharsets.UTF_8), replace);
    }

    public Path root() {
        return root;
    }

    public String id() {
        return id;
    }

    public ObjectCodec codec() {
        return codec;
    }

    /** The repository format as opened: 2, or 1 for a format-1 repository opened read-only. */
    public int format() {
        return format;
    }

    /** The data keys; null for an unencrypted repository and for a format-1 repository opened read-only. */
    public DataKeys keys() {
        return keys;
    }

    /** The master key this repository was opened with (null without encryption). */
    MasterKey masterKey() {
        return masterKey;
    }

    /** The master key registry as it is on disk now. */
    public MasterKeys masterKeys() throws IOException {
        return MasterKeys.from(readProps(root));
    }

    private DataKeys writableKeys() throws RepositoryException {
        if (keys == null && codec.encrypted()) {
            throw new RepositoryException("repository " + root + " has format 1 (created by an older duckguard) and was "
                    + "opened read-only; the agent (or `duckguard snapshot`, `keys rotate`) upgrades it to format 2");
        }
        return keys;
    }

    /** The data key of an epoch's WAL log (created on first use); null without encryption. */
    DataKey walKey(String database, long epoch) throws IOException {
        DataKeys k = writableKeys();
        return k == null ? null : k.getOrCreate(DataKeys.walKeyId(database, epoch), "wal",
                "databases/" + database + "/epochs/" + String.format("%010d", epoch) + "/wal");
    }

    /** The data key of an epoch's manifest (created on first use); null without encryption. */
    DataKey manifestKey(String database, long epoch) throws IOException {
        DataKeys k = writableKeys();
        return k == null ? null : k.getOrCreate(DataKeys.manifestKeyId(database, epoch), "manifest",
                "databases/" + database + "/epochs/" + String.format("%010d", epoch) + "/manifest");
    }

    /** A new pack's key, in memory only until {@link #storePackKey}; null without encryption. */
    DataKey newPackKey(String pack) throws RepositoryException {
        return writableKeys() == null ? null : DataKey.generate(DataKeys.packKeyId(pack));
    }

    void storePackKey(DataKey key, String pack) throws IOException {
        if (key != null) writableKeys().store(key, "pack", pack);
    }

    /** The state of the master keys now (reads repository.properties: a rotation by the CLI shows at once). */
    public KeyStatus keyStatus() {
        if (!codec.encrypted()) return KeyStatus.NONE;
        try {
            Properties p = readProps(root);
            String current = p.getProperty("key-id", "?");
            Instant created;
            int active = 1;
            if (format == 1 || p.getProperty("master-keys") == null) {
                created = Instant.parse(p.getProperty("created"));
            } else {
                MasterKeys reg = MasterKeys.from(p);
                MasterKeys.Entry e = reg.current();
                created = e == null ? null : e.created();
                active = reg.active().size();
            }
            long days = created == null ? -1 : Duration.between(created, Instant.now()).toDays();
            return new KeyStatus(true, current, created, days, masterKey.keyId(), active);
        } catch (IOException | RuntimeException e) {
            return new KeyStatus(true, "?", null, -1, masterKey.keyId(), 0);
        }
    }

    public Path packsDir() {
        return root.resolve("packs");
    }

    public DatabaseHistory database(String name) {
        return new DatabaseHistory(this, name);
    }

    /** Names of the databases that have a history here, sorted. */
    public List<String> databaseNames() throws IOException {
        return databaseDirs(p -> Files.isRegularFile(p.resolve(DatabaseHistory.PROPS)));
    }

    /**
     * Every database directory with a history, whether or not its {@code database.properties} is there: what
     * garbage collection must keep alive and verify must check. (A lost properties file must not make GC take a
     * database's packs for garbage.)
     */
    public List<String> databaseNamesWithHistory() throws IOException {
        return databaseDirs(p -> Files.isRegularFile(p.resolve(DatabaseHistory.PROPS)) || Files.isDirectory(p.resolve("epochs")));
    }

    private List<String> databaseDirs(java.util.function.Predicate<Path> isDatabase) throws IOException {
        Path dbs = root.resolve("databases");
        if (!Files.isDirectory(dbs)) return List.of();
        List<String> names = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dbs)) {
            for (Path p : ds) if (isDatabase.test(p)) names.add(p.getFileName().toString());
        }
        Collections.sort(names);
        return names;
    }

    /** Total bytes of all files in the repository (for the RepositoryBytes gauge; walks the tree). */
    public long sizeBytes() {
        try {
            return io.duckguard.runtime.util.FileTrees.bytes(root);
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }
}
