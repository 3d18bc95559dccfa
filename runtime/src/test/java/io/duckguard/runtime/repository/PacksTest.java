package io.duckguard.runtime.repository;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.duckguard.runtime.crypto.MasterKey;
import io.duckguard.runtime.crypto.ObjectCodec;
import io.duckguard.runtime.util.Bytes;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.io.TempDir;

/**
 * Packs written with O_DIRECT (staged, padded, then cut to length), through the page cache, and through the page
 * cache after O_DIRECT was refused, hold exactly the blocks written: every block reads back, every pack is exactly as
 * long as its blocks, and no temporary file is left.
 */
class PacksTest {
    @TempDir
    Path dir;

    enum Mode { DIRECT, PAGE_CACHE, DIRECT_REFUSED }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Mode.class)
    void everyBlockReadsBackAndPacksCarryNoPadding(Mode mode) throws Exception {
        boolean direct = mode == Mode.DIRECT;
        Repository repo = Repository.create(dir.resolve("repo"), MasterKey.generate());
        ObjectCodec codec = repo.codec();
        Random rnd = new Random(mode.ordinal());
        List<BlockRef> refs = new ArrayList<>();
        List<byte[]> plains = new ArrayList<>();
        Map<String, Long> packBytes = new HashMap<>();
        boolean sawDirect = false;
        try (Packs.Writer w = new Packs.Writer(repo)) {
            if (mode == Mode.PAGE_CACHE) w.writeThroughPageCache();
            // A 1-byte "block size": the file opens with O_DIRECT, its trial write of one byte is refused (JDK or kernel),
            // and the writer closes and deletes it and falls back to the page cache.
            if (mode == Mode.DIRECT_REFUSED) w.assumeFileSystemBlockSize(1);
            long total = 0;
            // Sizes from 1 byte to a whole chunk: blocks straddle the 2 MiB stage and the 64 MiB pack boundary.
            while (total < Packs.TARGET_PACK_BYTES + (9L << 20)) {
                byte[] plain = new byte[rnd.nextInt(10) == 0 ? 1 + rnd.nextInt(100) : 1 + rnd.nextInt(Manifest.CHUNK)];
                rnd.nextBytes(plain);
                byte[] id = codec.contentId(plain, 0, plain.length);
                byte[] sealed = codec.seal(w.sealingKey(), plain, 0, plain.length, "block:" + Bytes.hex(id), 0);
                BlockRef ref = w.add(id, sealed, plain.length);
                sawDirect |= w.writingDirect();
                refs.add(ref);
                plains.add(plain);
                packBytes.merge(ref.pack(), (long) sealed.length, Long::sum);
                total += sealed.length;
            }
            w.finish();
        }
        assertEquals(direct, sawDirect, "O_DIRECT used as asked (this file system supports it)");
        assertEquals(2, packBytes.size(), "two packs");
        for (Map.Entry<String, Long> e : packBytes.entrySet()) {
            assertEquals(e.getValue(), Packs.size(repo, e.getKey()), "pack " + e.getKey() + " has no padding left");
        }
        for (int i = 0; i < refs.size(); i++) assertArrayEquals(plains.get(i), Packs.readBlock(repo, refs.get(i)), "block " + i);
        try (var s = Files.walk(repo.packsDir())) {
            assertEquals(0, s.filter(p -> p.getFileName().toString().contains(".tmp")).count(), "no temporary pack left");
        }
    }
}
