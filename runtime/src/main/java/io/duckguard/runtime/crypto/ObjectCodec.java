package io.duckguard.runtime.crypto;

import com.github.luben.zstd.Zstd;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.zip.CRC32C;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * Turns plaintext into a stored object and back: compress (zstd, only when it helps), then encrypt with
 * AES-256-GCM (JDK intrinsics: ~4 GB/s/core here, 40x BouncyCastle) under a random 96-bit nonce. The object's
 * name is authenticated as associated data, so an object moved or swapped to another name fails to open.
 * With encryption off ({@code encryption=none}, explicit only) a CRC32C protects against accidental damage.
 *
 * <pre>
 * object := 'D' 'G' version=1 flags [nonce(12) if encrypted] body
 * flags  := bit0 zstd-compressed, bit1 AES-256-GCM
 * body   := GCM(ciphertext || tag) over payload, AAD = first 4 bytes || name   (encrypted)
 *         | payload || crc32c(first 4 bytes || name || payload)               (plain)
 * payload:= u32 plaintext length || zstd frame   (compressed) | plaintext
 * </pre>
 *
 * Thread-safe: cipher and MAC instances are per thread.
 */
public final class ObjectCodec {
    private static final int HEADER = 4;
    private static final int NONCE = 12;
    private static final int TAG_BITS = 128;
    private static final byte FLAG_ZSTD = 1;
    private static final byte FLAG_AES = 2;

    private final SecretKeySpec encKey; // null = no encryption
    private final SecretKeySpec idKey;
    private final int zstdLevel;
    private final SecureRandom random = new SecureRandom();
    private final ThreadLocal<Cipher> ciphers;
    private final ThreadLocal<Mac> macs;

    public ObjectCodec(MasterKey key, int zstdLevel) {
        this.zstdLevel = zstdLevel;
        if (key != null) {
            this.encKey = new SecretKeySpec(key.derive("duckguard object encryption v1"), "AES");
            this.idKey = new SecretKeySpec(key.derive("duckguard object id v1"), "HmacSHA256");
        } else {
            this.encKey = null;
            this.idKey = null;
        }
        this.ciphers = ThreadLocal.withInitial(() -> {
            try {
                return Cipher.getInstance("AES/GCM/NoPadding");
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException(e);
            }
        });
        this.macs = ThreadLocal.withInitial(() -> {
            try {
                Mac m = Mac.getInstance("HmacSHA256");
                if (idKey != null) m.init(idKey);
                return m;
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException(e);
            }
        });
    }

    public boolean encrypted() {
        return encKey != null;
    }

    /**
     * The content id of a block: HMAC-SHA256 under a key derived from the master key, so ids reveal neither the
     * content nor (to someone without the key) which repositories hold equal content. Plain SHA-256 without a key.
     */
    public byte[] contentId(byte[] data, int off, int len) {
        if (idKey == null) return io.duckguard.runtime.util.Bytes.sha256(data, off, len);
        Mac m = macs.get();
        m.update(data, off, len);
        return m.doFinal();
    }

    public byte[] seal(byte[] plain, String name) {
        return seal(plain, 0, plain.length, name);
    }

    public byte[] seal(byte[] plain, int off, int len, String name) {
        return seal(plain, off, len, name, zstdLevel);
    }

