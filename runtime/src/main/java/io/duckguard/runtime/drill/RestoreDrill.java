package io.duckguard.runtime.drill;

import io.duckguard.runtime.crypto.CorruptObjectException;
import io.duckguard.runtime.repository.DatabaseHistory;
import io.duckguard.runtime.restore.DuckDbDriver;
import io.duckguard.runtime.restore.RestoreTarget;
import io.duckguard.runtime.restore.Restorer;
import io.duckguard.runtime.util.AtomicFiles;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.sql.Connection;
import java.time.Instant;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * A restore drill: proves the repository can restore, by doing it. Restores the point a live fingerprint was taken
 * at into a scratch directory, opens it, and compares its logical fingerprint with the live one. The fingerprint and
 * each result are kept in the repository ({@code databases/<db>/drills/}), sealed like every object.
 */
public final class RestoreDrill {
    /** One drill's outcome. */
    public record Result(long timeMillis, String target, boolean passed, String details, long millis) {
        public String line() {
            return (passed ? "PASS " : "FAIL ") + target + " at " + Instant.ofEpochMilli(timeMillis) + " in " + millis + " ms"
                    + (details.isEmpty() ? "" : ": " + details);
        }
    }

    private RestoreDrill() {}

    static Path dir(DatabaseHistory h) {
        return h.repository().root().resolve("databases").resolve(h.name()).resolve("drills");
    }

    private static String objectName(DatabaseHistory h, String file) {
        return "databases/" + h.name() + "/drills/" + file;
    }

    /** Keeps the fingerprint the next drill will check against (replacing the previous one). */
    public static void storeFingerprint(DatabaseHistory h, Fingerprint f) throws IOException {
        AtomicFiles.write(dir(h).resolve("fingerprint"), h.repository().codec().seal(f.encode(), objectName(h, "fingerprint")));
    }

    public static Fingerprint loadFingerprint(DatabaseHistory h) throws IOException, CorruptObjectException {
        try {
            byte[] b = Files.readAllBytes(dir(h).resolve("fingerprint"));
            return Fingerprint.decode(h.repository().codec().open(b, objectName(h, "fingerprint")));
        } catch (NoSuchFileException e) {
            throw new IOException("no live fingerprint recorded yet for " + h.name()
                    + ": the agent records one when it runs a drill (JMX drillNow, or every drill.interval)");
        }
    }

    /** Restores the fingerprint's point into {@code scratchParent}, compares, records and returns the result. */
    public static Result run(DatabaseHistory h, Fingerprint expected, DuckDbDriver duckdb, Path scratchParent) throws IOException {
        return run(h, expected, duckdb, scratchParent, 0);
    }

    /** {@link #run} reading the repository at most {@code maxBytesPerSecond} (0 = unlimited): bounded I/O beside a live app. */
    public static Result run(DatabaseHistory h, Fingerprint expected, DuckDbDriver duckdb, Path scratchParent,
                             long maxBytesPerSecond) throws IOException {
        long t0 = System.nanoTime();
        String target = expected.commits() == 0 ? "snapshot:" + expected.epoch() : "commit:" + expected.epoch() + "." + expected.commits();
        Result r;
        Files.createDirectories(scratchParent);
        Path scratch = Files.createTempDirectory(scratchParent, ".duckguard-drill-");
        try {
            Path out = scratch.resolve(h.name());
            new Restorer(h, m -> { }).withMaxBytesPerSecond(maxBytesPerSecond)
                    .restore(RestoreTarget.parse(target), out, false, duckdb);
            Map<String, String> got;
            try (Connection c = duckdb.connect(out)) {
                got = Fingerprint.tablesOf(c);
            }
            List<String> diff = expected.differences(got);
            r = new Result(System.currentTimeMillis(), target, diff.isEmpty(),
                    diff.isEmpty() ? expected.tables().size() + " tables match" : String.join("; ", diff),
                    (System.nanoTime() - t0) / 1_000_000);
        } catch (Exception e) {
            r = new Result(System.currentTimeMillis(), target, false, e.getMessage() == null ? e.toString() : e.getMessage(),
                    (System.nanoTime() - t0) / 1_000_000);
        } finally {
            try (Stream<Path> s = Files.walk(scratch)) {
                s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
        String file = "result-" + r.timeMillis();
        AtomicFiles.write(dir(h).resolve(file), h.repository().codec().seal(r.line().getBytes(StandardCharsets.UTF_8), objectName(h, file)));
        return r;
    }
}
