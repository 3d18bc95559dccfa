package io.duckguard.runtime.crypto;

import io.duckguard.runtime.util.Bytes;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Base64;
import java.util.Set;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * A 256-bit master key of a repository. It never lives in the repository: it comes from a key file (one line
 * {@code duckguard-key-v1 <base64>}, mode 0600), a PKCS#12 keystore or a passphrase (see {@link KeySource}).
 * Master keys never encrypt data: they wrap the repository's data keys (see {@link KeyWrap}). Sub-keys are derived
 * from it with HMAC-SHA256 (HKDF-expand style, one block): its public id, its X25519 key pair for wrapping, and, for
 * repositories of format 1, the object and id keys it used directly.
 */
public final class MasterKey {
    private static final String PREFIX = "duckguard-key-v1 ";
    /** Where a key came from, as recorded in the repository: file, keystore or passphrase. */
    public static final String FILE = "file";
    public static final String KEYSTORE = "keystore";
    public static final String PASSPHRASE = "passphrase";

    private final byte[] key;
    private final String origin;
    private final String kdf;
    private volatile byte[] publicKey;

    private MasterKey(byte[] key) {
        this(key, FILE, null);
    }

    private MasterKey(byte[] key, String origin, String kdf) {
        if (key.length != 32) throw new IllegalArgumentException("a master key has 32 bytes, not " + key.length);
        this.key = key.clone();
        this.origin = origin;
        this.kdf = kdf;
    }

    /** A key with the given bytes; origin is {@link #FILE}, {@link #KEYSTORE} or {@link #PASSPHRASE}. */
    static MasterKey of(byte[] key, String origin, String kdf) {
        return new MasterKey(key, origin, kdf);
    }

    /** Where this key came from (recorded with it in the repository; not secret). */
    public String origin() {
        return origin;
    }

    /** For a passphrase key, the KDF and its parameters and salt (not secret); null otherwise. */
    public String kdf() {
        return kdf;
    }

    byte[] bytes() {
        return key.clone();
    }

    /** The private X25519 scalar that opens data key wraps made for this key. */
    byte[] privateScalar() {
        return derive("duckguard x25519 wrap key v1");
    }

    /** The public half of this key's wrapping key pair (stored in the repository; lets anyone wrap for it). */
    public byte[] publicKey() {
        byte[] p = publicKey;
        if (p == null) {
            byte[] priv = privateScalar();
            p = KeyWrap.publicKeyOf(priv);
            Arrays.fill(priv, (byte) 0);
            publicKey = p;
        }
        return p.clone();
    }

    public static MasterKey generate() {
        byte[] k = new byte[32];
        new SecureRandom().nextBytes(k);
        return new MasterKey(k);
    }

    /** Reads a key file; clear errors for a missing, unreadable, badly formatted or group/world-readable file. */
    public static MasterKey load(Path file) throws KeyException {
        try {
            Set<PosixFilePermission> perms = Files.getPosixFilePermissions(file);
            if (perms.contains(PosixFilePermission.GROUP_READ) || perms.contains(PosixFilePermission.OTHERS_READ)) {
                throw new KeyException("key file " + file + " is readable by group or others ("
                        + PosixFilePermissions.toString(perms) + "); run: chmod 600 " + file);
            }
            String text = Files.readString(file, StandardCharsets.US_ASCII).trim();
            if (!text.startsWith(PREFIX)) {
                throw new KeyException("key file " + file + " is not a duckguard key (expected a line starting with '"
                        + PREFIX.trim() + "')");
            }
            byte[] k = Base64.getDecoder().decode(text.substring(PREFIX.length()).trim());
            if (k.length != 32) throw new KeyException("key file " + file + " holds " + k.length + " bytes, expected 32");
            return new MasterKey(k);
        } catch (NoSuchFileException e) {
            throw new KeyException("key file " + file + " does not exist");
        } catch (IllegalArgumentException e) {
            throw new KeyException("key file " + file + " is damaged: " + e.getMessage());
        } catch (IOException e) {
            throw new KeyException("cannot read key file " + file + ": " + e);
        }
    }

    /** Writes this key to a new file with mode 0600 (never overwrites). */
    public void store(Path file) throws KeyException {
        try {
            Path parent = file.toAbsolutePath().getParent();
            // Durable, like the file: a key lost in a power cut makes its repository unreadable.
            io.duckguard.runtime.util.AtomicFiles.createDirectories(parent,
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            byte[] text = (PREFIX + Base64.getEncoder().encodeToString(key) + "\n").getBytes(StandardCharsets.US_ASCII);
            try (var ch = Files.newByteChannel(file, Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE,
                    StandardOpenOption.SYNC), PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))) {
                ch.write(java.nio.ByteBuffer.wrap(text));
            }
            io.duckguard.runtime.util.AtomicFiles.fsyncDirectory(file.toAbsolutePath().getParent());
        } catch (FileAlreadyExistsException e) {
            throw new KeyException("key file " + file + " already exists; refusing to overwrite it");
        } catch (IOException e) {
            throw new KeyException("cannot write key file " + file + ": " + e);
        }
    }

    /** A derived 256-bit sub-key for {@code purpose}. */
    public byte[] derive(String purpose) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            mac.update(purpose.getBytes(StandardCharsets.UTF_8));
            mac.update((byte) 1);
            return mac.doFinal();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A short public identifier of this key (not secret: a one-way derivation), shown in errors and listings. */
    public String keyId() {
        return Bytes.hex(Arrays.copyOf(derive("duckguard key id"), 8));
    }

    /** Thrown for any problem with a key; the message is meant for the operator as it is. */
    public static final class KeyException extends Exception {
        public KeyException(String message) {
            super(message);
        }
    }
}
