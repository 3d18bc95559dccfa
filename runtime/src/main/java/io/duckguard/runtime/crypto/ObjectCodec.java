package io.duckguard.runtime.crypto;

import com.github.luben.zstd.Zstd;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.zip.CRC32C;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * Turns plaintext into a stored object and back: compress (zstd, only when it helps), then encrypt with
 * AES-256-GCM (JDK intrinsics: ~4 GB/s/core here, 40x BouncyCastle) under a random 96-bit nonce and a
 * {@link DataKey} whose id is written in the object's header (envelope encryption: data keys are wrapped by the
 * master keys, see {@link KeyWrap}). The header and the object's name are authenticated as associated data, so an
 * object moved or swapped to another name, or given another key id, fails to open. With encryption off
 * ({@code encryption=none}, explicit only) a CRC32C protects against accidental damage.
 *
 * <pre>
 * object := 'D' 'G' 2 flags idLen(u8) keyId(idLen ASCII) nonce(12) body      (encrypted: every new object)
 *         | 'D' 'G' 1 flags nonce(12) body                                    (encrypted, format-1 repositories:
 *                                                                              data key "legacy")
 *         | 'D' 'G' 1 flags body                                              (encryption=none)
 * flags  := bit0 zstd-compressed, bit1 AES-256-GCM
 * body   := GCM(ciphertext || tag) over payload, AAD = header (everything before the nonce) || name   (encrypted)
 *         | payload || crc32c(first 4 bytes || name || payload)                                      (plain)
 * payload:= u32 plaintext length || zstd frame   (compressed) | plaintext
 * </pre>
 *
 * Fail closed: a codec with keys never writes a plain object; sealing without a data key is a programming error
 * ({@link IllegalStateException}), never a fallback to plaintext. Thread-safe: cipher and MAC instances are per
 * thread.
 */
public final class ObjectCodec {
    /** Finds the data key an object's header names; a key that cannot be had is damage named after the object. */
    @FunctionalInterface
    public interface KeyResolver {
        DataKey resolve(String keyId, String objectName) throws CorruptObjectException;
    }

    /** The data key of objects written by format 1 (it was derived from the master key). */
    public static final String LEGACY_KEY_ID = "legacy";
    private static final int V1_HEADER = 4;
    private static final int NONCE = 12;
    private static final int TAG_BITS = 128;
    private static final int TAG = TAG_BITS / 8;
    private static final byte FLAG_ZSTD = 1;
    private static final byte FLAG_AES = 2;

    /**
     * Per thread: where the compressed payload goes before it is encrypted into the object (which is always a new
     * array). Reused, so that sealing a 1 GB snapshot does not make another gigabyte of garbage.
     */
    private static final ThreadLocal<byte[]> COMPRESS_BUFFER = ThreadLocal.withInitial(() -> new byte[0]);

    private final KeyResolver keys; // null = no encryption
    private final DataKey defaultKey;
    private final SecretKeySpec idKey;
    private final int zstdLevel;
    private final SecureRandom random = new SecureRandom();
    private final ThreadLocal<ProviderCipher> ciphers;
    private final ThreadLocal<Mac> macs;

    /**
     * A codec on one master key alone, with the sub-keys format 1 derived from it: data key {@value #LEGACY_KEY_ID}
     * and the format-1 id key ({@code null}: no encryption). Used for format-1 repositories opened read-only and by
     * tools; repositories of format 2 use {@link #ObjectCodec(KeyResolver, DataKey, DataKey, int)}.
     */
    public ObjectCodec(MasterKey key, int zstdLevel) {
        this(key == null ? null : legacyResolver(key), key == null ? null : legacyKey(key),
                key == null ? null : DataKey.of("id", key.derive("duckguard object id v1")), zstdLevel);
    }