    /**
     * Like {@link #seal(byte[], int, int, String)} with an explicit zstd level: snapshot blocks use level 1 (DuckDB
     * blocks are already compressed: level 3 gains 0.5% for half the speed), metadata the codec's default.
     */
    public byte[] seal(byte[] plain, int off, int len, String name, int zstdLevel) {
        byte flags = 0;
        byte[] payload = plain;
        int pOff = off;
        int pLen = len;
        if (zstdLevel > 0 && len > 64) {
            byte[] dst = new byte[4 + (int) Zstd.compressBound(len)];
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
        try {
            if (encKey != null) {
                flags |= FLAG_AES;
                byte[] out = new byte[HEADER + NONCE + pLen + TAG_BITS / 8];
                writeHeader(out, flags);
                byte[] nonce = new byte[NONCE];
                random.nextBytes(nonce);
                System.arraycopy(nonce, 0, out, HEADER, NONCE);
                Cipher c = ciphers.get();
                c.init(Cipher.ENCRYPT_MODE, encKey, new GCMParameterSpec(TAG_BITS, nonce));
                c.updateAAD(out, 0, HEADER);
                c.updateAAD(nameBytes);
                c.doFinal(payload, pOff, pLen, out, HEADER + NONCE);
                return out;
            }
            byte[] out = new byte[HEADER + pLen + 4];
            writeHeader(out, flags);
            System.arraycopy(payload, pOff, out, HEADER, pLen);
            CRC32C crc = new CRC32C();
            crc.update(out, 0, HEADER);
            crc.update(nameBytes);
            crc.update(payload, pOff, pLen);
            ByteBuffer.wrap(out, HEADER + pLen, 4).putInt((int) crc.getValue());
            return out;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Opens an object written by {@link #seal}; any damage, a wrong key or a wrong name is a CorruptObjectException. */
    public byte[] open(byte[] obj, int off, int len, String name) throws CorruptObjectException {
        if (len < HEADER || obj[off] != 'D' || obj[off + 1] != 'G') {
            throw new CorruptObjectException(name, "not a duckguard object (bad magic)");
        }
        if (obj[off + 2] != 1) throw new CorruptObjectException(name, "unknown object version " + obj[off + 2]);
        byte flags = obj[off + 3];
        byte[] nameBytes = name.getBytes(StandardCharsets.UTF_8);
        byte[] payload;
        if ((flags & FLAG_AES) != 0) {
            if (encKey == null) {
                throw new CorruptObjectException(name, "object is encrypted but no key was given");
            }
            if (len < HEADER + NONCE + TAG_BITS / 8) throw new CorruptObjectException(name, "truncated");
            try {
                Cipher c = ciphers.get();
                c.init(Cipher.DECRYPT_MODE, encKey, new GCMParameterSpec(TAG_BITS, obj, off + HEADER, NONCE));
                c.updateAAD(obj, off, HEADER);
                c.updateAAD(nameBytes);
                payload = c.doFinal(obj, off + HEADER + NONCE, len - HEADER - NONCE);
            } catch (AEADBadTagException e) {
                throw new CorruptObjectException(name, "authentication failed: the object was changed, truncated, "
                        + "swapped, or the key is wrong");
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException(e);
            }
        } else {
            if (encKey != null) {
                throw new CorruptObjectException(name, "object is not encrypted in an encrypted repository");
            }
            if (len < HEADER + 4) throw new CorruptObjectException(name, "truncated");
            CRC32C crc = new CRC32C();
            crc.update(obj, off, HEADER);
            crc.update(nameBytes);
            crc.update(obj, off + HEADER, len - HEADER - 4);
            int stored = ByteBuffer.wrap(obj, off + len - 4, 4).getInt();
            if (stored != (int) crc.getValue()) throw new CorruptObjectException(name, "checksum mismatch");
            payload = new byte[len - HEADER - 4];
            System.arraycopy(obj, off + HEADER, payload, 0, payload.length);
        }
        if ((flags & FLAG_ZSTD) != 0) {
            int plainLen = ByteBuffer.wrap(payload).getInt();
            byte[] plain = new byte[plainLen];
            long n = Zstd.decompressByteArray(plain, 0, plainLen, payload, 4, payload.length - 4);
            if (Zstd.isError(n) || n != plainLen) throw new CorruptObjectException(name, "decompression failed");
            return plain;
        }
        return payload;
    }

    public byte[] open(byte[] obj, String name) throws CorruptObjectException {
        return open(obj, 0, obj.length, name);
    }

    private static void writeHeader(byte[] out, byte flags) {
        out[0] = 'D';
        out[1] = 'G';
        out[2] = 1;
        out[3] = flags;
    }
}
