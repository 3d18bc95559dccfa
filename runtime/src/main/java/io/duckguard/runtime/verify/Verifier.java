package io.duckguard.runtime.verify;

import io.duckguard.runtime.crypto.CorruptObjectException;
import io.duckguard.runtime.repository.BlockRef;
import io.duckguard.runtime.repository.DatabaseHistory;
import io.duckguard.runtime.repository.Manifest;
import io.duckguard.runtime.repository.Packs;
import io.duckguard.runtime.repository.Repository;
import io.duckguard.runtime.repository.WalLog;
import io.duckguard.runtime.snapshot.Snapshotter;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Checks a repository without changing it: every manifest opens, every pack it names exists and is long enough,
 * every WAL log authenticates record by record and is bound to its epoch's snapshot. With {@code readData}, every
 * block is also read, decrypted and checked against its content id. Each problem names the object and the restore
 * points it breaks.
 */
public final class Verifier {
    /** One damaged or missing object and what it breaks. */
    public record Problem(String object, String problem, String breaks) {
        @Override
        public String toString() {
            return object + ": " + problem + " -> breaks " + breaks;
        }
    }

    public record Report(int epochs, long blocksChecked, List<Problem> problems) {
        public boolean ok() {
            return problems.isEmpty();
        }
    }

    private final Repository repo;
    private final Consumer<String> progress;
    /** How often reading blocks reports how far it got (tests: 0, every wait). */
    long progressEveryNanos = 2_000_000_000L;

    public Verifier(Repository repo, Consumer<String> progress) {
        this.repo = repo;
        this.progress = progress;
    }

    public Report run(boolean readData) throws IOException {
        return run(readData, 100);
    }

    /**
     * @param readData      also read and authenticate blocks
     * @param subsetPercent with readData: read only this share of the blocks, chosen by their ids (so repeated runs
     *                      with a different share cover different blocks deterministically), 1..100
     */
    public Report run(boolean readData, int subsetPercent) throws IOException {
        List<Problem> problems = new ArrayList<>();
        Map<String, Long> packSizes = new HashMap<>();
        // Blocks already read, by 8 bytes mixed from their id, pack and offset: 8 bytes per block, not an object per
        // block, so memory stays small on repositories with millions of blocks (a collision only skips a read).
        LongSet blocksRead = new LongSet();
        int epochs = 0;
        long blocks = 0;
        for (String name : repo.databaseNamesWithHistory()) {
            DatabaseHistory h = repo.database(name);
            if (!h.exists()) {
                problems.add(new Problem("databases/" + name + "/database.properties", "missing", name
                        + ": list and restore do not show it (restore it from a copy, or write it with name=" + name + ")"));
            }
            List<Long> all = h.epochs();
            for (int i = 0; i < all.size(); i++) {
                long e = all.get(i);
                if (!h.hasManifest(e)) {
                    // Unfinished (a crash while the snapshot was taken) unless its WAL log already holds commits:
                    // records are appended only after the manifest exists, so then the manifest was lost.
                    if (h.hasWalLog(e)) {
                        try {
                            if (h.readWalLog(e).commitCount() > 0) {
                                problems.add(new Problem("databases/" + name + "/epochs/" + String.format("%010d", e) + "/manifest",
                                        "missing (its WAL log holds commits)", name + " snapshot:" + e + " and its commits"));
                            }
                        } catch (CorruptObjectException ex) {
                            problems.add(new Problem(ex.objectName(), ex.getMessage(), name + " commits of epoch " + e));
                        }
                    }
                    continue;
                }
                epochs++;
                String point = name + " snapshot:" + e + " and its commits";
                List<BlockRef> toRead = new ArrayList<>();
                Manifest m;
                try {
                    m = h.readManifest(e);
                } catch (CorruptObjectException ex) {
                    problems.add(new Problem(ex.objectName(), ex.getMessage(), point));
                    continue;
                }
                for (BlockRef b : m.chunks()) {
                    long size = packSizes.computeIfAbsent(b.pack(), pack -> Packs.size(repo, pack));
                    if (size < 0) {
                        problems.add(new Problem("pack " + b.pack(), "missing", point));
                        continue;
                    }
                    if (b.packOffset() + b.storedLength() > size) {
                        problems.add(new Problem(b.objectName() + " in pack " + b.pack(), "pack is truncated", point));
                        continue;
                    }
                    long key = java.nio.ByteBuffer.wrap(b.id()).getLong();
                    // Sampled by id; read once per stored copy (a chunk copied out of a sparse pack has two).
                    long copy = key ^ (b.pack().hashCode() * 0x9E3779B97F4A7C15L) ^ b.packOffset();
                    if (readData && Math.floorMod(key, 100) < subsetPercent && blocksRead.add(copy)) toRead.add(b);
                }
                problems.addAll(readAll(toRead, point));
                blocks += toRead.size();
                if (!h.hasWalLog(e) && !h.walRemovedByRetention(e)) {
                    problems.add(new Problem("databases/" + name + "/epochs/" + String.format("%010d", e) + "/wal",
                            "missing (not removed by retention)", name + " commits of epoch " + e));
                }
                // Where this epoch's WAL log must end: recorded by the next epoch's manifest when it began.
                long expectedEnd = -1;
                for (int j = i + 1; j < all.size() && expectedEnd < 0; j++) {
                    if (!h.hasManifest(all.get(j))) continue;
                    try {
                        expectedEnd = h.readManifest(all.get(j)).previousWalEnd();
                    } catch (CorruptObjectException ex) {
                        break; // reported on its own
                    }
                    break;
                }
                if (h.hasWalLog(e)) {
                    try {
                        WalLog.Contents c = h.readWalLog(e);
                        if (expectedEnd >= 0 && c.walEnd() != expectedEnd) {
                            problems.add(new Problem("databases/" + name + "/epochs/" + String.format("%010d", e) + "/wal",
                                    "ends at WAL offset " + c.walEnd() + " but was closed at " + expectedEnd + " (cut short)",
                                    name + " commits of epoch " + e + " after offset " + c.walEnd()));
                        }
                        if (!Arrays.equals(c.baseSha256(), m.fileSha256())) {
                            problems.add(new Problem("WAL log of " + name + " epoch " + e, "bound to another snapshot",
                                    name + " commits of epoch " + e));
                        }
                        if (c.tornTail()) {
                            progress.accept("note: " + name + " epoch " + e + " WAL log ends in a torn record (a crash "
                                    + "while shipping); its " + c.commitCount() + " complete commits are intact");
                        }
                    } catch (CorruptObjectException ex) {
                        problems.add(new Problem(ex.objectName(), ex.getMessage(), name + " commits of epoch " + e));
                    }
                }
            }
        }
        progress.accept(String.format("verified %d snapshots%s: %s", epochs,
                readData ? ", " + blocks + " blocks read" + (subsetPercent < 100 ? " (" + subsetPercent + "% sample)" : "") : "", problems.isEmpty() ? "OK" : problems.size() + " problems"));
        return new Report(epochs, blocks, problems);
    }

