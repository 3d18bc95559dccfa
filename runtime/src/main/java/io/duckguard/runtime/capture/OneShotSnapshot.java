package io.duckguard.runtime.capture;

import io.duckguard.runtime.config.AgentConfig;
import io.duckguard.runtime.repository.Repository;
import io.duckguard.runtime.restore.DuckDbDriver;
import java.nio.file.Path;
import java.sql.Connection;
import java.time.Duration;
import java.util.Map;
import java.util.Properties;
import java.util.function.Consumer;

/**
 * The CLI's {@code snapshot} verb: opens the (stopped) app's database file itself and runs exactly what the agent
 * runs on open: reconcile with the repository (shipping a WAL the app left behind), then an agent checkpoint and
 * the snapshot that opens the next epoch.
 */
public final class OneShotSnapshot {
    private OneShotSnapshot() {}

    public static long take(Repository repo, Path keyFile, Path dbFile, DuckDbDriver duckdb, Consumer<String> progress)
            throws Exception {
        AgentConfig cfg = AgentConfig.parse("repository=" + repo.root() + ",mode=sync,checkpoint.interval=1h,jmx=false"
                + (repo.codec().encrypted() ? "" : ",encryption=none"), new Properties(), Map.of());
        DatabaseRegistry reg = new DatabaseRegistry(cfg, repo, n -> { });
        String url = "jdbc:duckdb:" + dbFile;
        try (Connection c = duckdb.connect(dbFile)) {
            reg.connectionOpened(c, url, false);
            ProtectedDatabase pd = reg.get(dbFile.getFileName().toString());
            if (pd == null) throw new IllegalStateException(reg.status(dbFile.getFileName().toString()).healthReason());
            progress.accept("shipping what the app left, then checkpointing " + dbFile);
            long epoch = pd.checkpointAndWait(Duration.ofMinutes(10));
            reg.connectionClosed(c);
            return epoch;
        }
    }
}
