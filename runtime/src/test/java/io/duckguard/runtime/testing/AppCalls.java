package io.duckguard.runtime.testing;

import io.duckguard.runtime.capture.DatabaseRegistry;
import io.duckguard.runtime.config.AgentConfig;
import io.duckguard.runtime.repository.Repository;
import io.duckguard.runtime.repository.RepositoryOpener;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.Map;
import java.util.Properties;

/**
 * The test plays the agent's advice: every JDBC call of the "app" goes through the registry's hook methods, as the
 * Byte Buddy advice does in a real host, so the runtime can be exercised in one JVM.
 */
public final class AppCalls {
    private AppCalls() {}

    /**
     * The agent's runtime in this JVM on a repository (created if missing): sync mode, no timed checkpoints, no JMX,
     * then {@code options} (",k=v..."). {@code keyFile} null = an unencrypted repository (pass encryption=none).
     */
    public static DatabaseRegistry agent(Path repository, Path keyFile, String options) throws Exception {
        AgentConfig cfg = AgentConfig.parse("repository=" + repository + (keyFile == null ? "" : ",key-file=" + keyFile)
                + ",mode=sync,checkpoint.interval=1h,jmx=false" + options, new Properties(), Map.of());
        Repository repo = RepositoryOpener.openOrCreate(cfg.repository, cfg.encrypted, cfg.keyFile);
        return new DatabaseRegistry(cfg, repo, n -> { });
    }

    /**
     * Restores "latest" of {@code database} from {@code repository} to {@code out} as the CLI would, with the class
     * path's DuckDB (the test dependency).
     */
    public static io.duckguard.runtime.restore.Restorer.Result restoreLatest(Path repository, Path keyFile, String database,
                                                                          Path out) throws Exception {
        return new io.duckguard.runtime.restore.Restorer(RepositoryOpener.openExisting(repository, keyFile).database(database),
                m -> { }).restore(io.duckguard.runtime.restore.RestoreTarget.parse("latest"), out, false,
                io.duckguard.runtime.restore.DuckDbDriver.find(null, null, null));
    }

    /** Executes one statement as an app would, between beforeCall and afterCall. */
    public static void exec(DatabaseRegistry reg, Connection c, String sql) throws Exception {
        reg.beforeCall(c);
        try (Statement s = c.createStatement()) {
            s.execute(sql);
        } finally {
            reg.afterCall(c);
        }
    }

    /** The first column of the first row of {@code sql}, as a long. */
    public static long count(Connection c, String sql) throws Exception {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        }
    }
}
