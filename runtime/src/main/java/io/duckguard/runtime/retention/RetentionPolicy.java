package io.duckguard.runtime.retention;

import io.duckguard.runtime.crypto.CorruptObjectException;
import io.duckguard.runtime.repository.DatabaseHistory;
import io.duckguard.runtime.repository.Manifest;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.time.temporal.IsoFields;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * What to keep of one database's history. Computed from what must stay, never from what looks old:
 * <ul>
 *   <li>every commit of the last {@code window} stays restorable: an epoch whose span [its snapshot, the next
 *       snapshot) reaches into the window keeps its snapshot and its WAL, and the newest epoch always stays whole;</li>
 *   <li>the newest {@code snapshots} snapshots stay as rollback versions (their WAL may go);</li>
 *   <li>optionally the newest snapshot of each of the last {@code daily} days and {@code weekly} ISO weeks (UTC).</li>
 * </ul>
 * Epochs without a manifest (a crash during their snapshot) are never restorable and always go, unless newer
 * than every complete epoch (a snapshot in progress).
 */
public record RetentionPolicy(Duration window, int snapshots, int daily, int weekly) {

    /** The decision for one database. */
    public record Plan(List<Long> keepWhole, List<Long> keepSnapshotOnly, List<Long> dropWal, List<Long> dropEpoch) {
        public boolean isEmpty() {
            return dropWal.isEmpty() && dropEpoch.isEmpty();
        }
    }

    public Plan plan(DatabaseHistory h, Instant now) throws IOException, CorruptObjectException {
        List<Long> all = h.epochs();
        List<Long> complete = new ArrayList<>();
        List<Long> times = new ArrayList<>();
        for (long e : all) {
            if (h.hasManifest(e)) {
                complete.add(e);
                times.add(h.readManifest(e).createdMillis());
            }
        }
        Set<Long> whole = new HashSet<>();
        Set<Long> snapshot = new HashSet<>();
        long windowStart = now.toEpochMilli() - window.toMillis();
        int n = complete.size();
        for (int i = 0; i < n; i++) {
            boolean newest = i == n - 1;
            if (newest || times.get(i + 1) > windowStart) whole.add(complete.get(i));
            if (i >= n - snapshots) snapshot.add(complete.get(i));
        }
        keepNewestPer(complete, times, daily, t -> LocalDate.ofInstant(Instant.ofEpochMilli(t), ZoneOffset.UTC).toEpochDay(), snapshot);
        keepNewestPer(complete, times, weekly, t -> {
            LocalDate d = LocalDate.ofInstant(Instant.ofEpochMilli(t), ZoneOffset.UTC);
            return d.get(IsoFields.WEEK_BASED_YEAR) * 100L + d.get(IsoFields.WEEK_OF_WEEK_BASED_YEAR);
        }, snapshot);
        long newestComplete = complete.isEmpty() ? -1 : complete.get(n - 1);
        List<Long> keepWhole = new ArrayList<>();
        List<Long> keepSnap = new ArrayList<>();
        List<Long> dropWal = new ArrayList<>();
        List<Long> dropEpoch = new ArrayList<>();
        for (long e : all) {
            if (whole.contains(e)) {
                keepWhole.add(e);
            } else if (snapshot.contains(e)) {
                keepSnap.add(e);
                if (h.hasWalLog(e)) dropWal.add(e);
            } else if (!h.hasManifest(e) && e > newestComplete) {
                keepWhole.add(e); // a snapshot being taken right now
            } else {
                dropEpoch.add(e);
            }
        }
        return new Plan(keepWhole, keepSnap, dropWal, dropEpoch);
    }

    private static void keepNewestPer(List<Long> epochs, List<Long> times, int periods,
                                      java.util.function.LongUnaryOperator periodOf, Set<Long> keep) {
        if (periods <= 0) return;
        Set<Long> seen = new HashSet<>();
        for (int i = epochs.size() - 1; i >= 0; i--) {
            long p = periodOf.applyAsLong(times.get(i));
            if (seen.contains(p)) continue;
            if (seen.size() == periods) break;
            seen.add(p);
            keep.add(epochs.get(i)); // the newest snapshot of this period
        }
    }
}
