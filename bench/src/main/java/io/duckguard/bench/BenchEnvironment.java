package io.duckguard.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** What every benchmark report states about the machine it ran on (shared by the benchmarks). */
final class BenchEnvironment {
    private BenchEnvironment() {}

    static String loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
            return f[0] + " / " + f[1] + " / " + f[2];
        } catch (IOException | RuntimeException e) {
            return "n/a";
        }
    }
    /**
     * CPU time the hypervisor gave to other guests while this VM wanted it (steal, /proc/stat, all CPUs), in
     * seconds, or -1 where it cannot be read. On these VMs it comes in bursts: a delta per timed step says whether
     * that step ran on the cores it was measured on.
     */
    static double stealSeconds() {
        try {
            String[] f = Files.readAllLines(Path.of("/proc/stat")).get(0).trim().split("\\s+");
            return Long.parseLong(f[8]) / 100.0; // USER_HZ
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    static String cpuModel() {
        try {
            return Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("model name"))
                    .map(l -> l.substring(l.indexOf(':') + 1).trim()).findFirst().orElse("cpu model n/a");
        } catch (IOException | RuntimeException e) {
            return "cpu model n/a";
        }
    }
    static String fileStore(Path p) {
        try {
            var fs = Files.getFileStore(p);
            return fs.type() + " (" + fs.name() + ")";
        } catch (IOException | RuntimeException e) {
            return "n/a";
        }
    }
    static Path projectRoot() {
        Path here = Path.of("").toAbsolutePath();
        return here.getFileName() != null && here.getFileName().toString().equals("bench") ? here.getParent() : here;
    }
}