    /**
     * @param keys resolves the key id of an object being opened; null = no encryption
     * @param defaultKey the key of {@link #seal(byte[], String)} and its overloads without a key: small metadata
     * @param idKey the HMAC key of content ids; null = plain SHA-256
     */
    public ObjectCodec(KeyResolver keys, DataKey defaultKey, DataKey idKey, int zstdLevel) {
        this.keys = keys;
        this.defaultKey = defaultKey;
        this.idKey = idKey == null ? null : new SecretKeySpec(idKey.raw(), "HmacSHA256");
        this.zstdLevel = zstdLevel;
        this.ciphers = ThreadLocal.withInitial(() -> new ProviderCipher(NativeAesGcm.provider()));
        this.macs = ThreadLocal.withInitial(() -> {
            try {
                Mac m = Mac.getInstance("HmacSHA256");
                if (this.idKey != null) m.init(this.idKey);
                return m;
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException(e);
            }
        });
    }

    /** This thread's AES-GCM cipher: native once {@link NativeAesGcm} has loaded (even if this thread had the JDK's). */
    private Cipher cipher() {
        ProviderCipher c = ciphers.get();
        java.security.Provider p = NativeAesGcm.provider();
        if (c.madeFor != p) ciphers.set(c = new ProviderCipher(p));
        return c.cipher;
    }

    /** A cipher and the provider it was asked of (null: the JDK's default). */
    private static final class ProviderCipher {
        final java.security.Provider madeFor;
        final Cipher cipher;

        ProviderCipher(java.security.Provider p) {
            madeFor = p;
            cipher = newCipher(p);
        }
    }

    /** The provider of this thread's cipher (tests: which AES-GCM really runs). */
    java.security.Provider cipherProvider() {
        return cipher().getProvider();
    }

