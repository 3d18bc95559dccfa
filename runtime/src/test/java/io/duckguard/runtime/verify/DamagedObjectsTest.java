package io.duckguard.runtime.verify;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.runtime.repository.BlockRef;
import io.duckguard.runtime.repository.Repository;
import io.duckguard.runtime.repository.RepositoryOpener;
import io.duckguard.runtime.restore.DuckDbDriver;
import io.duckguard.runtime.restore.RecordedHistory;
import io.duckguard.runtime.restore.RestoreTarget;
import io.duckguard.runtime.restore.Restorer;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Invariant 6 per object type: for a pack, a manifest, a WAL log and a data key record, a flipped byte, a
 * truncation, a deletion and a swap with another object of the same type are each reported by verify naming the
 * object; a restore of a point that needs it fails naming it; a point that does not need it still restores exactly.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class DamagedObjectsTest {
    @TempDir
    static Path tmp;

    RecordedHistory recorded;

    @BeforeAll
    void produce() throws Exception {
        recorded = RecordedHistory.produce(tmp.resolve("src"), "");
    }

    static Stream<Arguments> cases() {
        List<Arguments> a = new ArrayList<>();
        for (String type : new String[] {"pack", "manifest", "wal", "key"}) {
            for (String damage : new String[] {"flip", "truncate", "delete", "swap"}) a.add(Arguments.of(type, damage));
        }
        return a.stream();
    }

    /** A long verify --read-data says how far it got, per snapshot, and an intact repository verifies. */
    @org.junit.jupiter.api.Test
    void readingBlocksReportsProgress() throws Exception {
        Repository repo = RepositoryOpener.openExisting(recorded.repository, recorded.keyFile);
        List<String> lines = new java.util.concurrent.CopyOnWriteArrayList<>();
        Verifier v = new Verifier(repo, lines::add);
        v.progressEveryNanos = 0;
        Verifier.Report r = v.run(true);
        assertTrue(r.ok(), r.problems().toString());
        List<String> progress = lines.stream().filter(l -> l.startsWith("reading the blocks of ")).toList();
        assertFalse(progress.isEmpty(), lines.toString());
        for (String l : progress) assertTrue(l.matches("reading the blocks of \\S+ snapshot:\\d+ and its commits: \\d+ of \\d+"), l);
    }

    @ParameterizedTest(name = "{1} a {0}")
    @MethodSource("cases")
    void damageIsNamedAndOnlyAffectedPointsFail(String type, String damage) throws Exception {
        Path repoDir = io.duckguard.runtime.testing.TestFiles.copyTree(recorded.repository, tmp.resolve(type + "-" + damage));
        Repository repo = RepositoryOpener.openExisting(repoDir, recorded.keyFile);
        Path epochs = repoDir.resolve("databases").resolve(RecordedHistory.DB).resolve("epochs");
        // Victim and what it breaks: epoch 2's objects break epoch 2's restore points; epoch 3 stays intact unless
        // it shares the victim (packs are shared by later snapshots through dedup).
        Path victim;
        Path other;
        switch (type) {
            case "pack" -> {
                List<Path> packs = files(repoDir.resolve("packs"));
                victim = packs.get(0);
                other = packs.get(packs.size() - 1);
            }
            case "manifest" -> {
                victim = epochs.resolve("0000000002").resolve("manifest");
                other = epochs.resolve("0000000001").resolve("manifest");
            }
            case "wal" -> {
                victim = epochs.resolve("0000000002").resolve("wal");
                other = epochs.resolve("0000000001").resolve("wal");
            }
            default -> { // the data key record that epoch 2's WAL log is encrypted with
                victim = keyOf(repoDir, epochs.resolve("0000000002").resolve("wal"));
                other = keyOf(repoDir, epochs.resolve("0000000001").resolve("wal"));
            }
        }
        boolean swap = damage.equals("swap");
        // What breaks: epoch 2's objects break epoch 2's points (a swap also epoch 1's); a pack breaks every
        // snapshot that references a block in it (later snapshots share blocks through dedup).
        Set<Long> broken = new HashSet<>();
        if (type.equals("pack")) {
            // A flip breaks the one block holding that byte, a truncation the blocks past the cut, a deletion or a
            // swap every block of the pack(s).
            long size = Files.size(victim);
            Set<String> whole = new HashSet<>();
            if (damage.equals("delete") || swap) whole.add(victim.getFileName().toString());
            if (swap) whole.add(other.getFileName().toString());
            for (long e = 1; e <= recorded.epochs(); e++) {
                for (BlockRef b : repo.database(RecordedHistory.DB).readManifest(e).chunks()) {
                    boolean inVictim = b.pack().equals(victim.getFileName().toString());
                    long end = b.packOffset() + b.storedLength();
                    if (whole.contains(b.pack())
                            || (inVictim && damage.equals("flip") && b.packOffset() <= size / 2 && size / 2 < end)
                            || (inVictim && damage.equals("truncate") && end > size * 2 / 3)) {
                        broken.add(e);
                    }
                }
            }
        } else {
            broken.add(2L);
            if (swap) broken.add(1L);
        }
        String victimName = victim.getFileName().toString();
        apply(damage, victim, other);

        Verifier.Report v = new Verifier(repo, m -> { }).run(true);
        assertFalse(v.ok(), "verify must fail after " + damage + " of " + victim);
        String problems = v.problems().toString();
        assertTrue(mentions(problems, type, victimName), "verify names the " + type + ": " + problems);

        for (long e = 1; e <= recorded.epochs(); e++) {
            int commits = recorded.states.get((int) e).size() - 1;
            String target = type.equals("wal") || type.equals("key") ? "commit:" + e + "." + commits : "snapshot:" + e;
            Path out = tmp.resolve("out-" + type + "-" + damage + "-" + e + ".duckdb");
            if (broken.contains(e)) {
                Exception ex = assertThrows(Exception.class, () -> restore(repo, target, out), target + " must fail");
                assertTrue(mentions(ex.getMessage(), type, victimName) || (other != null && mentions(ex.getMessage(), type,
                        other.getFileName().toString())), target + ": " + ex.getMessage());
                assertFalse(Files.exists(out));
            } else {
                restore(repo, target, out);
                String expected = target.startsWith("snapshot") ? recorded.states.get((int) e).get(0)
                        : recorded.states.get((int) e).get(commits);
                assertEquals(expected, RecordedHistory.fingerprint(out), target + " is unaffected and must restore exactly");
            }
        }
    }

    private static boolean mentions(String text, String type, String fileName) {
        return switch (type) {
            case "pack" -> text.contains("block:") || text.contains(fileName);
            case "manifest" -> text.contains("/manifest");
            case "wal" -> text.contains("/wal");
            default -> text.contains(fileName) || text.contains("data key");
        };
    }

    private static void apply(String damage, Path victim, Path other) throws IOException {
        switch (damage) {
            case "flip" -> {
                try (RandomAccessFile f = new RandomAccessFile(victim.toFile(), "rw")) {
                    f.seek(f.length() / 2);
                    int b = f.read();
                    f.seek(f.length() / 2);
                    f.write(b ^ 0x04);
                }
            }
            case "truncate" -> {
                try (RandomAccessFile f = new RandomAccessFile(victim.toFile(), "rw")) {
                    f.setLength(f.length() * 2 / 3);
                }
            }
            case "delete" -> Files.delete(victim);
            default -> {
                Path t = victim.resolveSibling("swap.tmp");
                Files.move(victim, t);
                Files.move(other, victim);
                Files.move(t, other);
            }
        }
    }

    private void restore(Repository repo, String target, Path out) throws Exception {
        new Restorer(repo.database(RecordedHistory.DB), m -> { }).restore(RestoreTarget.parse(target), out, false,
                DuckDbDriver.find(null, null, null));
    }

    /** The key record named by the first object of a WAL log: its header's key id (format 2 objects). */
    private static Path keyOf(Path repoDir, Path walLog) throws IOException {
        byte[] b = Files.readAllBytes(walLog);
        int off = 8; // frame: u32 length, u32 crc
        if (b[off] != 'D' || b[off + 1] != 'G' || b[off + 2] != 2) throw new IllegalStateException("not a format 2 object");
        int idLen = b[off + 4] & 0xff;
        String id = new String(b, off + 5, idLen, java.nio.charset.StandardCharsets.US_ASCII);
        Path k = repoDir.resolve("keys").resolve(id);
        if (!Files.exists(k)) throw new IllegalStateException("no key record " + k);
        return k;
    }

    private static List<Path> files(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(Files::isRegularFile).sorted().toList();
        }
    }
}
