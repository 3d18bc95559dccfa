package io.duckguard.runtime.crypto;

import io.duckguard.runtime.crypto.MasterKey.KeyException;
import io.duckguard.runtime.util.AtomicFiles;
import io.duckguard.runtime.util.Bytes;
import io.duckguard.runtime.util.Log;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.Key;
import java.security.KeyStore;
import java.security.SecureRandom;
import java.security.UnrecoverableKeyException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Function;
import javax.crypto.spec.SecretKeySpec;
import org.bouncycastle.crypto.generators.Argon2BytesGenerator;
import org.bouncycastle.crypto.params.Argon2Parameters;

/**
 * Where a master key comes from:
 * <ul>
 *   <li>{@link #file}: a key file ({@code duckguard-key-v1 <base64>}, mode 0600; a group/world-readable one is
 *       refused);</li>
 *   <li>{@link #keystore}: a PKCS#12 keystore, password from an environment variable; the key is the secret-key
 *       entry {@code duckguard-<key id>} (created there for a new repository or a rotation);</li>
 *   <li>{@link #passphrase}: a passphrase from an environment variable, stretched with Argon2id (BouncyCastle); the
 *       salt and parameters are recorded with the key in repository.properties, so the same passphrase always
 *       gives the same key for that repository.</li>
 * </ul>
 * Every problem is a {@link KeyException} whose message is meant for the operator as it is.
 */
public abstract class KeySource {
    /** A master key a repository knows: its id, and for a passphrase key the KDF record to derive it again. */
    public record Known(String id, String kdf) {}

    /** Argon2id cost parameters. */
    public record Argon2(int memoryKiB, int iterations, int parallelism) {
        /** 64 MiB, 3 passes, 1 lane: about a second here, and 64 MiB per guess for an attacker. */
        public static final Argon2 DEFAULT = new Argon2(65536, 3, 1);
    }

    /** Shortest passphrase accepted for a new key. */
    public static final int MIN_PASSPHRASE = 12;

    KeySource() {}

    /** For messages: "key file /x", "keystore /y", "the passphrase in $VAR". */
    public abstract String describe();

    /** Loads the key for an existing repository that knows {@code known} (its active master keys, current first). */
    public abstract MasterKey load(List<Known> known) throws KeyException;

    /**
     * For a new repository or a rotation: the key of this source the repository lists in {@code known} if there is
     * one (a rotation run again), else a new key, stored in the source (key file created 0600, keystore entry added)
     * before it is returned.
     */
    public abstract MasterKey loadOrCreate(List<Known> known) throws KeyException;

    public static KeySource file(Path file) {
        return new FileSource(file);
    }

    public static KeySource keystore(Path file, String passwordEnv, Function<String, String> env) {
        return new KeystoreSource(file, passwordEnv, env);
    }

    public static KeySource passphrase(String passphraseEnv, Function<String, String> env) {
        return new PassphraseSource(passphraseEnv, env, Argon2.DEFAULT);
    }

    /** With explicit Argon2id costs for new keys (existing keys use the costs recorded with them). */
    public static KeySource passphrase(String passphraseEnv, Function<String, String> env, Argon2 costs) {
        return new PassphraseSource(passphraseEnv, env, costs);
    }

    /** The key file, or null for other sources (the opener treats a missing key file specially). */
    public Path keyFile() {
        return null;
    }

    @Override
    public String toString() {
        return describe();
    }

    // ------------------------------------------------------------------------------------------------ key file

    private static final class FileSource extends KeySource {
        private final Path file;

        FileSource(Path file) {
            this.file = file;
        }

        @Override
        public String describe() {
            return "key file " + file;
        }

        @Override
        public Path keyFile() {
            return file;
        }

        @Override
        public MasterKey load(List<Known> known) throws KeyException {
            return MasterKey.load(file);
        }

        @Override
        public MasterKey loadOrCreate(List<Known> known) throws KeyException {
            if (Files.exists(file)) return MasterKey.load(file);
            MasterKey k = MasterKey.generate();
            k.store(file);
            Log.info("created a new key in " + file + " (mode 0600, key id " + k.keyId()
                    + "). Keep a copy of it away from the backups.");
            return k;
        }
    }

    // ------------------------------------------------------------------------------------------------ keystore

    private static final class KeystoreSource extends KeySource {
        private static final String ALIAS = "duckguard-";
        private final Path file;
        private final String passwordEnv;
        private final Function<String, String> env;

        KeystoreSource(Path file, String passwordEnv, Function<String, String> env) {
            this.file = file;
            this.passwordEnv = passwordEnv;
            this.env = env;
        }

        @Override
        public String describe() {
            return "keystore " + file;
        }

        private char[] password() throws KeyException {
            String p = passwordEnv == null ? null : env.apply(passwordEnv);
            if (p == null) {
                throw new KeyException("the password of keystore " + file + " is read from the environment variable "
                        + (passwordEnv == null ? "named by keystore-password-env (none given)" : passwordEnv + ", which is not set"));
            }
            return p.toCharArray();
        }

