package io.duckguard.runtime.crypto;

import java.security.SecureRandom;
import java.util.regex.Pattern;
import javax.crypto.spec.SecretKeySpec;

/**
 * A 256-bit data key: what objects are really encrypted with (envelope encryption). It is stored only wrapped,
 * once per master key, in the repository's {@code keys/<id>} record; its id travels in the header of every object
 * it seals, so any object can be opened without knowing where it came from. Ids are short, lower case and
 * file-name safe ({@code [a-z0-9][a-z0-9-]*}, at most {@value #MAX_ID_LENGTH} characters): an id read from an object
 * header names a file, so anything else is refused as damage.
 */
public final class DataKey {
    public static final int MAX_ID_LENGTH = 64;
    private static final Pattern ID = Pattern.compile("[a-z0-9][a-z0-9-]{0," + (MAX_ID_LENGTH - 1) + "}");
    private static final SecureRandom RANDOM = new SecureRandom();

    private final String id;
    private final byte[] raw;
    private final SecretKeySpec aes;

    private DataKey(String id, byte[] raw) {
        if (!isValidId(id)) throw new IllegalArgumentException("invalid data key id '" + id + "'");
        if (raw.length != 32) throw new IllegalArgumentException("a data key has 32 bytes, not " + raw.length);
        this.id = id;
        this.raw = raw.clone();
        this.aes = new SecretKeySpec(this.raw, "AES");
    }

    /** A fresh random key. */
    public static DataKey generate(String id) {
        byte[] k = new byte[32];
        RANDOM.nextBytes(k);
        return new DataKey(id, k);
    }

    /** A key with given bytes (an unwrapped key, or one derived from a format-1 master key). */
    public static DataKey of(String id, byte[] raw) {
        return new DataKey(id, raw);
    }

    public static boolean isValidId(String id) {
        return id != null && ID.matcher(id).matches();
    }

    public String id() {
        return id;
    }

    SecretKeySpec aes() {
        return aes;
    }

    byte[] raw() {
        return raw.clone();
    }

    @Override
    public String toString() {
        return "DataKey[" + id + "]"; // never the key
    }
}
