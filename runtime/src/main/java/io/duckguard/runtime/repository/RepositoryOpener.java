package io.duckguard.runtime.repository;

import io.duckguard.runtime.crypto.MasterKey;
import io.duckguard.runtime.util.Log;
import java.io.IOException;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;

/**
 * Finds the key and opens (or, for the agent, creates) a repository. Keys live outside the repository: in the
 * file the operator names, or, when none is named, in {@code ~/.duckguard/keys/<repository id>.key}, created on
 * first use and announced loudly once, because losing it means losing the backups.
 */
public final class RepositoryOpener {
    private RepositoryOpener() {}

    public static Path defaultKeyFile(String repositoryId) {
        return Path.of(System.getProperty("user.home"), ".duckguard", "keys", repositoryId + ".key");
    }

    /** For the agent: open the repository, creating it (and a key, if none exists yet) when it is new. */
    public static Repository openOrCreate(Path dir, boolean encrypted, Path keyFile) throws IOException, MasterKey.KeyException {
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
        if (keyFile != null) {
            if (Files.exists(keyFile)) {
                key = MasterKey.load(keyFile);
            } else if (!exists) {
                key = MasterKey.generate();
                key.store(keyFile);
                Log.info("created a new key in " + keyFile + " (mode 0600). Keep a copy of it away from the backups.");
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
        Repository r = exists ? Repository.open(dir, key) : Repository.create(dir, key);
        if (!r.codec().encrypted()) {
            throw new RepositoryException("repository " + dir + " was created with encryption=none; "
                    + "a key cannot be added to it (use encryption=none, or a new repository)");
        }
        checkWritable(dir);
        return r;
    }

    /** For restore and listing: open an existing repository with the given key file or the default one. */
    public static Repository openExisting(Path dir, Path keyFile) throws IOException, MasterKey.KeyException {
        if (!Repository.exists(dir)) {
            throw new RepositoryException("no duckguard repository at " + dir
                    + (Files.exists(dir) ? " (" + Repository.PROPS + " is missing)" : " (the directory does not exist)"));
        }
        Properties p = props(dir);
        if ("none".equals(p.getProperty("encryption"))) return Repository.open(dir, null);
        Path kf = keyFile != null ? keyFile : defaultKeyFile(p.getProperty("id", "?"));
        if (keyFile == null && !Files.exists(kf)) {
            throw new MasterKey.KeyException("repository " + dir + " is encrypted (key id " + p.getProperty("key-id")
                    + "); give its key with --key-file");
        }
        return Repository.open(dir, MasterKey.load(kf));
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
