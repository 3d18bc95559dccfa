package io.duckguard.runtime.util;

import java.time.Duration;
import java.util.Locale;

/** Parses the human units used in options: durations (500ms, 1s, 5m, 2h, 90d) and sizes (64MB, 1GiB, 4096). */
public final class Durations {
    private Durations() {}

    public static Duration parseDuration(String s) {
        String v = s.trim().toLowerCase(Locale.ROOT);
        try {
            if (v.endsWith("ms")) return Duration.ofMillis(Long.parseLong(v.substring(0, v.length() - 2)));
            char unit = v.charAt(v.length() - 1);
            long n = Long.parseLong(v.substring(0, v.length() - 1));
            switch (unit) {
                case 's': return Duration.ofSeconds(n);
                case 'm': return Duration.ofMinutes(n);
                case 'h': return Duration.ofHours(n);
                case 'd': return Duration.ofDays(n);
                default: break;
            }
        } catch (RuntimeException e) {
            // fall through to the clear error below
        }
        throw new IllegalArgumentException("'" + s + "' is not a duration (use e.g. 500ms, 1s, 5m, 2h, 90d)");
    }

    public static long parseSize(String s) {
        String v = s.trim().toUpperCase(Locale.ROOT);
        long mul = 1;
        String[][] units = {{"KIB", "1024"}, {"MIB", "1048576"}, {"GIB", "1073741824"}, {"KB", "1000"},
            {"MB", "1000000"}, {"GB", "1000000000"}, {"B", "1"}};
        for (String[] u : units) {
            if (v.endsWith(u[0])) {
                mul = Long.parseLong(u[1]);
                v = v.substring(0, v.length() - u[0].length()).trim();
                break;
            }
        }
        try {
            long n = Long.parseLong(v);
            if (n >= 0) return n * mul;
        } catch (NumberFormatException e) {
            // fall through
        }
        throw new IllegalArgumentException("'" + s + "' is not a size (use e.g. 4096, 64MB, 1GiB)");
    }
}
