package io.duckguard.runtime.repository;

import io.duckguard.runtime.crypto.CorruptObjectException;
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
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Properties;
import java.util.UUID;

/**
 * A backup repository: a directory on the backup volume.
 *
 * <pre>
 * repository.properties            format, id, encryption, key id, key check   (plain: holds no user data)
 * packs/XX/&lt;pack id&gt;                sealed blocks of snapshots, content-addressed by keyed hash
 * databases/&lt;name&gt;/database.properties   which database file this history belongs to
 * databases/&lt;name&gt;/epochs/&lt;epoch&gt;/manifest    snapshot n: the file right after checkpoint n (sealed)
 * databases/&lt;name&gt;/epochs/&lt;epoch&gt;/wal         WAL epoch n: append-only log of sealed commit batches
 * </pre>
 *
 * Every file is written tmp, fsync, rename, fsync directory, except the WAL logs, which are append-only with
 * self-delimiting authenticated records (a torn tail is detected and cut). The key is never stored here: only a
 * key id and a sealed known text that tells a wrong key from a damaged object.
 *
 * <p>Thread-safe: the object is immutable after open; per-database histories synchronize their own writes.
 */
public final class Repository {
    public static final int FORMAT = 1;
    static final String PROPS = "repository.properties";
    private static final String KEY_CHECK_TEXT = "duckguard key check";

    private final Path root;
    private final String id;
    private final ObjectCodec codec;

    private Repository(Path root, String id, ObjectCodec codec) {
        this.root = root;
        this.id = id;
        this.codec = codec;
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
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
                if (ds.iterator().hasNext()) {
                    throw new RepositoryException(dir + " is not empty and holds no duckguard repository; "
                            + "give an empty or new directory");
                }
            }
        }
        try {
            AtomicFiles.createDirectories(dir);
        } catch (IOException e) {
            throw new RepositoryException("cannot create repository directory " + dir + ": " + e, e);
        }
        if (!Files.isWritable(dir)) throw new RepositoryException("repository directory " + dir + " is not writable");
        ObjectCodec codec = new ObjectCodec(key, 3);
        Properties p = new Properties();
        p.setProperty("format", Integer.toString(FORMAT));
        p.setProperty("id", id);
        p.setProperty("created", Instant.now().toString());
        p.setProperty("encryption", key == null ? "none" : "aes-256-gcm");
        if (key != null) {
            p.setProperty("key-id", key.keyId());
            p.setProperty("key-check", Bytes.hex(codec.seal(KEY_CHECK_TEXT.getBytes(StandardCharsets.UTF_8), "key-check:" + id)));
        }
        StringWriter w = new StringWriter();
        p.store(w, "duckguard repository - do not edit");
        AtomicFiles.write(dir.resolve(PROPS), w.toString().getBytes(StandardCharsets.UTF_8), false);
        return open(dir, key);
    }

    /**
     * Opens an existing repository. Clear errors for: no repository there, a newer format, encryption expected but
     * no key given, and a key that is not this repository's.
     */
    public static Repository open(Path dir, MasterKey key) throws IOException {
        Path propsFile = dir.resolve(PROPS);
        if (!Files.isRegularFile(propsFile)) {
            throw new RepositoryException("no duckguard repository at " + dir + " (" + PROPS + " is missing)");
        }
        Properties p = new Properties();
        p.load(new StringReader(Files.readString(propsFile, StandardCharsets.UTF_8)));
        int format;
        try {
            format = Integer.parseInt(p.getProperty("format", "?"));
        } catch (NumberFormatException e) {
            throw new RepositoryException(propsFile + " is damaged (no format number)");
        }
        if (format != FORMAT) {
            throw new RepositoryException("repository " + dir + " has format " + format + "; this duckguard reads format "
                    + FORMAT + " (use a matching duckguard version)");
        }
        String id = p.getProperty("id");
        if (id == null) throw new RepositoryException(propsFile + " is damaged (no id)");
        String encryption = p.getProperty("encryption", "?");
        if ("none".equals(encryption)) {
            return new Repository(dir, id, new ObjectCodec(null, 3));
        }
        if (!"aes-256-gcm".equals(encryption)) {
            throw new RepositoryException(propsFile + " names unknown encryption '" + encryption + "'");
        }
        String keyId = p.getProperty("key-id", "?");
        if (key == null) {
            throw new RepositoryException("repository " + dir + " is encrypted (key id " + keyId
                    + "); give its key with --key-file / key-file=");
        }
        ObjectCodec codec = new ObjectCodec(key, 3);
        try {
            byte[] check = codec.open(Bytes.unhex(p.getProperty("key-check", "")), "key-check:" + id);
            if (!KEY_CHECK_TEXT.equals(new String(check, StandardCharsets.UTF_8))) throw new CorruptObjectException("key-check", "mismatch");
        } catch (CorruptObjectException | IllegalArgumentException e) {
            throw new RepositoryException("wrong key for repository " + dir + ": it was created with key id " + keyId
                    + ", the given key has id " + key.keyId());
        }
        return new Repository(dir, id, codec);
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

    public Path packsDir() {
        return root.resolve("packs");
    }

    public DatabaseHistory database(String name) {
        return new DatabaseHistory(this, name);
    }

    /** Names of the databases that have a history here, sorted. */
    public List<String> databaseNames() throws IOException {
        Path dbs = root.resolve("databases");
        if (!Files.isDirectory(dbs)) return List.of();
        List<String> names = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dbs)) {
            for (Path p : ds) if (Files.isRegularFile(p.resolve(DatabaseHistory.PROPS))) names.add(p.getFileName().toString());
        }
        Collections.sort(names);
        return names;
    }

    /** Total bytes of all files in the repository (for the RepositoryBytes gauge; walks the tree). */
    public long sizeBytes() {
        try (var s = Files.walk(root)) {
            return s.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }
}