        private KeyStore read(char[] pw) throws KeyException {
            byte[] bytes;
            try {
                bytes = Files.readAllBytes(file);
            } catch (NoSuchFileException e) {
                throw new KeyException("keystore " + file + " does not exist");
            } catch (IOException e) {
                throw new KeyException("cannot read keystore " + file + ": " + e);
            }
            try {
                KeyStore ks = KeyStore.getInstance("PKCS12");
                ks.load(new ByteArrayInputStream(bytes), pw);
                return ks;
            } catch (IOException e) {
                if (e.getCause() instanceof UnrecoverableKeyException || String.valueOf(e.getMessage()).contains("password")) {
                    throw new KeyException("wrong password for keystore " + file + " (from $" + passwordEnv
                            + "), or the keystore is damaged");
                }
                throw new KeyException("keystore " + file + " is not a readable PKCS#12 keystore: " + e.getMessage());
            } catch (GeneralSecurityException e) {
                throw new KeyException("keystore " + file + " cannot be read: " + e.getMessage());
            }
        }

        private MasterKey find(KeyStore ks, char[] pw, List<Known> known) throws KeyException {
            for (Known k : known) {
                String alias = ALIAS + k.id();
                try {
                    if (!ks.containsAlias(alias)) continue;
                    Key key = ks.getKey(alias, pw);
                    if (key == null || key.getEncoded() == null || key.getEncoded().length != 32) {
                        throw new KeyException("keystore " + file + " entry " + alias + " is not a 256-bit secret key");
                    }
                    MasterKey m = MasterKey.of(key.getEncoded(), MasterKey.KEYSTORE, null);
                    if (!m.keyId().equals(k.id())) {
                        throw new KeyException("keystore " + file + " entry " + alias + " holds key id " + m.keyId()
                                + ", not " + k.id() + " (the entry was renamed or damaged)");
                    }
                    return m;
                } catch (UnrecoverableKeyException e) {
                    throw new KeyException("wrong password for entry " + alias + " of keystore " + file);
                } catch (GeneralSecurityException e) {
                    throw new KeyException("cannot read entry " + alias + " of keystore " + file + ": " + e.getMessage());
                }
            }
            return null;
        }

        @Override
        public MasterKey load(List<Known> known) throws KeyException {
            char[] pw = password();
            KeyStore ks = read(pw);
            MasterKey m = find(ks, pw, known);
            if (m != null) return m;
            List<String> aliases = new ArrayList<>();
            try {
                aliases.addAll(Collections.list(ks.aliases()));
            } catch (GeneralSecurityException e) {
                // listed as empty
            }
            List<String> wanted = new ArrayList<>();
            for (Known k : known) wanted.add(ALIAS + k.id());
            throw new KeyException("keystore " + file + " holds no key of this repository: it has entries " + aliases
                    + ", the repository's master keys would be " + wanted);
        }

        @Override
        public MasterKey loadOrCreate(List<Known> known) throws KeyException {
            char[] pw = password();
            KeyStore ks;
            if (Files.exists(file)) {
                ks = read(pw);
                MasterKey m = find(ks, pw, known);
                if (m != null) return m;
            } else {
                try {
                    ks = KeyStore.getInstance("PKCS12");
                    ks.load(null, null);
                } catch (IOException | GeneralSecurityException e) {
                    throw new IllegalStateException(e);
                }
            }
            MasterKey k = MasterKey.generate();
            MasterKey m = MasterKey.of(k.bytes(), MasterKey.KEYSTORE, null);
            try {
                ks.setEntry(ALIAS + m.keyId(), new KeyStore.SecretKeyEntry(new SecretKeySpec(m.bytes(), "AES")),
                        new KeyStore.PasswordProtection(pw));
                ByteArrayOutputStream bo = new ByteArrayOutputStream();
                ks.store(bo, pw);
                writePrivately(file, bo.toByteArray());
            } catch (IOException | GeneralSecurityException e) {
                throw new KeyException("cannot write keystore " + file + ": " + e);
            }
            Log.info("added key " + ALIAS + m.keyId() + " to keystore " + file + ". Keep a copy of it away from the backups.");
            return m;
        }
    }

