package io.duckguard.runtime.capture;

/** A point-in-time view of one protected database, for JMX and tests. Times are epoch millis (0 = never). */
public record DatabaseStatusView(String name, String path, boolean healthy, String healthReason, String mode,
                                 long shippedLagMillis, long unshippedBytes, long lastShippedCommitTime,
                                 long repositoryBytes, long agentErrors, long currentEpoch, long commitsShipped,
                                 long syncTimeouts, long lastSnapshotTime, long snapshotCount, long checkpointCount,
                                 double syncWaitMillisP99, double checkpointStallMillisP50,
                                 double checkpointStallMillisP99, double checkpointStallMillisMax) {}
