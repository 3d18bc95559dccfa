package io.duckguard.runtime.util;

import java.nio.ByteBuffer;

/**
 * DuckDB's checksum (src/common/checksum.cpp): of a block after its 8-byte checksum field, of a database header, of a
 * WAL entry's payload. Little-endian 64-bit words multiplied and xor-ed; the last 0-7 bytes, if any, through
 * robin-hood-hashing's hash_bytes, as DuckDB's ChecksumRemainder.
 */
public final class DuckDbChecksum {
    private DuckDbChecksum() {}

    public static long of(byte[] b, int off, int len) {
        long result = 5381;
        int words = len / 8;
        for (int i = 0; i < words; i++) result ^= Bytes.getLongLE(b, off + 8 * i) * 0xbf58476d1ce4e5b9L;
        int rest = len - words * 8;
        if (rest > 0) {
            final long m = 0xc6a4a7935bd1e995L;
            long h = 0xe17a1465L ^ (rest * m);
            int t = off + words * 8;
            for (int k = rest - 1; k >= 0; k--) h ^= (long) (b[t + k] & 0xff) << (8 * k);
            h *= m;
            h ^= h >>> 47;
            h *= m;
            h ^= h >>> 47;
            result ^= h;
        }
        return result;
    }

    /** Of {@code len} bytes from index {@code from} of a heap buffer (its position and limit are not used). */
    public static long of(ByteBuffer heap, int from, int len) {
        return of(heap.array(), heap.arrayOffset() + from, len);
    }
}
