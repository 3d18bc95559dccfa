package io.duckguard.runtime.jmx;

/**
 * One protected database, as {@code io.duckguard:type=Database,name=<file name>}. Open types only, so any JMX
 * console (JConsole, VisualVM, jmxterm) shows it. Times are ISO-8601 strings, empty when it never happened.
 */
public interface DatabaseMXBean {
    boolean isHealthy();

    String getHealthReason();

    String getMode();

    String getDatabasePath();

    long getShippedLagMillis();

    long getUnshippedBytes();

    String getLastShippedCommitTime();

    long getRepositoryBytes();

    long getAgentErrors();

    long getCurrentEpoch();

    long getCommitsShipped();

    long getSyncTimeouts();

    String getLastSnapshotTime();

    long getSnapshotCount();

    long getCheckpointCount();

    double getSyncWaitMillisP99();

    /** Asks the agent to checkpoint (and so start a new epoch with a new snapshot) as soon as it can. */
    String checkpointNow();
}
