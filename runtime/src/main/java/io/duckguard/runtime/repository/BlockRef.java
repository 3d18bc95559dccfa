package io.duckguard.runtime.repository;

/**
 * Where one chunk of a snapshot is stored: its content id, the pack that holds its sealed bytes, and where.
 * Chunk i of a database file covers bytes [offset(i), offset(i)+plainLength): chunk 0 is the 12 KiB of headers,
 * the rest follow DuckDB's 256 KiB block grid, so an unchanged DuckDB block is an unchanged chunk.
 */
public record BlockRef(byte[] id, String pack, long packOffset, int storedLength, int plainLength) {
    public String objectName() {
        return "block:" + io.duckguard.runtime.util.Bytes.hex(id);
    }
}
