package io.duckguard.runtime.repository;

import io.duckguard.runtime.crypto.KeySource;
import io.duckguard.runtime.crypto.MasterKey;
import io.duckguard.runtime.util.Log;
import java.io.IOException;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Properties;

/**
 * Finds the key and opens (or, for the agent, creates) a repository. Master keys live outside the repository: in
 * the key file, keystore or passphrase the operator names (see {@link KeySource}), or, when none is named, in
 * {@code ~/.duckguard/keys/<repository id>.key}, created on first use and announced loudly once, because losing it
 * means losing the backups.
 */
public final class RepositoryOpener {
    private RepositoryOpener() {}

    public static Path defaultKeyFile(String repositoryId) {
        return Path.of(System.getProperty("user.home"), ".duckguard", "keys", repositoryId + ".key");
    }

    /** For the agent: open the repository, creating it (and a key, if none exists yet) when it is new. */
    public static Repository openOrCreate(Path dir, boolean encrypted, Path keyFile) throws IOException, MasterKey.KeyException {
        return openOrCreateWith(dir, encrypted, keyFile == null ? null : KeySource.file(keyFile));
    }

    /**
     * For the agent: open the repository with the key from {@code source} (null: the default key file), creating
     * the repository (and a key in the source, if it has none yet) when it is new. A format-1 repository is upgraded
     * to format 2.
     */
    public static Repository openOrCreateWith(Path dir, boolean encrypted, KeySource source) throws IOException, MasterKey.KeyException {
        Path keyFile = source == null ? null : source.keyFile();
        boolean exists = Repository.exists(dir);
        if (encrypted && exists && "none".equals(props(dir).getProperty("encryption"))) {
            throw new RepositoryException("repository " + dir + " was created with encryption=none; give "
                    + "encryption=none to use it, or use a new repository to have the backups encrypted");
        }
        if (!encrypted) {
            Repository r = exists ? Repository.open(dir, null) : Repository.create(dir, null);
            if (r.codec().encrypted()) throw new RepositoryException("repository " + dir + " is encrypted; give key-file=");
            checkWritable(dir);
            return r;
        }
        MasterKey key;
        if (source != null && keyFile == null) {
            key = exists ? source.load(known(dir)) : source.loadOrCreate(List.of());
        } else if (keyFile != null) {
            if (Files.exists(keyFile)) {
                key = MasterKey.load(keyFile);
            } else if (!exists) {
                key = source.loadOrCreate(List.of());
            } else {
                throw new MasterKey.KeyException("key file " + keyFile + " does not exist, but repository " + dir
                        + " already exists and is encrypted (key id " + keyIdOf(dir) + "): restore that key file");
            }
        } else if (exists) {
            Path def = defaultKeyFile(idOf(dir));
            if (!Files.exists(def)) {
                throw new MasterKey.KeyException("repository " + dir + " is encrypted (key id " + keyIdOf(dir)
                        + ") and no key-file was given; its default key " + def + " does not exist");
            }
            key = MasterKey.load(def);
        } else {
            // The key is stored before the repository exists: a repository whose key was never saved is worse
            // than no repository.
            key = MasterKey.generate();
            String id = java.util.UUID.randomUUID().toString();
            Path def = defaultKeyFile(id);
            key.store(def);
            Repository r = Repository.create(dir, key, id);
            String line = "*".repeat(100);
            System.err.println(line + "\nduckguard: NEW ENCRYPTION KEY for repository " + dir + " written to\n    " + def
                    + "\n  Without this key the backups cannot be read. Copy it somewhere safe, away from the backup volume.\n" + line);
            return r;
        }
        Repository r = exists ? Repository.open(dir, key, true) : Repository.create(dir, key);
        if (!r.codec().encrypted()) {
            throw new RepositoryException("repository " + dir + " was created with encryption=none; "
                    + "a key cannot be added to it (use encryption=none, or a new repository)");
        }
        checkWritable(dir);
        return r;
    }

    /** For restore and listing: open an existing repository with the given key file or the default one. */
    public static Repository openExisting(Path dir, Path keyFile) throws IOException, MasterKey.KeyException {
        return openExisting(dir, keyFile == null ? null : KeySource.file(keyFile), false);
    }

    /**
     * Opens an existing repository with the key from {@code source} (null: the default key file). With
     * {@code upgrade}, a format-1 repository is upgraded to format 2 (for verbs that write); without, it is opened
     * read-only as it is.
     */
    public static Repository openExisting(Path dir, KeySource source, boolean upgrade) throws IOException, MasterKey.KeyException {
        if (!Repository.exists(dir)) {
            throw new RepositoryException("no duckguard repository at " + dir
                    + (Files.exists(dir) ? " (" + Repository.PROPS + " is missing)" : " (the directory does not exist)"));
        }
        Properties p = props(dir);
        if ("none".equals(p.getProperty("encryption"))) return Repository.open(dir, null);
        if (source == null) {
            Path kf = defaultKeyFile(p.getProperty("id", "?"));
            if (!Files.exists(kf)) {
                throw new MasterKey.KeyException("repository " + dir + " is encrypted (key id " + p.getProperty("key-id")
                        + "); give its key with --key-file (or --keystore, --passphrase-env)");
            }
            source = KeySource.file(kf);
        }
        return Repository.open(dir, source.load(known(dir)), upgrade);
    }

    /** The master keys a repository knows (active ones, current first), for a key source to pick or derive from. */
    public static List<KeySource.Known> known(Path dir) throws IOException {
        Properties p = props(dir);
        if (p.getProperty("master-keys") == null) return List.of(new KeySource.Known(p.getProperty("key-id", "?"), null));
        return MasterKeys.from(p).known();
    }

    private static void checkWritable(Path dir) throws RepositoryException {
        if (!Files.isWritable(dir)) throw new RepositoryException("repository directory " + dir + " is not writable");
        try {
            Path probe = Files.createTempFile(dir, ".write-probe", ".tmp");
            Files.delete(probe);
        } catch (IOException e) {
            throw new RepositoryException("cannot write to repository " + dir + ": " + e.getMessage());
        }
    }

    private static Properties props(Path dir) throws IOException {
        Properties p = new Properties();
        p.load(new StringReader(Files.readString(dir.resolve(Repository.PROPS), StandardCharsets.UTF_8)));
        return p;
    }

    private static String idOf(Path dir) throws IOException {
        return props(dir).getProperty("id", "?");
    }

    private static String keyIdOf(Path dir) throws IOException {
        return props(dir).getProperty("key-id", "?");
    }
}
