package io.duckguard.runtime.jmx;

import io.duckguard.bootstrap.DuckGuardHooks;
import io.duckguard.runtime.capture.DatabaseRegistry;
import io.duckguard.runtime.capture.DatabaseStatusView;
import io.duckguard.runtime.util.Log;
import java.lang.management.ManagementFactory;
import java.time.Instant;
import javax.management.MBeanServer;
import javax.management.ObjectName;

/** Registers duckguard's MXBeans on the platform MBean server. Registration problems are logged, never thrown. */
public final class Jmx {
    private Jmx() {}

    public static void registerAgent(String repository, String problem, DatabaseRegistry registry) {
        register("io.duckguard:type=Agent", new AgentMXBean() {
            @Override
            public boolean isHealthy() {
                return problem == null;
            }

            @Override
            public String getHealthReason() {
                return problem == null ? "ok" : problem;
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
            return v != null ? v : new DatabaseStatusView(name, "", true, "closed by the app", "", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
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

        @Override
        public String checkpointNow() {
            return registry.checkpointNow(name) ? "checkpoint requested" : "database " + name + " is not open";
        }
    }
}
