package io.duckguard.runtime.restore;

import io.duckguard.runtime.crypto.CorruptObjectException;
import io.duckguard.runtime.repository.CommitMark;
import io.duckguard.runtime.repository.DatabaseHistory;
import io.duckguard.runtime.repository.Manifest;
import io.duckguard.runtime.repository.WalLog;
import io.duckguard.runtime.repository.WalRecord;
import java.io.IOException;
import java.time.Instant;
import java.util.Properties;
import java.util.function.Consumer;

/** Describes what a database's history can restore: for the CLI's {@code list} and the JMX listRestorePoints. */
public final class RestorePoints {
    private RestorePoints() {}

    /** The continuous restorable range [oldest snapshot, newest commit or snapshot], epoch millis; {0,0} if none. */
    public static long[] range(DatabaseHistory h) throws IOException {
        long from = 0;
        long to = 0;
        for (long e : h.epochs()) {
            if (!h.hasManifest(e)) continue;
            try {
                Manifest m = h.readManifest(e);
                if (from == 0) from = m.createdMillis();
                to = Math.max(to, m.createdMillis());
                if (h.hasWalLog(e)) to = Math.max(to, lastCommitTime(h.readWalLog(e)));
            } catch (CorruptObjectException ex) {
                // a damaged epoch is not restorable; verify reports it
            }
        }
        return new long[] {from, to};
    }

    /** One line per epoch (and per commit with {@code commits}), then the restorable range. */
    public static void describe(DatabaseHistory h, boolean commits, Consumer<String> out) throws IOException {
        Properties info = h.info();
        out.accept(String.format("database %s  (from %s, DuckDB %s)", h.name(), info.getProperty("source-path"),
                info.getProperty("duckdb-version")));
        for (long e : h.epochs()) {
            if (!h.hasManifest(e)) {
                out.accept(String.format("  epoch %d: incomplete snapshot (not restorable)", e));
                continue;
            }
            try {
                Manifest m = h.readManifest(e);
                WalLog.Contents c = h.hasWalLog(e) ? h.readWalLog(e) : null;
                long last = lastCommitTime(c);
                out.accept(String.format("  epoch %d: snapshot:%d %s (%s, %.1f MB), %s%s", e, e,
                        Instant.ofEpochMilli(m.createdMillis()), m.reason(), m.fileSize() / 1e6,
                        c == null ? "WAL removed by retention (snapshot only)" : c.commitCount() + " commits",
                        last > 0 ? ", last " + Instant.ofEpochMilli(last) : ""));
                if (commits && c != null) {
                    int i = 0;
                    for (WalRecord rec : c.records()) {
                        for (CommitMark cm : rec.commits()) {
                            out.accept(String.format("    commit:%d.%d  %s", e, ++i, Instant.ofEpochMilli(cm.timeMillis())));
                        }
                    }
                }
            } catch (CorruptObjectException ex) {
                out.accept(String.format("  epoch %d: DAMAGED: %s", e, ex.getMessage()));
            }
        }
        long[] r = range(h);
        if (r[0] > 0) out.accept(String.format("  restorable: %s .. %s", Instant.ofEpochMilli(r[0]), Instant.ofEpochMilli(r[1])));
    }

    static long lastCommitTime(WalLog.Contents c) {
        if (c == null) return 0;
        long t = 0;
        for (WalRecord rec : c.records()) for (CommitMark cm : rec.commits()) t = Math.max(t, cm.timeMillis());
        return t;
    }
}
