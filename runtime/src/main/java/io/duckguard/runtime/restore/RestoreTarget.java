package io.duckguard.runtime.restore;

import java.time.Instant;
import java.time.format.DateTimeParseException;

/**
 * What to restore to: {@code latest}; {@code snapshot:<epoch>} (the state right after checkpoint epoch);
 * {@code commit:<epoch>.<n>} (after the n-th commit of that epoch; n = 0 is the snapshot); or an ISO-8601
 * instant (the last commit at or before it).
 */
public record RestoreTarget(Kind kind, long epoch, long commit, Instant time) {
    public enum Kind { LATEST, SNAPSHOT, COMMIT, TIME }

    public static RestoreTarget parse(String s) {
        String v = s.trim();
        try {
            if (v.equalsIgnoreCase("latest")) return new RestoreTarget(Kind.LATEST, -1, -1, null);
            if (v.startsWith("snapshot:")) {
                return new RestoreTarget(Kind.SNAPSHOT, Long.parseLong(v.substring(9)), 0, null);
            }
            if (v.startsWith("commit:")) {
                String[] p = v.substring(7).split("\\.");
                if (p.length == 2) return new RestoreTarget(Kind.COMMIT, Long.parseLong(p[0]), Long.parseLong(p[1]), null);
            } else {
                return new RestoreTarget(Kind.TIME, -1, -1, Instant.parse(v));
            }
        } catch (NumberFormatException | DateTimeParseException e) {
            // fall through to the clear error
        }
        throw new IllegalArgumentException("'" + s + "' is not a restore target; use latest, snapshot:<epoch>, "
                + "commit:<epoch>.<n> or an ISO-8601 instant such as 2026-11-26T14:03:07.250Z");
    }

    @Override
    public String toString() {
        return switch (kind) {
            case LATEST -> "latest";
            case SNAPSHOT -> "snapshot:" + epoch;
            case COMMIT -> "commit:" + epoch + "." + commit;
            case TIME -> time.toString();
        };
    }
}
