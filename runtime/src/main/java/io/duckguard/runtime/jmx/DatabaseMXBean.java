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

    double getCheckpointStallMillisP50();

    double getCheckpointStallMillisP99();

    double getCheckpointStallMillisMax();

    /** The oldest restorable moment (the oldest snapshot retained). */
    String getRestorableFrom();

    /** The newest restorable moment (the last shipped commit). */
    String getRestorableTo();

    /** Every snapshot and the restorable range, one line each (as the CLI's list). */
    String[] listRestorePoints();

    /** Checkpoint now and wait (up to a minute) for the snapshot that opens the next epoch. */
    String snapshotNow();

    /**
     * Restores into a new file from inside the running app (the app's database is not touched): target is latest,
     * snapshot:E, commit:E.N or an ISO-8601 instant. Returns what was restored, or the error.
     */
    String restoreTo(String target, String outputPath);

    String getLastDrillTime();

    /** PASS/FAIL, the restore point, and what differed (or the error naming the damaged object). */
    String getLastDrillResult();

    /** The newest restore point a drill restored and found identical to the live database. */
    String getLastVerifiedRestorableCommit();

    /** Runs a restore drill now (in the background); read LastDrillResult afterwards. */
    String drillNow();

    /** Asks the agent to checkpoint (and so start a new epoch with a new snapshot) as soon as it can. */
    String checkpointNow();
}
