package io.duckguard.runtime;

/**
 * The runtime's front door, called reflectively by the agent's hidden installer (premain/agentmain) through
 * duckguard's own class loader. Kept tiny so that the agent module needs to know only these two methods.
 */
public final class DuckGuardRuntime {
    private DuckGuardRuntime() {}

    /**
     * Parses the agent options and starts protection; installs the {@link io.duckguard.bootstrap.HookListener}.
     * Never throws for bad options: it reports them and returns a failed start, so that the host keeps running
     * unprotected, unless the options said {@code required=true} (then {@link Start#exitJvm()} is true).
     *
     * @param agentArgs the raw {@code -javaagent:...=ARGS} / {@code JVMTI.agent_load} argument string (may be null)
     * @param attachedLater true when loaded into a running JVM (agentmain): connections may already be open
     */
    public static Start start(String agentArgs, boolean attachedLater) {
        return io.duckguard.runtime.capture.AgentLifecycle.start(agentArgs, attachedLater);
    }

    /** The CLI ({@code java -jar duckguard-agent.jar VERB ...}); returns the process exit code. */
    public static int cli(String[] args) {
        io.duckguard.runtime.crypto.NativeAesGcm.allowInThisProcess(); // this process is the CLI, not a host app
        return io.duckguard.runtime.cli.Cli.run(args);
    }

    /** Outcome of {@link #start}. */
    public record Start(boolean protecting, boolean exitJvm, String message) {}
}
