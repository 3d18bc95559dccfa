package io.duckguard.runtime.crypto;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.Arrays;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import org.bouncycastle.math.ec.rfc7748.X25519;

/**
 * Wraps a data key for one master key. Each master key has an X25519 key pair derived from its 256-bit secret
 * (only the public half is stored in the repository), so a data key can be wrapped for <em>every</em> master key
 * of a repository by a process that holds only one of them: the running agent keeps wrapping new data keys for a
 * master key added by {@code keys rotate} without a restart and without ever seeing that key.
 *
 * <pre>
 * wrap := 0x01 || ephemeral X25519 public (32) || nonce (12) || AES-256-GCM(kek, data key) (32 + 16)
 * kek  := HMAC-SHA256(key = X25519(ephemeral, master public), "duckguard key wrap v1" || ephemeral public || master public)
 * AAD  := "duckguard data key " || data key id || " for master key " || master key id
 * </pre>
 *
 * The AAD binds a wrap to its data key id and its master key id: a wrap copied to another record or under another
 * master key's name does not open.
 */
public final class KeyWrap {
    /** Length of one wrap. */
    public static final int LENGTH = 1 + 32 + 12 + 32 + 16;
    private static final byte VERSION = 1;
    private static final SecureRandom RANDOM = new SecureRandom();

    private KeyWrap() {}

    /** The X25519 public key of a master key's derived private scalar. */
    static byte[] publicKeyOf(byte[] privateScalar) {
        byte[] pub = new byte[32];
        X25519.generatePublicKey(privateScalar, 0, pub, 0);
        return pub;
    }

    public static byte[] wrap(DataKey key, String masterKeyId, byte[] masterPublicKey) {
        if (masterPublicKey == null || masterPublicKey.length != 32) {
            throw new IllegalArgumentException("master key " + masterKeyId + " has no valid public key");
        }
        byte[] eph = new byte[32];
        X25519.generatePrivateKey(RANDOM, eph);
        byte[] ephPub = publicKeyOf(eph);
        byte[] shared = new byte[32];
        if (!X25519.calculateAgreement(eph, 0, masterPublicKey, 0, shared, 0)) {
            throw new IllegalArgumentException("master key " + masterKeyId + " has an invalid public key");
        }
        byte[] out = new byte[LENGTH];
        out[0] = VERSION;
        System.arraycopy(ephPub, 0, out, 1, 32);
        byte[] nonce = new byte[12];
        RANDOM.nextBytes(nonce);
        System.arraycopy(nonce, 0, out, 33, 12);
        try {
            Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
            c.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(kek(shared, ephPub, masterPublicKey), "AES"),
                    new GCMParameterSpec(128, nonce));
            c.updateAAD(aad(key.id(), masterKeyId));
            byte[] raw = key.raw();
            c.doFinal(raw, 0, raw.length, out, 45);
            Arrays.fill(raw, (byte) 0);
            return out;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        } finally {
            Arrays.fill(eph, (byte) 0);
            Arrays.fill(shared, (byte) 0);
        }
    }

    /**
     * Opens a wrap with the master key it was made for.
     *
     * @throws GeneralSecurityException (AEADBadTagException) if the wrap was changed, belongs to another data key
     *     id or master key, or {@code master} is not the key it was made for
     */
    public static DataKey unwrap(String dataKeyId, byte[] wrapped, MasterKey master) throws GeneralSecurityException {
        if (wrapped == null || wrapped.length != LENGTH || wrapped[0] != VERSION) {
            throw new javax.crypto.AEADBadTagException("malformed wrap");
        }
        byte[] ephPub = Arrays.copyOfRange(wrapped, 1, 33);
        byte[] priv = master.privateScalar();
        byte[] shared = new byte[32];
        try {
            if (!X25519.calculateAgreement(priv, 0, ephPub, 0, shared, 0)) {
                throw new javax.crypto.AEADBadTagException("malformed wrap");
            }
            Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
            c.init(Cipher.DECRYPT_MODE, new SecretKeySpec(kek(shared, ephPub, master.publicKey()), "AES"),
                    new GCMParameterSpec(128, wrapped, 33, 12));
            c.updateAAD(aad(dataKeyId, master.keyId()));
            byte[] raw = c.doFinal(wrapped, 45, wrapped.length - 45);
            try {
                return DataKey.of(dataKeyId, raw);
            } finally {
                Arrays.fill(raw, (byte) 0);
            }
        } finally {
            Arrays.fill(priv, (byte) 0);
            Arrays.fill(shared, (byte) 0);
        }
    }

    private static byte[] kek(byte[] shared, byte[] ephPub, byte[] masterPub) throws GeneralSecurityException {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(shared, "HmacSHA256"));
        mac.update("duckguard key wrap v1".getBytes(StandardCharsets.US_ASCII));
        mac.update(ephPub);
        mac.update(masterPub);
        return mac.doFinal();
    }

    private static byte[] aad(String dataKeyId, String masterKeyId) {
        return ("duckguard data key " + dataKeyId + " for master key " + masterKeyId).getBytes(StandardCharsets.US_ASCII);
    }
}
