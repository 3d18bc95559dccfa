package io.duckguard.runtime.capture;

import io.duckguard.bootstrap.DuckGuardHooks;
import io.duckguard.runtime.DuckGuardRuntime;
import io.duckguard.runtime.config.AgentConfig;
import io.duckguard.runtime.crypto.MasterKey;
import io.duckguard.runtime.jmx.Jmx;
import io.duckguard.runtime.repository.Repository;
import io.duckguard.runtime.repository.RepositoryOpener;
import io.duckguard.runtime.util.Log;
import java.io.IOException;

/** Agent start-up: options, repository and key, the hook listener, JMX, the shutdown hook. Called once. */
public final class AgentLifecycle {
    private static volatile DatabaseRegistry registry;

    private AgentLifecycle() {}

    public static DatabaseRegistry registry() {
        return registry;
    }

    /** Retention and garbage collection every gc.interval on duckguard-gc; failures are logged, retried next time. */
    private static void startGarbageCollection(AgentConfig cfg, Repository repo) {
        io.duckguard.runtime.util.Threads.start("gc", () -> {
            io.duckguard.runtime.retention.GarbageCollector gc = new io.duckguard.runtime.retention.GarbageCollector(
                    repo, java.time.Duration.ofMinutes(15), Log::debug);
            while (true) {
                try {
                    Thread.sleep(cfg.gcInterval.toMillis());
                    gc.run(cfg.retention, false);
                } catch (InterruptedException e) {
                    return;
                } catch (Exception e) {
                    Log.warn("garbage collection failed (retried in " + cfg.gcInterval + "): " + e.getMessage());
                }
            }
        });
    }

    public static synchronized DuckGuardRuntime.Start start(String agentArgs, boolean attachedLater) {
        if (registry != null) return new DuckGuardRuntime.Start(true, false, "duckguard: already running");
        boolean required = AgentConfig.requiredRequested(agentArgs, System.getProperties(), System.getenv());
        String problem;
        String repoText = null;
        try {
            AgentConfig cfg = AgentConfig.parse(agentArgs, System.getProperties(), System.getenv());
            Log.setDebug(cfg.debug || Boolean.getBoolean("duckguard.debug"));
            repoText = cfg.repository.toString();
            Repository repo = RepositoryOpener.openOrCreateWith(cfg.repository, cfg.encrypted, cfg.keySource());
            DatabaseRegistry reg = new DatabaseRegistry(cfg, repo, name -> {
                if (cfg.jmx) Jmx.registerDatabase(name, registry);
            });
            registry = reg;
            if (cfg.jmx) Jmx.registerAgent(repoText, null, reg);
            DuckGuardHooks.install(reg);
            startGarbageCollection(cfg, repo);
            io.duckguard.runtime.repository.KeyAgeMonitor.start(repo, cfg.keysMaxAge);
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                DuckGuardHooks.markInternalThread();
                reg.shutdownAll();
            }, "duckguard-shutdown"));
            String msg = "duckguard: protecting DuckDB databases in " + cfg.mode.name().toLowerCase() + " mode -> "
                    + cfg.repository + (repo.codec().encrypted() ? " (encrypted)" : " (NOT encrypted: encryption=none)")
                    + (attachedLater ? " [attached to a running JVM]" : "");
            Log.info(msg.substring("duckguard: ".length()));
            return new DuckGuardRuntime.Start(true, false, msg);
        } catch (AgentConfig.ConfigException | MasterKey.KeyException | IOException | RuntimeException e) {
            problem = e.getMessage();
        }
        String msg = "duckguard: " + problem + (required ? " -- exiting because required=true"
                : " -- the application runs UNPROTECTED (no backup is taken)");
        Log.error(msg.substring("duckguard: ".length()), null);
        Jmx.registerAgent(repoText, problem, null);
        return new DuckGuardRuntime.Start(false, required, msg);
    }
}