    private static Cipher newCipher(java.security.Provider p) {
        try {
            return p == null ? Cipher.getInstance("AES/GCM/NoPadding") : Cipher.getInstance("AES/GCM/NoPadding", p);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The data key format 1 derived from a master key (and encrypted every object with). */
    public static DataKey legacyKey(MasterKey key) {
        return DataKey.of(LEGACY_KEY_ID, key.derive("duckguard object encryption v1"));
    }

    private static KeyResolver legacyResolver(MasterKey key) {
        DataKey legacy = legacyKey(key);
        return (id, name) -> {
            if (id.equals(LEGACY_KEY_ID)) return legacy;
            throw new CorruptObjectException(name, "its data key " + id + " is not known here");
        };
    }

    public boolean encrypted() {
        return keys != null;
    }

    /**
     * The content id of a block: HMAC-SHA256 under the repository's id key (which never changes, so equal blocks
     * dedupe across key rotations): ids reveal neither the content nor (to someone without the key) which
     * repositories hold equal content. Plain SHA-256 without a key.
     */
    public byte[] contentId(byte[] data, int off, int len) {
        if (idKey == null) return io.duckguard.runtime.util.Bytes.sha256(data, off, len);
        Mac m = macs.get();
        m.update(data, off, len);
        return m.doFinal();
    }

    /**
     * 32 bytes derived from the id key for {@code label} (HMAC-SHA256 of the label), the same for the life of the
     * repository: secrets of auxiliary keyed functions such as the snapshot change fingerprint. Without an id key
     * (no encryption) it is SHA-256 of the label: nothing there is secret anyway.
     */
    public byte[] deriveFromIdKey(String label) {
        byte[] l = label.getBytes(StandardCharsets.UTF_8);
        if (idKey == null) return io.duckguard.runtime.util.Bytes.sha256(l, 0, l.length);
        try {
            Mac m = Mac.getInstance("HmacSHA256");
            m.init(idKey);
            return m.doFinal(l);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Seals small metadata under the codec's default (metadata) key. Data of an epoch or a pack: pass its key. */
    public byte[] seal(byte[] plain, String name) {
        return seal(defaultKey, plain, 0, plain.length, name, zstdLevel);
    }

    public byte[] seal(byte[] plain, int off, int len, String name) {
        return seal(defaultKey, plain, off, len, name, zstdLevel);
    }

    public byte[] seal(byte[] plain, int off, int len, String name, int zstdLevel) {
        return seal(defaultKey, plain, off, len, name, zstdLevel);
    }

    public byte[] seal(DataKey key, byte[] plain, String name) {
        return seal(key, plain, 0, plain.length, name, zstdLevel);
    }

    /**
     * Seals {@code plain[off, off+len)} as object {@code name} under data key {@code key} (ignored without
     * encryption; required with it) and an explicit zstd level (0 = no compression; negative = zstd's fast
     * levels): snapshot blocks use a fast level (DuckDB blocks are already compressed), metadata the codec's
     * default.
     */
    public byte[] seal(DataKey key, byte[] plain, int off, int len, String name, int zstdLevel) {
        if (keys != null && key == null) {
            throw new IllegalStateException("no data key for " + name + ": refusing to store it unencrypted in an "
                    + "encrypted repository");
        }
        byte flags = 0;
        byte[] payload = plain;
        int pOff = off;
        int pLen = len;
        if (zstdLevel != 0 && len > 64) {
            int bound = 4 + (int) Zstd.compressBound(len);
            byte[] dst = COMPRESS_BUFFER.get();
            if (dst.length < bound) {
                dst = new byte[bound];
                if (bound <= 1 << 20) COMPRESS_BUFFER.set(dst); // keep block-sized ones, not a large WAL batch's
            }
            long n = Zstd.compressByteArray(dst, 4, dst.length - 4, plain, off, len, zstdLevel);
            if (!Zstd.isError(n) && n + 4 < len - len / 32) { // keep it only if it saves > 3%
                ByteBuffer.wrap(dst).putInt(len);
                payload = dst;
                pOff = 0;
                pLen = (int) n + 4;
                flags |= FLAG_ZSTD;
            }
        }
        byte[] nameBytes = name.getBytes(StandardCharsets.UTF_8);
        if (keys != null) return encrypt(flags, payload, pOff, pLen, nameBytes, key);
        byte[] out = new byte[V1_HEADER + pLen + 4];
        out[0] = 'D';
        out[1] = 'G';
        out[2] = 1;
        out[3] = flags;
        System.arraycopy(payload, pOff, out, V1_HEADER, pLen);
        CRC32C crc = new CRC32C();
        crc.update(out, 0, V1_HEADER);
        crc.update(nameBytes);
        crc.update(payload, pOff, pLen);
        ByteBuffer.wrap(out, V1_HEADER + pLen, 4).putInt((int) crc.getValue());
        return out;
    }

    private byte[] encrypt(byte flags, byte[] payload, int off, int len, byte[] nameBytes, DataKey key) {
        byte[] id = key.id().getBytes(StandardCharsets.US_ASCII);
        int header = 5 + id.length;
        byte[] out = new byte[header + NONCE + len + TAG];
        out[0] = 'D';
        out[1] = 'G';
        out[2] = 2;
        out[3] = (byte) (flags | FLAG_AES);
        out[4] = (byte) id.length;
        System.arraycopy(id, 0, out, 5, id.length);
        byte[] nonce = new byte[NONCE];
        random.nextBytes(nonce);
        System.arraycopy(nonce, 0, out, header, NONCE);
        try {
            Cipher c = cipher();
            c.init(Cipher.ENCRYPT_MODE, key.aes(), new GCMParameterSpec(TAG_BITS, nonce));
            c.updateAAD(out, 0, header);
            c.updateAAD(nameBytes);
            c.doFinal(payload, off, len, out, header + NONCE);
            return out;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Opens an object written by {@link #seal}; any damage, a wrong or missing key or a wrong name is a CorruptObjectException. */
    public byte[] open(byte[] obj, int off, int len, String name) throws CorruptObjectException {
        Payload p = payload(obj, off, len, name, keys, null);
        if ((obj[off + 3] & FLAG_ZSTD) != 0) {
            byte[] plain = new byte[compressedLength(p, name)];
            decompress(p, plain, name);
            return plain;
        }
        return p.off == 0 && p.len == p.buf.length && p.buf != obj ? p.buf : Arrays.copyOfRange(p.buf, p.off, p.off + p.len);
    }

    /**
     * Opens an object into {@code dst} instead of new arrays: the restore path, where 1 GB of blocks would otherwise
     * mean gigabytes of garbage. {@code scratch} holds the decrypted, still compressed payload; both are the
     * caller's (one pair per thread), and must be at least as long as the sealed object and its plaintext.
     *
     * @return the plaintext length
     */
    public int openInto(byte[] obj, int off, int len, String name, byte[] dst, byte[] scratch)
            throws CorruptObjectException {
        if ((obj[off + 3] & FLAG_ZSTD) != 0) {
            Payload p = payload(obj, off, len, name, keys, scratch);
            int n = compressedLength(p, name);
            if (n > dst.length) throw new CorruptObjectException(name, "larger than expected (" + n + " bytes)");
            decompress(p, dst, name);
            return n;
        }
        Payload p = payload(obj, off, len, name, keys, dst);
        if (p.buf != dst) {
            if (p.len > dst.length) throw new CorruptObjectException(name, "larger than expected (" + p.len + " bytes)");
            System.arraycopy(p.buf, p.off, dst, 0, p.len);
        }
        return p.len;
    }

    /** The plaintext length a compressed payload declares. */
    private static int compressedLength(Payload p, String name) throws CorruptObjectException {
        if (p.len < 4) throw new CorruptObjectException(name, "decompression failed");
        int plainLen = ByteBuffer.wrap(p.buf, p.off, 4).getInt();
        if (plainLen < 0 || plainLen > (1 << 30)) throw new CorruptObjectException(name, "decompression failed");
        return plainLen;
    }

    private static void decompress(Payload p, byte[] dst, String name) throws CorruptObjectException {
        int plainLen = compressedLength(p, name);
        long n = Zstd.decompressByteArray(dst, 0, plainLen, p.buf, p.off + 4, p.len - 4);
        if (Zstd.isError(n) || n != plainLen) throw new CorruptObjectException(name, "decompression failed");
    }

    public byte[] open(byte[] obj, String name) throws CorruptObjectException {
        return open(obj, 0, obj.length, name);
    }

    /**
     * Re-encrypts a sealed object under another data key without decompressing it (AES only): a snapshot block
     * sealed for one pack and stored in the next. {@code from} is the key it was sealed with (it may not be stored
     * anywhere yet). Without encryption, the object is returned as it is.
     */
    public byte[] rekey(byte[] sealed, String name, DataKey from, DataKey to) throws CorruptObjectException {
        if (keys == null) return sealed;
        String id = keyIdOf(sealed);
        if (to.id().equals(id)) return sealed;
        Payload p = payload(sealed, 0, sealed.length, name, (k, n) -> {
            if (k.equals(from.id())) return from;
            throw new CorruptObjectException(n, "sealed with data key " + k + ", expected " + from.id());
        }, null);
        return encrypt((byte) (sealed[3] & FLAG_ZSTD), p.buf, p.off, p.len, name.getBytes(StandardCharsets.UTF_8), to);
    }

    /**
     * The id of the data key an object names in its header: {@value #LEGACY_KEY_ID} for an encrypted format-1
     * object, null for a plain or malformed one.
     */
    public static String keyIdOf(byte[] obj) {
        return keyIdOf(obj, 0, obj.length);
    }

    public static String keyIdOf(byte[] obj, int off, int len) {
        if (len < V1_HEADER || obj[off] != 'D' || obj[off + 1] != 'G' || (obj[off + 3] & FLAG_AES) == 0) return null;
        if (obj[off + 2] == 1) return LEGACY_KEY_ID;
        if (obj[off + 2] != 2 || len < 5) return null;
        int idLen = obj[off + 4] & 0xff;
        if (len < 5 + idLen) return null;
        String id = new String(obj, off + 5, idLen, StandardCharsets.US_ASCII);
        return DataKey.isValidId(id) ? id : null;
    }

    /** {@code buf[off, off+len)}: an object's payload, decrypted but still compressed if flagged. */
    private record Payload(byte[] buf, int off, int len) {}

    /**
     * Authenticates and decrypts (or CRC-checks) an object; returns its payload (still compressed if flagged),
     * decrypted into {@code into} when that is given and long enough, else into a new array; an unencrypted
     * payload is returned in place, inside {@code obj}.
     */
    private Payload payload(byte[] obj, int off, int len, String name, KeyResolver resolver, byte[] into)
            throws CorruptObjectException {
        if (len < V1_HEADER || obj[off] != 'D' || obj[off + 1] != 'G') {
            throw new CorruptObjectException(name, "not a duckguard object (bad magic)");
        }
        int version = obj[off + 2];
        byte flags = obj[off + 3];
        if ((flags & ~(FLAG_ZSTD | FLAG_AES)) != 0) throw new CorruptObjectException(name, "unknown flags " + flags);
        if (version != 1 && version != 2) throw new CorruptObjectException(name, "unknown object version " + version);
        byte[] nameBytes = name.getBytes(StandardCharsets.UTF_8);
        if ((flags & FLAG_AES) != 0) {
            if (resolver == null) throw new CorruptObjectException(name, "object is encrypted but no key was given");
            int header;
            String keyId;
            if (version == 1) {
                header = V1_HEADER;
                keyId = LEGACY_KEY_ID;
            } else {
                if (len < 5) throw new CorruptObjectException(name, "truncated");
                int idLen = obj[off + 4] & 0xff;
                if (idLen == 0 || idLen > DataKey.MAX_ID_LENGTH) throw new CorruptObjectException(name, "damaged header (key id length)");
                header = 5 + idLen;
                if (len < header + NONCE + TAG) throw new CorruptObjectException(name, "truncated");
                keyId = new String(obj, off + 5, idLen, StandardCharsets.US_ASCII);
                if (!DataKey.isValidId(keyId)) throw new CorruptObjectException(name, "damaged header (key id)");
            }
            if (len < header + NONCE + TAG) throw new CorruptObjectException(name, "truncated");
            DataKey key = resolver.resolve(keyId, name);
            try {
                Cipher c = cipher();
                c.init(Cipher.DECRYPT_MODE, key.aes(), new GCMParameterSpec(TAG_BITS, obj, off + header, NONCE));
                c.updateAAD(obj, off, header);
                c.updateAAD(nameBytes);
                int n = len - header - NONCE - TAG;
                byte[] out = into != null && into.length >= n ? into : new byte[n];
                int got = c.doFinal(obj, off + header + NONCE, len - header - NONCE, out, 0);
                return new Payload(out, 0, got);
            } catch (AEADBadTagException e) {
                throw new CorruptObjectException(name, "authentication failed: the object was changed, truncated, "
                        + "swapped, or the key is wrong");
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException(e);
            }
        }
        if (version != 1) throw new CorruptObjectException(name, "damaged header (an unencrypted object of version 2)");
        if (keys != null) {
            throw new CorruptObjectException(name, "object is not encrypted in an encrypted repository");
        }
        if (len < V1_HEADER + 4) throw new CorruptObjectException(name, "truncated");
        CRC32C crc = new CRC32C();
        crc.update(obj, off, V1_HEADER);
        crc.update(nameBytes);
        crc.update(obj, off + V1_HEADER, len - V1_HEADER - 4);
        int stored = ByteBuffer.wrap(obj, off + len - 4, 4).getInt();
        if (stored != (int) crc.getValue()) throw new CorruptObjectException(name, "checksum mismatch");
        return new Payload(obj, off + V1_HEADER, len - V1_HEADER - 4);
    }
}
