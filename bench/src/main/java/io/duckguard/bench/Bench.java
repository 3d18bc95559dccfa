package io.duckguard.bench;

import java.util.Map;

/**
 * Entry point of the {@code bench} Maven profile: runs one benchmark by name.
 *
 * <pre>
 *   mvn -B -ntp -q -Pbench -DskipTests -pl bench -am verify -Dbench=commit-latency
 *   mvn -B -ntp -q -Pbench -DskipTests -pl bench -am verify -Dbench=snapshot
 *   mvn -B -ntp -q -Pbench -DskipTests -pl bench -am verify -Dbench=crypto
 * </pre>
 *
 * Exit code 0 when the benchmark ran to the end (its aims are reported, never asserted), 1 when a run failed, 64 on
 * an unknown name.
 */
public final class Bench {
    private static final Map<String, String> BENCHMARKS = Map.of(
            "commit-latency", "CommitLatencyBench: commits/s and commit latency, no agent vs async vs sync",
            "snapshot", "SnapshotBench: snapshot/restore/PITR of a ~1 GB file vs cp, restic, borg, EXPORT; checkpoint stall",
            "crypto", "CryptoBench: seal throughput per core vs the disk, JDK vs BouncyCastle AES-GCM, key rotation keys/s");

    private Bench() {}

    public static void main(String[] args) throws Exception {
        String name = args.length > 0 ? args[0] : "commit-latency";
        int code;
        switch (name) {
            case "commit-latency" -> code = CommitLatencyBench.run(CommitLatencyBench.Settings.fromSystemProperties());
            case "snapshot" -> code = SnapshotBench.run(SnapshotBench.Settings.fromSystemProperties());
            case "crypto" -> code = CryptoBench.run();
            default -> {
                System.err.println("unknown benchmark '" + name + "'; known: " + BENCHMARKS);
                code = 64;
            }
        }
        System.exit(code);
    }
}