    /**
     * Reads, authenticates and id-checks one snapshot's {@code refs} on the snapshot worker threads (both cores;
     * each pack opened once, as a restore does), and returns their problems in the order of {@code refs}. Blocks this
     * thread until all are read. An IOException other than damage (an unreadable pack) ends the verify, as reading
     * one block at a time did.
     */
    private List<Problem> readAll(List<BlockRef> refs, String point) throws IOException {
        Problem[] found = new Problem[refs.size()];
        java.util.concurrent.atomic.AtomicInteger next = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.atomic.AtomicInteger read = new java.util.concurrent.atomic.AtomicInteger();
        List<java.util.concurrent.Future<?>> workers = new ArrayList<>();
        try (Packs.Reader reader = new Packs.Reader(repo)) {
            for (int w = 0; w < Snapshotter.WORKERS; w++) {
                workers.add(Snapshotter.workers().submit(() -> {
                    Packs.Reader.Buffers b = new Packs.Reader.Buffers();
                    for (int i = next.getAndIncrement(); i < refs.size(); i = next.getAndIncrement()) {
                        try {
                            reader.readAndCheckId(refs.get(i), b);
                        } catch (CorruptObjectException ex) {
                            found[i] = new Problem(ex.objectName(), ex.getMessage(), point);
                        }
                        read.incrementAndGet();
                    }
                    return null;
                }));
            }
            long nextReport = System.nanoTime() + progressEveryNanos;
            for (java.util.concurrent.Future<?> w : workers) {
                do {
                    if (System.nanoTime() - nextReport >= 0) {
                        progress.accept(String.format("reading the blocks of %s: %d of %d", point, read.get(), refs.size()));
                        nextReport = System.nanoTime() + progressEveryNanos;
                    }
                } while (!io.duckguard.runtime.util.Futures.doneWithin(w, 100));
                io.duckguard.runtime.util.Futures.await(w);
            }
        } finally {
            for (java.util.concurrent.Future<?> w : workers) w.cancel(true);
        }
        List<Problem> out = new ArrayList<>();
        for (Problem p : found) if (p != null) out.add(p);
        return out;
    }

    /** A minimal open-addressing set of longs (0 is stored out of band). */
    static final class LongSet {
        private long[] table = new long[1024];
        private int size;
        private boolean hasZero;

        boolean add(long v) {
            if (v == 0) {
                boolean was = hasZero;
                hasZero = true;
                return !was;
            }
            if (size * 2 >= table.length) grow();
            int mask = table.length - 1;
            int i = (int) (mix(v) & mask);
            while (table[i] != 0) {
                if (table[i] == v) return false;
                i = (i + 1) & mask;
            }
            table[i] = v;
            size++;
            return true;
        }

        private void grow() {
            long[] old = table;
            table = new long[old.length * 2];
            size = 0;
            for (long v : old) if (v != 0) add(v);
        }

        private static long mix(long v) {
            v ^= v >>> 33;
            v *= 0xff51afd7ed558ccdL;
            return v ^ (v >>> 33);
        }
    }
}
