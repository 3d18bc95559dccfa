package io.duckguard.runtime.jmx;

import io.duckguard.bootstrap.DuckGuardHooks;
import io.duckguard.runtime.capture.DatabaseRegistry;
import io.duckguard.runtime.capture.DatabaseStatusView;
import io.duckguard.runtime.util.Log;
import java.lang.management.ManagementFactory;
import io.duckguard.runtime.restore.RestorePoints;
import io.duckguard.runtime.restore.RestoreTarget;
import io.duckguard.runtime.restore.Restorer;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import javax.management.MBeanServer;
import javax.management.ObjectName;

/** Registers duckguard's MXBeans on the platform MBean server. Registration problems are logged, never thrown. */
public final class Jmx {
    private Jmx() {}

    public static void registerAgent(String repository, String problem, DatabaseRegistry registry) {
        register("io.duckguard:type=Agent", new AgentMXBean() {
            /** Unhealthy when start-up failed, or when the master key is older than keys.max-age (rotate it). */
            private String keyWarning() {
                try {
                    return registry == null ? null : registry.repository().keyStatus()
                            .warning(registry.config().keysMaxAge, registry.repository().root().toString());
                } catch (Exception e) {
                    return null;
                }
            }

            @Override
            public boolean isHealthy() {
                return problem == null && keyWarning() == null;
            }

            @Override
            public String getHealthReason() {
                String w = keyWarning();
                return problem != null ? problem : w != null ? w : "ok";
            }

            @Override
            public String getRepository() {
                return repository == null ? "" : repository;
            }

            @Override
            public String[] getDatabases() {
                return registry == null ? new String[0] : registry.names().toArray(new String[0]);
            }

            @Override
            public long getAdviceErrors() {
                return DuckGuardHooks.adviceErrors();
            }

            @Override
            public long getKeyAgeDays() {
                try {
                    return registry == null ? -1 : registry.repository().keyStatus().keyAgeDays();
                } catch (Exception e) {
                    return -1;
                }
            }

            @Override
            public String getKeyStatus() {
                try {
                    if (registry == null) return "";
                    io.duckguard.runtime.repository.KeyStatus ks = registry.repository().keyStatus();
                    String w = ks.warning(registry.config().keysMaxAge, registry.repository().root().toString());
                    return "current " + ks.currentKeyId() + " created " + ks.currentKeyCreated() + ", " + ks.activeKeys()
                            + " active" + (w == null ? "" : "; " + w);
                } catch (Exception e) {
                    return "unknown: " + e.getMessage();
                }
            }
        });
    }

    public static void registerDatabase(String name, DatabaseRegistry registry) {
        register("io.duckguard:type=Database,name=" + ObjectName.quote(name).replace("\"", ""), new DatabaseBean(name, registry));
    }

    private static void register(String objectName, Object bean) {
        try {
            MBeanServer s = ManagementFactory.getPlatformMBeanServer();
            ObjectName on = new ObjectName(objectName);
            if (s.isRegistered(on)) s.unregisterMBean(on);
            s.registerMBean(bean, on);
        } catch (Exception | LinkageError e) {
            Log.warn("JMX registration of " + objectName + " failed: " + e);
        }
    }

    static String iso(long millis) {
        return millis <= 0 ? "" : Instant.ofEpochMilli(millis).toString();
    }

    /** Reads live status through the registry, so it follows the database across close and reopen. */
    static final class DatabaseBean implements DatabaseMXBean {
        private final String name;
        private final DatabaseRegistry registry;

        DatabaseBean(String name, DatabaseRegistry registry) {
            this.name = name;
            this.registry = registry;
        }

