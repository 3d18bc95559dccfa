package io.duckguard.runtime.repository;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * Snapshot n: the database file as it was right after checkpoint n, as a list of chunks. It binds WAL epoch n to
 * its exact base: the WAL log of epoch n records {@link #fileSha256} and restore refuses any other pairing.
 * {@code fileSha256} is the SHA-256 over the chunk ids in order; each id is a keyed hash of its chunk, so it
 * identifies the file's exact content without a second full pass over it.
 */
public record Manifest(long epoch, long createdMillis, long fileSize, byte[] fileSha256, byte[] headerSha256,
                       long headerIteration, String duckdbVersion, String reason, List<BlockRef> chunks,
                       long previousWalEnd, List<byte[]> fingerprints) {
    /** Without {@code previousWalEnd} (unknown: -1) and without change fingerprints. */
    public Manifest(long epoch, long createdMillis, long fileSize, byte[] fileSha256, byte[] headerSha256,
                    long headerIteration, String duckdbVersion, String reason, List<BlockRef> chunks) {
        this(epoch, createdMillis, fileSize, fileSha256, headerSha256, headerIteration, duckdbVersion, reason, chunks, -1,
                List.of());
    }

    /**
     * The change fingerprint of chunk {@code i} (see snapshot.ChangeFingerprint), or null: none recorded (manifests
     * written before fingerprints existed, or a chunk that cannot have one). Fingerprints are only as secret as the
     * manifest, which is encrypted.
     */
    public byte[] fingerprint(int i) {
        return i < fingerprints.size() ? fingerprints.get(i) : null;
    }

    /**
     * The same snapshot, recording where the previous epoch's WAL log ended when this epoch began (its final
     * length): verify can then tell a WAL log cut short by damage from the torn tail a crash may leave.
     */
    public Manifest withPreviousWalEnd(long end) {
        return new Manifest(epoch, createdMillis, fileSize, fileSha256, headerSha256, headerIteration, duckdbVersion,
                reason, chunks, end, fingerprints);
    }

    static final int VERSION = 1;
    /** DuckDB's file header area: the main header plus two database headers, 4 KiB each. */
    public static final int HEADER_BYTES = 12288;
    /** Chunk size after the header: DuckDB's default block allocation size. */
    public static final int CHUNK = 262144;

    public static long chunkOffset(int index) {
        return index == 0 ? 0 : HEADER_BYTES + (long) (index - 1) * CHUNK;
    }

    byte[] encode() {
        try {
            ByteArrayOutputStream bo = new ByteArrayOutputStream(256 + chunks.size() * 80);
            DataOutputStream o = new DataOutputStream(bo);
            o.writeInt(VERSION);
            o.writeLong(epoch);
            o.writeLong(createdMillis);
            o.writeLong(fileSize);
            o.write(fileSha256);
            o.write(headerSha256);
            o.writeLong(headerIteration);
            o.writeUTF(duckdbVersion);
            o.writeUTF(reason);
            o.writeInt(chunks.size());
            for (BlockRef b : chunks) {
                o.write(b.id());
                o.writeUTF(b.pack());
                o.writeLong(b.packOffset());
                o.writeInt(b.storedLength());
                o.writeInt(b.plainLength());
            }
            o.writeLong(previousWalEnd); // appended field: older readers stop before it
            o.writeInt(fingerprints.size()); // appended too: one length byte (0 or 16) + bytes per chunk
            for (byte[] f : fingerprints) {
                o.writeByte(f == null ? 0 : f.length);
                if (f != null) o.write(f);
            }
            o.flush();
            return bo.toByteArray();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    static Manifest decode(byte[] data) throws IOException {
        DataInputStream in = new DataInputStream(new ByteArrayInputStream(data));
        int v = in.readInt();
        if (v != VERSION) throw new IOException("unknown manifest version " + v);
        long epoch = in.readLong();
        long created = in.readLong();
        long size = in.readLong();
        byte[] sha = in.readNBytes(32);
        byte[] hsha = in.readNBytes(32);
        long iteration = in.readLong();
        String version = in.readUTF();
        String reason = in.readUTF();
        int n = in.readInt();
        List<BlockRef> chunks = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            byte[] id = in.readNBytes(32);
            chunks.add(new BlockRef(id, in.readUTF(), in.readLong(), in.readInt(), in.readInt()));
        }
        long previousWalEnd = in.available() >= 8 ? in.readLong() : -1;
        List<byte[]> fingerprints = new ArrayList<>();
        if (in.available() >= 4) {
            int f = in.readInt();
            if (f < 0 || f > n) throw new IOException("damaged manifest: " + f + " fingerprints for " + n + " chunks");
            for (int i = 0; i < f; i++) {
                int len = in.readUnsignedByte();
                fingerprints.add(len == 0 ? null : in.readNBytes(len));
            }
        }
        return new Manifest(epoch, created, size, sha, hsha, iteration, version, reason, chunks, previousWalEnd, fingerprints);
    }
}
