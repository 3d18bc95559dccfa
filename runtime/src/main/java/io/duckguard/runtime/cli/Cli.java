package io.duckguard.runtime.cli;

import io.duckguard.runtime.repository.DatabaseHistory;
import io.duckguard.runtime.repository.Repository;
import io.duckguard.runtime.repository.RepositoryOpener;
import io.duckguard.runtime.restore.DuckDbDriver;
import io.duckguard.runtime.restore.RestoreTarget;
import io.duckguard.runtime.restore.RestorePoints;
import io.duckguard.runtime.restore.Restorer;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code java -jar duckguard-agent.jar VERB ...}: operations on a repository while the app is stopped (or from
 * another machine). Exit codes: 0 done, 1 the operation failed (one line on stderr says what and what to do),
 * 2 bad usage. The options are declared with picocli, which gives every verb {@code --help} and clear usage
 * errors; a well-formed line is bound by {@link FastArgs} from the same declarations without building picocli's
 * model (0.15-0.19 s of a cold JVM), and picocli parses everything else.
 */
@Command(name = "duckguard", mixinStandardHelpOptions = true, version = "duckguard 0.1",
        description = "Continuous, encrypted, point-in-time backup of DuckDB databases.")
public final class Cli implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** For running the CLI from a class path (development, tests); the agent jar's Main-Class calls {@link #run}. */
    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Progress lines of a long operation, printed as they come (flushed: a pipe must not hold them back). */
    static java.util.function.Consumer<String> progress(PrintWriter out) {
        return line -> {
            out.println(line);
            out.flush();
        };
    }

    public static int run(String[] args) {
        String verb = args.length > 0 ? args[0] : "";
        // Short runs whose bulk work is native or JDK crypto: C2 off the rest, before anything gets hot.
        if (verb.equals("restore") || verb.equals("snapshot") || verb.equals("verify")) ShortRunJit.apply();
        // A restore or snapshot spends its first second in a cold JVM: start loading the native AES-GCM (or else
        // compiling the JDK's) on the other core before the arguments are even bound. It is ready at ~0.35 s, and a
        // large restore waits for it. Harmless if the arguments turn out to be wrong.
        if (verb.equals("restore") || verb.equals("snapshot")) {
            io.duckguard.runtime.crypto.AesGcmWarmUp.start();
            // zstd-jni unpacks and loads its native library when first used: ~70 ms that reading the manifest would
            // otherwise wait for on this thread (measured with -Xlog:class+load). A failure shows at that first use.
            io.duckguard.runtime.util.Threads.start("zstd-load", () -> com.github.luben.zstd.Zstd.isError(0));
        }
        // A well-formed verb line is bound without picocli's model (FastArgs); help, mistakes and keys get picocli.
        java.util.function.Supplier<Object> verbCommand = VERBS.get(verb);
        if (verbCommand != null && verbCommand.get() instanceof Verb v
                && FastArgs.bind(v, java.util.Arrays.copyOfRange(args, 1, args.length))) {
            v.out = new PrintWriter(System.out, true);
            v.err = new PrintWriter(System.err, true);
            try {
                return v.call();
            } catch (Exception ex) { // as picocli's handler below
                v.err.println("duckguard: " + message(ex));
                return 1;
            }
        }
        CommandLine cl = new CommandLine(new Cli());
        // picocli reflects over every subcommand it is given: all of them cost 0.24 s in a cold JVM, one 0.14-0.19 s.
        // So a known verb gets only its own; anything else (help, no verb, a typo) gets all, for usage and hints.
        VERBS.forEach((name, make) -> {
            if (name.equals(verb) || !VERBS.containsKey(verb)) cl.addSubcommand(name, make.get());
        });
        cl.addSubcommand("help", new CommandLine.HelpCommand());
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            cmd.getErr().println("duckguard: " + message(ex));
            return 1;
        });
        return cl.execute(args);
    }

    /** The verbs, in the order usage lists them; each built only when the command line needs it. */
    static final java.util.Map<String, java.util.function.Supplier<Object>> VERBS = new java.util.LinkedHashMap<>();

    static {
        VERBS.put("restore", RestoreCommand::new);
        VERBS.put("list", ListCommand::new);
        VERBS.put("verify", VerifyCommand::new);
        VERBS.put("gc", GcCommand::new);
        VERBS.put("snapshot", SnapshotCommand::new);
        VERBS.put("drill", DrillCommand::new);
        VERBS.put("keys", KeysCommand::new);
    }

    static String message(Throwable ex) {
        if (ex instanceof java.sql.SQLException s) return "DuckDB: " + s.getMessage();
        String m = ex.getMessage();
        return m == null ? ex.toString() : m;
    }

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getErr());
        return 2;
    }

    /**
     * A verb: its output goes to picocli's writers when picocli parsed the command line, else to those
     * {@link #run} gave it after {@link FastArgs} bound it.
     */
    abstract static class Verb implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;
        PrintWriter out;
        PrintWriter err;

        PrintWriter out() {
            return out != null ? out : spec.commandLine().getOut();
        }

        PrintWriter err() {
            return err != null ? err : spec.commandLine().getErr();
        }
    }

    /** Options every verb that reads a repository takes. */
    static class RepoOptions {
        @Option(names = "--repository", required = true, paramLabel = "DIR", description = "The backup repository.")
        Path repository;

        @Option(names = "--key-file", paramLabel = "FILE",
                description = "The repository's key (default: ~/.duckguard/keys/<repository id>.key).")
        Path keyFile;

        @Option(names = "--keystore", paramLabel = "FILE",
                description = "A PKCS#12 keystore holding the key (entry duckguard-<key id>), instead of --key-file.")
        Path keystore;

        @Option(names = "--keystore-password-env", paramLabel = "VAR", description = "Environment variable holding the keystore's password.")
        String keystorePasswordEnv;

        @Option(names = "--passphrase-env", paramLabel = "VAR",
                description = "Environment variable holding the repository's passphrase (Argon2id), instead of --key-file.")
        String passphraseEnv;

        Repository open() throws Exception {
            return RepositoryOpener.openExisting(repository.toAbsolutePath(), keySource(), false);
        }

        /** For verbs that write: a repository of format 1 is upgraded to format 2 first. */
        Repository openForWriting() throws Exception {
            return RepositoryOpener.openExisting(repository.toAbsolutePath(), keySource(), true);
        }

        /** The key source the options name, or null for the default key file. */
        io.duckguard.runtime.crypto.KeySource keySource() {
            return KeysCommand.source("--", keyFile, keystore, keystorePasswordEnv, passphraseEnv);
        }

        /** The database to work on: the one named, or the only one in the repository. */
        DatabaseHistory database(Repository repo, String name) throws Exception {
            List<String> names = repo.databaseNames();
            if (name != null) {
                if (!names.contains(name)) {
                    throw new IllegalArgumentException("repository has no database '" + name + "' (it has: " + names + ")");
                }
                return repo.database(name);
            }
            if (names.isEmpty()) throw new IllegalArgumentException("repository " + repository + " holds no database yet");
            if (names.size() > 1) throw new IllegalArgumentException("repository holds several databases " + names + "; choose one with --database");
            return repo.database(names.get(0));
        }
    }

    @Command(name = "restore", mixinStandardHelpOptions = true,
            description = "Restore a database from the repository into a new, self-contained, checkpointed DuckDB file.")
    static final class RestoreCommand extends Verb {
        @CommandLine.Mixin
        RepoOptions repo = new RepoOptions();

        @Option(names = "--database", paramLabel = "NAME", description = "Database file name, e.g. trade_data.duckdb (default: the only one).")
        String database;

        @Option(names = "--to", defaultValue = "latest", paramLabel = "TARGET",
                description = "latest (default), snapshot:<epoch>, commit:<epoch>.<n>, or an ISO-8601 instant.")
        String to;

        @Option(names = "--output", required = true, paramLabel = "FILE", description = "Where to write the database.")
        Path output;

        @Option(names = "--force", description = "Replace FILE if it exists.")
        boolean force;

        @Option(names = "--duckdb-jar", paramLabel = "JAR", description = "duckdb_jdbc jar to use (default: the one the app used).")
        Path duckdbJar;

        @Override
        public Integer call() throws Exception {
            io.duckguard.runtime.crypto.AesGcmWarmUp.start(); // no-op if run() started it already
            PrintWriter out = out();
            RestoreTarget target = RestoreTarget.parse(to);
            if (output.toFile().exists()) {
                if (!force) throw new IllegalArgumentException(output + " already exists; refusing to overwrite it (add --force)");
                refuseIfOpenElsewhere(output);
            }
            Repository r = repo.open();
            DatabaseHistory h = repo.database(r, database);
            Properties info = h.info();
            DuckDbDriver duckdb = DuckDbDriver.forDatabase(duckdbJar, info);
            Restorer.Result res = new Restorer(h, progress(out)).restore(target, output, force, duckdb);
            out.printf("restored %s -> %s: epoch %d, %d commits replayed, last commit %s, %.1f MB, %d ms%n",
                    res.database(), res.output(), res.epoch(), res.commits(),
                    res.lastCommitTime() > 0 ? Instant.ofEpochMilli(res.lastCommitTime()) : "(snapshot only)",
                    res.bytes() / 1e6, res.millis());
            out.flush();
            return 0;
        }
    }

    /**
     * --force must not replace the database of a running app: DuckDB holds a POSIX lock on its file, and a file renamed
     * over it would leave the app writing to the old, unlinked one, every later commit lost at its next start. Only
     * from the CLI: POSIX locks belong to the process, so this probe, run inside the app's JVM, would succeed and,
     * closing its channel, drop DuckDB's own lock (the JMX restoreTo never replaces a file instead).
     */
    static void refuseIfOpenElsewhere(Path file) throws IOException {
        boolean writable = java.nio.file.Files.isWritable(file); // read-only: a shared lock still meets DuckDB's
        try (java.nio.channels.FileChannel ch = writable
                ? java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.READ, java.nio.file.StandardOpenOption.WRITE)
                : java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.READ)) {
            java.nio.channels.FileLock lock = ch.tryLock(0, Long.MAX_VALUE, !writable);
            if (lock == null) {
                throw new IllegalArgumentException(file + " is open in a running DuckDB (another process holds its lock);"
                        + " stop the application before restoring over its database, or restore to another --output");
            }
            lock.release();
        }
    }

    @Command(name = "list", mixinStandardHelpOptions = true,
            description = "Show the databases in a repository, their snapshots and restorable range.")
    static final class ListCommand extends Verb {
        @CommandLine.Mixin
        RepoOptions repo = new RepoOptions();

        @Option(names = "--database", paramLabel = "NAME", description = "Only this database.")
        String database;

        @Option(names = "--commits", description = "Also list every commit (epoch.n, time).")
        boolean commits;

        @Override
        public Integer call() throws Exception {
            PrintWriter out = out();
            Repository r = repo.open();
            List<String> names = database != null ? List.of(repo.database(r, database).name()) : r.databaseNames();
            out.printf("repository %s (id %s, %s)%n", r.root(), r.id(), r.codec().encrypted() ? "encrypted" : "NOT encrypted");
            if (names.isEmpty()) out.println("  no databases yet");
            for (String n : names) RestorePoints.describe(r.database(n), commits, out::println);
            out.flush();
            return 0;
        }
    }

    @Command(name = "verify", mixinStandardHelpOptions = true,
            description = "Check the repository without changing it; exit 1 naming every damaged object and what it breaks.")
    static final class VerifyCommand extends Verb {
        @CommandLine.Mixin
        RepoOptions repo = new RepoOptions();

        @Option(names = "--read-data", description = "Also read, decrypt and check every block (slower).")
        boolean readData;

        @Option(names = "--subset", defaultValue = "100%", paramLabel = "PERCENT",
                description = "With --read-data: read only this share of the blocks, e.g. 5%% (default ${DEFAULT-VALUE}).")
        String subset;

        @Override
        public Integer call() throws Exception {
            PrintWriter out = out();
            if (readData) io.duckguard.runtime.crypto.AesGcmWarmUp.start(); // it decrypts every block: as a restore
            io.duckguard.runtime.verify.Verifier.Report r = new io.duckguard.runtime.verify.Verifier(repo.open(), progress(out)).run(readData, parsePercent(subset));
            for (io.duckguard.runtime.verify.Verifier.Problem p : r.problems()) err().println("duckguard: " + p);
            err().flush();
            return r.ok() ? 0 : 1;
        }
    }

    static int parsePercent(String s) {
        try {
            int p = Integer.parseInt(s.trim().replace("%", ""));
            if (p >= 1 && p <= 100) return p;
        } catch (NumberFormatException e) {
            // fall through
        }
        throw new IllegalArgumentException("--subset " + s + " is not a percentage from 1% to 100%");
    }

    @Command(name = "gc", mixinStandardHelpOptions = true,
            description = "Apply retention and remove what no retained restore point needs.")
    static final class GcCommand extends Verb {
        @CommandLine.Mixin
        RepoOptions repo = new RepoOptions();

        @Option(names = "--dry-run", description = "Only print what would be removed.")
        boolean dryRun;

        @Option(names = "--window", defaultValue = "1h", description = "Keep every commit of this last period restorable (default ${DEFAULT-VALUE}).")
        String window;

        @Option(names = "--snapshots", defaultValue = "10", description = "Keep this many newest snapshots (default ${DEFAULT-VALUE}).")
        int snapshots;

        @Option(names = "--daily", defaultValue = "0", description = "Also keep the newest snapshot of this many days.")
        int daily;

        @Option(names = "--weekly", defaultValue = "0", description = "Also keep the newest snapshot of this many weeks.")
        int weekly;

        @Option(names = "--grace", defaultValue = "15m", description = "Never remove packs younger than this (a snapshot may be running).")
        String grace;

        @Override
        public Integer call() throws Exception {
            PrintWriter out = out();
            io.duckguard.runtime.retention.RetentionPolicy policy = new io.duckguard.runtime.retention.RetentionPolicy(
                    io.duckguard.runtime.util.Durations.parseDuration(window), snapshots, daily, weekly);
            io.duckguard.runtime.retention.GarbageCollector.Report r = new io.duckguard.runtime.retention.GarbageCollector(
                    repo.open(), io.duckguard.runtime.util.Durations.parseDuration(grace), progress(out)).run(policy, dryRun);
            for (String e : r.removedEpochs()) out.println((dryRun ? "would remove " : "removed ") + e);
            for (String e : r.removedWalLogs()) out.println((dryRun ? "would remove the WAL of " : "removed the WAL of ") + e + " (snapshot kept)");
            out.flush();
            return 0;
        }
    }

    @Command(name = "snapshot", mixinStandardHelpOptions = true,
            description = "With the app stopped: ship the database's leftover WAL, checkpoint it and take a snapshot."
                    + " (While the app runs, use the JMX operation snapshotNow.)")
    static final class SnapshotCommand extends Verb {
        @CommandLine.Mixin
        RepoOptions repo = new RepoOptions();

        @Option(names = "--database-file", required = true, paramLabel = "FILE", description = "The DuckDB database file.")
        Path databaseFile;

        @Option(names = "--duckdb-jar", paramLabel = "JAR", description = "duckdb_jdbc jar to use (default: the one the app used).")
        Path duckdbJar;

        @Override
        public Integer call() throws Exception {
            PrintWriter out = out();
            Repository r = repo.openForWriting();
            Path file = databaseFile.toAbsolutePath().normalize();
            String name = file.getFileName().toString();
            Properties info = r.databaseNames().contains(name) ? r.database(name).info() : new Properties();
            DuckDbDriver duckdb = DuckDbDriver.forDatabase(duckdbJar, info);
            long epoch = io.duckguard.runtime.capture.OneShotSnapshot.take(r, repo.keyFile, file, duckdb, out::println);
            out.printf("snapshot %d of %s taken%n", epoch, name);
            out.flush();
            return 0;
        }
    }

    @Command(name = "drill", mixinStandardHelpOptions = true,
            description = "Restore drill: restore the point of the last live fingerprint the agent recorded into a "
                    + "scratch directory and compare it logically with the live database as it was; exit 1 if it differs.")
    static final class DrillCommand extends Verb {
        @CommandLine.Mixin
        RepoOptions repo = new RepoOptions();

        @Option(names = "--database", paramLabel = "NAME", description = "Database file name (default: the only one).")
        String database;

        @Option(names = "--duckdb-jar", paramLabel = "JAR", description = "duckdb_jdbc jar to use (default: the one the app used).")
        Path duckdbJar;

        @Option(names = "--scratch", paramLabel = "DIR", description = "Where to restore (default: the temp directory).")
        Path scratch;

        @Override
        public Integer call() throws Exception {
            Repository r = repo.open();
            DatabaseHistory h = repo.database(r, database);
            Properties info = h.info();
            DuckDbDriver duckdb = DuckDbDriver.forDatabase(duckdbJar, info);
            io.duckguard.runtime.drill.RestoreDrill.Result res = io.duckguard.runtime.drill.RestoreDrill.run(h,
                    io.duckguard.runtime.drill.RestoreDrill.loadFingerprint(h), duckdb,
                    scratch != null ? scratch : Path.of(System.getProperty("java.io.tmpdir"), "duckguard-drill"));
            (res.passed() ? out() : err()).println(
                    (res.passed() ? "" : "duckguard: ") + "drill " + res.line());
            out().flush();
            err().flush();
            return res.passed() ? 0 : 1;
        }
    }
}