        private DatabaseStatusView s() {
            DatabaseStatusView v = registry.status(name);
            return v != null ? v : new DatabaseStatusView(name, "", true, "closed by the app", "", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        }

        @Override public boolean isHealthy() { return s().healthy(); }
        @Override public String getHealthReason() { return s().healthReason(); }
        @Override public String getMode() { return s().mode(); }
        @Override public String getDatabasePath() { return s().path(); }
        @Override public long getShippedLagMillis() { return s().shippedLagMillis(); }
        @Override public long getUnshippedBytes() { return s().unshippedBytes(); }
        @Override public String getLastShippedCommitTime() { return iso(s().lastShippedCommitTime()); }
        @Override public long getRepositoryBytes() { return s().repositoryBytes(); }
        @Override public long getAgentErrors() { return s().agentErrors(); }
        @Override public long getCurrentEpoch() { return s().currentEpoch(); }
        @Override public long getCommitsShipped() { return s().commitsShipped(); }
        @Override public long getSyncTimeouts() { return s().syncTimeouts(); }
        @Override public String getLastSnapshotTime() { return iso(s().lastSnapshotTime()); }
        @Override public long getSnapshotCount() { return s().snapshotCount(); }
        @Override public long getCheckpointCount() { return s().checkpointCount(); }
        @Override public double getSyncWaitMillisP99() { return s().syncWaitMillisP99(); }

        @Override public double getCheckpointStallMillisP50() { return s().checkpointStallMillisP50(); }
        @Override public double getCheckpointStallMillisP99() { return s().checkpointStallMillisP99(); }
        @Override public double getCheckpointStallMillisMax() { return s().checkpointStallMillisMax(); }
        @Override public String getRestorableFrom() { return iso(range()[0]); }

        @Override
        public String getRestorableTo() {
            return iso(Math.max(range()[1], s().lastShippedCommitTime()));
        }

        private long[] rangeCache;
        private long rangeAt;

        /** Reading the history decrypts every WAL log: at most every 10 s. */
        private synchronized long[] range() {
            if (rangeCache == null || System.nanoTime() - rangeAt > 10_000_000_000L) {
                try {
                    rangeCache = RestorePoints.range(registry.repository().database(name));
                } catch (Exception e) {
                    rangeCache = new long[2];
                }
                rangeAt = System.nanoTime();
            }
            return rangeCache;
        }

        @Override
        public String[] listRestorePoints() {
            List<String> lines = new ArrayList<>();
            try {
                RestorePoints.describe(registry.repository().database(name), false, lines::add);
            } catch (Exception e) {
                lines.add("error: " + e.getMessage());
            }
            return lines.toArray(new String[0]);
        }

        @Override
        public String snapshotNow() {
            try {
                return "snapshot " + registry.snapshotNow(name, java.time.Duration.ofMinutes(1)) + " taken";
            } catch (Exception e) {
                return "failed: " + e.getMessage();
            }
        }

        @Override
        public String restoreTo(String target, String outputPath) {
            // The restore opens a scratch database with the app's DuckDB on this (JMX) thread: mark the thread
            // internal so the agent's own hooks do not take the scratch database for one of the app's.
            String[] result = new String[1];
            DuckGuardHooks.runInternal(() -> {
                try {
                    Restorer.Result r = new Restorer(registry.repository().database(name), Log::info)
                            .restore(RestoreTarget.parse(target), Path.of(outputPath), false, registry.appDriver(name));
                    result[0] = "restored epoch " + r.epoch() + " + " + r.commits() + " commits to " + r.output()
                            + " in " + r.millis() + " ms";
                } catch (Exception e) {
                    result[0] = "failed: " + e.getMessage();
                }
            });
            return result[0];
        }

        private Object[] drill() {
            Object[] d = registry.drillStatus(name);
            return d != null ? d : new Object[] {0L, "", ""};
        }

        @Override public String getLastDrillTime() { return iso((Long) drill()[0]); }
        @Override public String getLastDrillResult() { return (String) drill()[1]; }
        @Override public String getLastVerifiedRestorableCommit() { return (String) drill()[2]; }

        @Override
        public String drillNow() {
            return registry.drillNow(name) ? "drill requested" : "database " + name + " is not open";
        }

        @Override
        public String checkpointNow() {
            return registry.checkpointNow(name) ? "checkpoint requested" : "database " + name + " is not open";
        }
    }
}
