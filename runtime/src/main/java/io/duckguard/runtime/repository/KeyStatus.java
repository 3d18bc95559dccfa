package io.duckguard.runtime.repository;

import java.time.Duration;
import java.time.Instant;

/**
 * The state of a repository's master keys, for JMX (KeyAgeDays) and the age warning. Computed afresh from
 * repository.properties by {@link Repository#keyStatus()}, so a rotation done by the CLI shows at once.
 *
 * @param encrypted false for an {@code encryption=none} repository (then the other fields are empty / -1)
 * @param currentKeyId the current master key (the newest completed rotation)
 * @param currentKeyCreated when it was added
 * @param keyAgeDays whole days since then (-1 when unknown)
 * @param openedWithKeyId the master key this process opened the repository with
 * @param activeKeys master keys that data keys are still wrapped for (more than one: a retire is pending)
 */
public record KeyStatus(boolean encrypted, String currentKeyId, Instant currentKeyCreated, long keyAgeDays,
                        String openedWithKeyId, int activeKeys) {
    static final KeyStatus NONE = new KeyStatus(false, "", null, -1, "", 0);

    /** Whether the current master key is older than {@code maxAge} (never for an unencrypted repository). */
    public boolean exceeds(Duration maxAge) {
        return encrypted && currentKeyCreated != null
                && Duration.between(currentKeyCreated, Instant.now()).compareTo(maxAge) > 0;
    }

    /** The operator's warning when {@link #exceeds}, else null. */
    public String warning(Duration maxAge, String repository) {
        if (!exceeds(maxAge)) return null;
        return "the master key " + currentKeyId + " of repository " + repository + " is " + keyAgeDays + " days old"
                + " (keys.max-age=" + maxAge.toDays() + "d): rotate it with `java -jar duckguard-agent.jar keys rotate"
                + " --repository " + repository + " --key-file OLD --new-key-file NEW`, point the agent at the new key,"
                + " then retire the old one (`keys retire`)";
    }
}
