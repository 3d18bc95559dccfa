package io.duckguard.it.harness;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Checks the order of a process's file-system calls under a directory against invariant 5 (tmp -> fsync -> rename
 * -> fsync directory), from an strace of the real process. A kill -9 cannot catch a missing fsync (the page cache
 * survives the process); the order of the system calls can. The rules, for paths under the directory:
 * <ol>
 *   <li>a file is renamed only after an fsync/fdatasync that began after its last write had ended;</li>
 *   <li>every rename, mkdir, and file created under its final name (not a {@code .tmp-} file) is followed by an
 *       fsync of the parent directory;</li>
 *   <li>every file written and not renamed away (an append-only WAL log) is synced after its last write, unless it
 *       was opened with O_SYNC or O_DSYNC.</li>
 * </ol>
 * Run a child under {@link #prefix}, then {@link #check} on the trace file ({@link #checkSyncCommits} for invariant
 * 1 in sync mode). Needs strace (Debian's) and ptrace, see {@link #available}.
 */
public final class FsyncTrace {
    private static final String CALLS = "write,pwrite64,pwritev,writev,ftruncate,fsync,fdatasync,rename,renameat,"
            + "renameat2,mkdir,mkdirat,openat";

    private FsyncTrace() {}

    /** Whether strace can trace a child here as {@link #prefix} asks (installed, ptrace allowed, seccomp-bpf). */
    public static boolean available() {
        try {
            List<String> cmd = new ArrayList<>(prefix(Path.of("/dev/null")));
            cmd.add("true");
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** The command a child runs under so that its file-system calls land in {@code traceFile}. */
    public static List<String> prefix(Path traceFile) {
        // -y: paths of descriptors; --seccomp-bpf: only the traced calls stop the process (a JVM makes many more).
        return List.of("strace", "-f", "-y", "-qq", "--seccomp-bpf", "-s", "0", "-e", "trace=" + CALLS, "-o",
                traceFile.toAbsolutePath().toString(), "--");
    }

    /** What the trace saw under {@code root}, for "the test exercised something" checks. */
    public record Summary(int renames, int syncs, int writes, List<String> violations) {}

    public static Summary check(Path traceFile, Path root) throws IOException {
        return check(Files.readAllLines(traceFile, StandardCharsets.UTF_8), root.toAbsolutePath().normalize().toString());
    }

    private record Call(String pid, String name, String args, long ret, int start, int end) {}

    private record Sync(int start, int end) {}

    private static final Pattern LINE = Pattern.compile("^(\\d+)\\s+(.*)$");
    private static final Pattern UNFINISHED = Pattern.compile("^(\\w+)\\((.*) <unfinished \\.\\.\\.>$");
    private static final Pattern RESUMED = Pattern.compile("^<\\.\\.\\. (\\w+) resumed>(.*)\\)\\s+= (-?\\d+).*$");
    private static final Pattern COMPLETE = Pattern.compile("^(\\w+)\\((.*)\\)\\s+= (-?\\d+).*$");
    private static final Pattern FD_PATH = Pattern.compile("^\\d+<([^>]*)>");
    private static final Pattern QUOTED = Pattern.compile("\"([^\"]*)\"");

    /** The rules above over strace output lines (public for the checker's own tests). */
    public static Summary check(List<String> lines, String root) {
        return rules(parse(lines), root);
    }

    /** Acknowledged commits checked by {@link #checkSyncCommits}, and those acknowledged too early. */
    /**
     * {@code overlapping}: acknowledgements whose only qualifying record was written while strace still showed the
     * commit's WAL write as running (see {@link #checkSyncCommits}); not violations, but a caller should bound them.
     */
    public record Acks(int checked, List<String> violations, int overlapping) {}

    public static Acks checkSyncCommits(Path traceFile, Path dbWal, Path ackLog, Path repo) throws IOException {
        return checkSyncCommits(Files.readAllLines(traceFile, StandardCharsets.UTF_8), dbWal.toAbsolutePath().toString(),
                ackLog.toAbsolutePath().toString(), repo.toAbsolutePath().normalize().toString());
    }

    /**
     * Invariant 1 in sync mode, from the app's side: a thread that wrote a commit to DuckDB's WAL and then writes
     * its acknowledgement (the host's ack log, written only after the committing call returned) must have seen,
     * in between, the agent write a record to the repository's WAL log and that write synced (fsync/fdatasync
     * begun after the write ended, ended before the acknowledgement). An acknowledgement whose thread wrote no
     * WAL since its previous one (a rollback) is not checked. Necessary, not sufficient (the record is not tied
     * to the commit): a missing or late fdatasync in the shipping path fails it.
     *
     * <p>strace logs a system call's end when the tracer gets to it, which can be after other threads' later calls:
     * a commit's bytes are in the page cache, and the shipper may read and store them, before the trace shows the
     * write as ended (seen once in ~10 runs: the record written 4 lines before the write's logged end). A record
     * begun after the write began, synced before the acknowledgement, is therefore counted as {@code overlapping},
     * not as a violation. An agent that did not wait would leave most acknowledgements without any such record.
     */
    public static Acks checkSyncCommits(List<String> lines, String dbWal, String ackLog, String repoRoot) {
        List<Call> calls = parse(lines);
        List<Call> logWrites = new ArrayList<>(); // writes to the repository's WAL logs
        Map<String, List<Sync>> syncs = new HashMap<>();
        for (Call c : calls) {
            if (c.ret() < 0) continue;
            String p = fdPath(c.args());
            if (p == null || !under(p, repoRoot) || !p.endsWith("/wal")) continue;
            if (c.name().startsWith("write") || c.name().startsWith("pwrite")) logWrites.add(c);
            if (c.name().equals("fsync") || c.name().equals("fdatasync")) {
                syncs.computeIfAbsent(p, k -> new ArrayList<>()).add(new Sync(c.start(), c.end()));
            }
        }
        Map<String, Integer> lastWalWrite = new HashMap<>(); // thread -> end of its last DuckDB WAL write
        Map<String, Integer> lastWalWriteStart = new HashMap<>();
        Map<String, Integer> lastAck = new HashMap<>();
        int checked = 0, overlapping = 0;
        List<String> violations = new ArrayList<>();
        for (Call c : calls) {
            if (c.ret() < 0 || !(c.name().startsWith("write") || c.name().startsWith("pwrite"))) continue;
            String p = fdPath(c.args());
            if (p == null) continue;
            if (p.equals(dbWal) || p.equals(dbWal + ".checkpoint")) {
                lastWalWrite.put(c.pid(), c.end());
                lastWalWriteStart.put(c.pid(), c.start());
            } else if (p.equals(ackLog)) {
                int wrote = lastWalWrite.getOrDefault(c.pid(), -1);
                int before = lastAck.getOrDefault(c.pid(), -1);
                lastAck.put(c.pid(), c.start());
                if (wrote < 0 || wrote < before) continue;
                checked++;
                int ack = c.start();
                if (syncedRecord(logWrites, syncs, wrote, ack)) continue;
                if (syncedRecord(logWrites, syncs, lastWalWriteStart.get(c.pid()), ack)) {
                    overlapping++;
                } else {
                    violations.add("thread " + c.pid() + " acknowledged a commit (trace line " + (ack + 1) + ") whose WAL "
                            + "write ended at line " + (wrote + 1) + " without a synced repository WAL-log record in between");
                }
            }
        }
        return new Acks(checked, violations, overlapping);
    }

    /** Whether a record write began after line {@code after}, and an fsync of its file after it, ending before {@code ack}. */
    private static boolean syncedRecord(List<Call> logWrites, Map<String, List<Sync>> syncs, int after, int ack) {
        return logWrites.stream().anyMatch(w -> w.start() > after && w.end() < ack
                && syncs.getOrDefault(fdPath(w.args()), List.of()).stream()
                        .anyMatch(s -> s.start() > w.end() && s.end() < ack));
    }

    private static List<Call> parse(List<String> lines) {
        List<Call> calls = new ArrayList<>();
        Map<String, String[]> pending = new HashMap<>(); // pid -> {name, args, start}
        for (int i = 0; i < lines.size(); i++) {
            Matcher l = LINE.matcher(lines.get(i));
            if (!l.matches()) continue;
            String pid = l.group(1), rest = l.group(2);
            Matcher m;
            if ((m = UNFINISHED.matcher(rest)).matches()) {
                pending.put(pid, new String[] {m.group(1), m.group(2), Integer.toString(i)});
            } else if ((m = RESUMED.matcher(rest)).matches()) {
                String[] p = pending.remove(pid);
                if (p != null && p[0].equals(m.group(1))) {
                    calls.add(new Call(pid, p[0], p[1] + m.group(2), Long.parseLong(m.group(3)), Integer.parseInt(p[2]), i));
                }
            } else if ((m = COMPLETE.matcher(rest)).matches()) {
                calls.add(new Call(pid, m.group(1), m.group(2), Long.parseLong(m.group(3)), i, i));
            }
        }
        return calls;
    }

    private static Summary rules(List<Call> calls, String root) {
        Map<String, List<Integer>> writes = new HashMap<>(); // path -> ends of writes
        Map<String, List<Sync>> syncs = new HashMap<>();
        List<String[]> renames = new ArrayList<>(); // {src, dst, start, end}
        List<Object[]> newNames = new ArrayList<>(); // {path, end, what}
        Set<String> syncWrites = new HashSet<>(); // opened O_SYNC/O_DSYNC: every write is durable when it returns
        for (Call c : calls) {
            if (c.ret() < 0) continue;
            switch (c.name()) {
                case "write", "pwrite64", "pwritev", "writev", "ftruncate" -> { // a truncation changes the file too
                    String p = fdPath(c.args());
                    if (p != null) writes.computeIfAbsent(p, k -> new ArrayList<>()).add(c.end());
                }
                case "fsync", "fdatasync" -> {
                    String p = fdPath(c.args());
                    if (p != null) syncs.computeIfAbsent(p, k -> new ArrayList<>()).add(new Sync(c.start(), c.end()));
                }
                case "rename", "renameat", "renameat2" -> {
                    List<String> q = quoted(c.args());
                    if (q.size() >= 2) renames.add(new String[] {q.get(0), q.get(1), Integer.toString(c.start()), Integer.toString(c.end())});
                }
                case "mkdir", "mkdirat" -> {
                    List<String> q = quoted(c.args());
                    if (!q.isEmpty()) newNames.add(new Object[] {q.get(0), c.end(), "directory created"});
                }
                case "openat" -> {
                    List<String> q = quoted(c.args());
                    if (!q.isEmpty() && (c.args().contains("O_SYNC") || c.args().contains("O_DSYNC"))) syncWrites.add(q.get(0));
                    if (!q.isEmpty() && c.args().contains("O_CREAT") && c.args().contains("O_EXCL") && !q.get(0).contains(".tmp-")) {
                        newNames.add(new Object[] {q.get(0), c.end(), "file created"});
                    }
                }
                default -> { }
            }
        }
        List<String> violations = new ArrayList<>();
        Set<String> renamedAway = new HashSet<>();
        int renameCount = 0;
        for (String[] r : renames) {
            String src = r[0], dst = r[1];
            int start = Integer.parseInt(r[2]), end = Integer.parseInt(r[3]);
            if (!under(dst, root)) continue;
            renameCount++;
            renamedAway.add(src);
            int lastWrite = syncWrites.contains(src) ? -1
                    : writes.getOrDefault(src, List.of()).stream().filter(w -> w < start).max(Integer::compare).orElse(-1);
            boolean synced = lastWrite < 0 || syncs.getOrDefault(src, List.of()).stream()
                    .anyMatch(s -> s.start() > lastWrite && s.end() < start);
            if (!synced) violations.add("renamed before it was fsynced: " + src + " -> " + dst + " (trace line " + (start + 1) + ")");
            newNames.add(new Object[] {dst, end, "renamed into place"});
        }
        for (Object[] n : newNames) {
            String path = (String) n[0];
            int end = (Integer) n[1];
            if (!under(path, root)) continue;
            String parent = parent(path);
            boolean dirSynced = syncs.getOrDefault(parent, List.of()).stream().anyMatch(s -> s.start() > end);
            if (!dirSynced) {
                violations.add(n[2] + " but its directory was never fsynced after: " + path + " (trace line " + (end + 1) + ")");
            }
        }
        int writeCount = 0;
        for (Map.Entry<String, List<Integer>> w : writes.entrySet()) {
            if (!under(w.getKey(), root)) continue;
            writeCount += w.getValue().size();
            if (renamedAway.contains(w.getKey()) || syncWrites.contains(w.getKey())) continue;
            int lastWrite = w.getValue().stream().max(Integer::compare).orElseThrow();
            boolean synced = syncs.getOrDefault(w.getKey(), List.of()).stream().anyMatch(s -> s.start() > lastWrite);
            if (!synced) violations.add("written and never fsynced after: " + w.getKey() + " (trace line " + (lastWrite + 1) + ")");
        }
        int syncCount = 0;
        for (Map.Entry<String, List<Sync>> e : syncs.entrySet()) if (under(e.getKey(), root)) syncCount += e.getValue().size();
        return new Summary(renameCount, syncCount, writeCount, violations);
    }

    private static String fdPath(String args) {
        Matcher m = FD_PATH.matcher(args.trim());
        return m.find() ? m.group(1) : null;
    }

    private static List<String> quoted(String args) {
        List<String> out = new ArrayList<>();
        Matcher m = QUOTED.matcher(args);
        while (m.find()) out.add(m.group(1));
        return out;
    }

    private static boolean under(String path, String root) {
        return path.equals(root) || path.startsWith(root + "/");
    }

    private static String parent(String path) {
        int i = path.lastIndexOf('/');
        return i <= 0 ? "/" : path.substring(0, i);
    }
}
