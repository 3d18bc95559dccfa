package io.duckguard.runtime.capture;

import java.util.ArrayDeque;

/**
 * When did each commit happen? App threads note (WAL size, now) right after a call that grew the WAL; the
 * shipper gives each commit it cuts the time of the first note at or beyond its end, so commit times come from
 * the moment the app's call returned, not from when shipping got to it. Bounded: old notes are dropped.
 */
final class CommitClock {
    private final ArrayDeque<long[]> notes = new ArrayDeque<>();
    private long maxNoted;

    /** App thread, after a call; cheap when the WAL did not grow. */
    void note(long walSize) {
        if (walSize <= maxNoted) return;
        long now = System.currentTimeMillis();
        synchronized (this) {
            if (walSize <= maxNoted) return;
            maxNoted = walSize;
            if (notes.size() >= 4096) notes.pollFirst();
            notes.addLast(new long[] {walSize, now});
        }
    }

    /** Shipper: the time of the commit ending at {@code end}; drops notes it no longer needs. */
    synchronized long timeOf(long end, long fallback) {
        while (!notes.isEmpty() && notes.peekFirst()[0] < end) notes.pollFirst();
        return notes.isEmpty() ? fallback : Math.min(notes.peekFirst()[1], fallback);
    }

    /** Oldest note not yet covered by {@code shippedTo}, or 0: the start of the current shipping lag. */
    synchronized long oldestPendingSince(long shippedTo) {
        for (long[] n : notes) if (n[0] > shippedTo) return n[1];
        return 0;
    }

    /** A new WAL file starts at offset 0. */
    synchronized void reset() {
        notes.clear();
        maxNoted = 0;
    }
}