    /** Replaces {@code file} atomically with a new file of mode 0600 holding {@code content}. */
    static void writePrivately(Path file, byte[] content) throws IOException {
        Path abs = file.toAbsolutePath();
        Path dir = abs.getParent();
        AtomicFiles.createDirectories(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        Path tmp = dir.resolve(abs.getFileName() + AtomicFiles.TMP_MARK + Long.toHexString(ThreadLocalRandom.current().nextLong()));
        try (FileChannel ch = FileChannel.open(tmp, Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE),
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))) {
            ByteBuffer b = ByteBuffer.wrap(content);
            while (b.hasRemaining()) ch.write(b);
            ch.force(true);
        }
        try {
            Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(tmp);
        }
        AtomicFiles.fsyncDirectory(dir);
    }

    // ------------------------------------------------------------------------------------------------ passphrase

    private static final class PassphraseSource extends KeySource {
        private static final String KDF = "argon2id";
        private final String envVar;
        private final Function<String, String> env;
        private final Argon2 costs;

        PassphraseSource(String envVar, Function<String, String> env, Argon2 costs) {
            this.envVar = envVar;
            this.env = env;
            this.costs = costs;
        }

        @Override
        public String describe() {
            return "the passphrase in $" + envVar;
        }

        private byte[] passphrase() throws KeyException {
            String p = envVar == null ? null : env.apply(envVar);
            if (p == null || p.isEmpty()) {
                throw new KeyException("the passphrase is read from the environment variable "
                        + (envVar == null ? "named by passphrase-env (none given)" : envVar + ", which is not set or empty"));
            }
            return p.getBytes(StandardCharsets.UTF_8);
        }

        @Override
        public MasterKey load(List<Known> known) throws KeyException {
            MasterKey m = tryKnown(known);
            if (m != null) return m;
            List<String> ids = new ArrayList<>();
            for (Known k : known) if (k.kdf() != null) ids.add(k.id());
            if (ids.isEmpty()) {
                throw new KeyException("this repository has no passphrase key (its master keys " + idsOf(known)
                        + " come from key files or keystores); give its key file or keystore");
            }
            byte[] pass = passphrase();
            Arrays.fill(pass, (byte) 0);
            throw new KeyException("wrong passphrase in $" + envVar + " for this repository (its passphrase keys are "
                    + ids + ")");
        }

        private MasterKey tryKnown(List<Known> known) throws KeyException {
            byte[] pass = passphrase();
            try {
                for (Known k : known) {
                    if (k.kdf() == null || !k.kdf().startsWith(KDF + "$")) continue;
                    MasterKey m = derive(pass, k.kdf());
                    if (m.keyId().equals(k.id())) return m;
                }
                return null;
            } finally {
                Arrays.fill(pass, (byte) 0);
            }
        }

        @Override
        public MasterKey loadOrCreate(List<Known> known) throws KeyException {
            MasterKey m = tryKnown(known);
            if (m != null) return m;
            byte[] pass = passphrase();
            try {
                String text = new String(pass, StandardCharsets.UTF_8);
                if (text.codePointCount(0, text.length()) < MIN_PASSPHRASE) {
                    throw new KeyException("the passphrase in $" + envVar + " is too short for a new key: use at least "
                            + MIN_PASSPHRASE + " characters");
                }
                byte[] salt = new byte[16];
                new SecureRandom().nextBytes(salt);
                String kdf = KDF + "$v=19$m=" + costs.memoryKiB() + ",t=" + costs.iterations() + ",p=" + costs.parallelism()
                        + "$" + Bytes.hex(salt);
                return derive(pass, kdf);
            } finally {
                Arrays.fill(pass, (byte) 0);
            }
        }

        /** Argon2id over the passphrase with the parameters and salt of {@code kdf} ("argon2id$v=19$m=..,t=..,p=..$salt"). */
        static MasterKey derive(byte[] pass, String kdf) throws KeyException {
            String[] parts = kdf.split("\\$");
            int m;
            int t;
            int p;
            byte[] salt;
            try {
                if (parts.length != 4 || !parts[0].equals(KDF) || !parts[1].equals("v=19")) throw new IllegalArgumentException();
                String[] costs = parts[2].split(",");
                if (costs.length != 3 || !costs[0].startsWith("m=") || !costs[1].startsWith("t=") || !costs[2].startsWith("p=")) {
                    throw new IllegalArgumentException();
                }
                m = Integer.parseInt(costs[0].substring(2));
                t = Integer.parseInt(costs[1].substring(2));
                p = Integer.parseInt(costs[2].substring(2));
                salt = Bytes.unhex(parts[3]);
                if (m < 8 * p || m > (4 << 20) || t < 1 || t > 100 || p < 1 || p > 64 || salt.length < 8) {
                    throw new IllegalArgumentException();
                }
            } catch (RuntimeException e) {
                throw new KeyException("the passphrase key parameters '" + kdf + "' in repository.properties are damaged");
            }
            Argon2Parameters params = new Argon2Parameters.Builder(Argon2Parameters.ARGON2_id)
                    .withVersion(Argon2Parameters.ARGON2_VERSION_13).withMemoryAsKB(m).withIterations(t)
                    .withParallelism(p).withSalt(salt).build();
            Argon2BytesGenerator gen = new Argon2BytesGenerator();
            gen.init(params);
            byte[] out = new byte[32];
            gen.generateBytes(pass, out);
            try {
                return MasterKey.of(out, MasterKey.PASSPHRASE, kdf);
            } finally {
                Arrays.fill(out, (byte) 0);
            }
        }

        private static List<String> idsOf(List<Known> known) {
            List<String> ids = new ArrayList<>();
            for (Known k : known) ids.add(k.id());
            return ids;
        }
    }
}
