package io.duckguard.runtime.jmx;

/** The agent itself, as {@code io.duckguard:type=Agent}: is it protecting anything, and if not, why. */
public interface AgentMXBean {
    boolean isHealthy();

    String getHealthReason();

    String getRepository();

    String[] getDatabases();

    long getAdviceErrors();

    /** Age of the repository's current master key in days (-1: unencrypted); warned about after keys.max-age. */
    long getKeyAgeDays();

    /** The current master key id, and how many master keys are active (more than 1: a retire is pending). */
    String getKeyStatus();
}
