package io.duckguard.runtime.repository;

import io.duckguard.runtime.crypto.KeySource;
import io.duckguard.runtime.crypto.MasterKey;
import io.duckguard.runtime.util.Bytes;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Properties;

/**
 * The master keys a repository knows, kept in repository.properties (public facts only: never a secret):
 *
 * <pre>
 * key-id=&lt;id&gt;                          the current master key (the newest completed rotation)
 * master-keys=&lt;id&gt;,&lt;id&gt;,...            every master key ever added, oldest first
 * master.&lt;id&gt;.created=&lt;instant&gt;
 * master.&lt;id&gt;.public=&lt;hex&gt;              X25519 public key: anyone may wrap a data key for it
 * master.&lt;id&gt;.source=file|keystore|passphrase
 * master.&lt;id&gt;.kdf=argon2id$v=19$m=..,t=..,p=..$&lt;salt&gt;   passphrase keys only
 * master.&lt;id&gt;.retired=&lt;instant&gt;          once retired: no data key is wrapped for it any more
 * </pre>
 *
 * Immutable; the {@code with*} methods return changed copies.
 */
public final class MasterKeys {
    /** One master key. */
    public record Entry(String id, Instant created, byte[] publicKey, String source, String kdf, Instant retired) {
        public boolean active() {
            return retired == null;
        }
    }

    private final List<Entry> entries;
    private final String current;

    private MasterKeys(List<Entry> entries, String current) {
        this.entries = List.copyOf(entries);
        this.current = current;
    }

    /** The registry of a new repository (or of one upgraded from format 1): one master key. */
    static MasterKeys first(MasterKey key, Instant created) {
        return new MasterKeys(List.of(entryOf(key, created)), key.keyId());
    }

    static Entry entryOf(MasterKey key, Instant created) {
        return new Entry(key.keyId(), created, key.publicKey(), key.origin(), key.kdf(), null);
    }

    static MasterKeys from(Properties p) throws RepositoryException {
        String list = p.getProperty("master-keys", "").trim();
        List<Entry> entries = new ArrayList<>();
        if (!list.isEmpty()) {
            for (String id : list.split(",")) {
                id = id.trim();
                String pre = "master." + id + ".";
                try {
                    String created = p.getProperty(pre + "created");
                    String retired = p.getProperty(pre + "retired");
                    String pub = p.getProperty(pre + "public");
                    entries.add(new Entry(id, created == null ? null : Instant.parse(created),
                            pub == null ? null : Bytes.unhex(pub), p.getProperty(pre + "source", MasterKey.FILE),
                            p.getProperty(pre + "kdf"), retired == null ? null : Instant.parse(retired)));
                } catch (RuntimeException e) {
                    throw new RepositoryException("repository.properties is damaged (master key " + id + "): " + e.getMessage());
                }
            }
        }
        return new MasterKeys(entries, p.getProperty("key-id"));
    }

    /** Writes this registry into {@code p}, replacing what was there. */
    void writeTo(Properties p) {
        for (String k : new ArrayList<>(p.stringPropertyNames())) if (k.startsWith("master.")) p.remove(k);
        List<String> ids = new ArrayList<>();
        for (Entry e : entries) {
            ids.add(e.id());
            String pre = "master." + e.id() + ".";
            if (e.created() != null) p.setProperty(pre + "created", e.created().toString());
            if (e.publicKey() != null) p.setProperty(pre + "public", Bytes.hex(e.publicKey()));
            p.setProperty(pre + "source", e.source());
            if (e.kdf() != null) p.setProperty(pre + "kdf", e.kdf());
            if (e.retired() != null) p.setProperty(pre + "retired", e.retired().toString());
        }
        p.setProperty("master-keys", String.join(",", ids));
        if (current != null) p.setProperty("key-id", current);
    }

    public List<Entry> all() {
        return entries;
    }

    public List<Entry> active() {
        List<Entry> out = new ArrayList<>();
        for (Entry e : entries) if (e.active()) out.add(e);
        return out;
    }

    public Entry get(String id) {
        for (Entry e : entries) if (e.id().equals(id)) return e;
        return null;
    }

    public String currentId() {
        return current;
    }

    public Entry current() {
        return get(current);
    }

    public List<String> activeIds() {
        List<String> out = new ArrayList<>();
        for (Entry e : active()) out.add(e.id());
        return out;
    }

    /** What a {@link KeySource} needs to find or derive a key: the active master keys, current first. */
    public List<KeySource.Known> known() {
        List<KeySource.Known> out = new ArrayList<>();
        for (Entry e : active()) {
            KeySource.Known k = new KeySource.Known(e.id(), e.kdf());
            if (e.id().equals(current)) out.add(0, k);
            else out.add(k);
        }
        return Collections.unmodifiableList(out);
    }

    MasterKeys with(Entry e) {
        List<Entry> out = new ArrayList<>();
        boolean replaced = false;
        for (Entry x : entries) {
            if (x.id().equals(e.id())) {
                out.add(e);
                replaced = true;
            } else {
                out.add(x);
            }
        }
        if (!replaced) out.add(e);
        return new MasterKeys(out, current);
    }

    MasterKeys withCurrent(String id) {
        return new MasterKeys(entries, id);
    }

    MasterKeys withRetired(String id, Instant when) {
        Entry e = get(id);
        return with(new Entry(e.id(), e.created(), e.publicKey(), e.source(), e.kdf(), when));
    }
}
