package io.duckguard.runtime.jmx;

/** The agent itself, as {@code io.duckguard:type=Agent}: is it protecting anything, and if not, why. */
public interface AgentMXBean {
    boolean isHealthy();

    String getHealthReason();

    String getRepository();

    String[] getDatabases();

    long getAdviceErrors();
}
