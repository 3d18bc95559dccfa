package io.duckguard.runtime.cli;

import io.duckguard.runtime.crypto.CorruptObjectException;
import io.duckguard.runtime.repository.CommitMark;
import io.duckguard.runtime.repository.DatabaseHistory;
import io.duckguard.runtime.repository.Manifest;
import io.duckguard.runtime.repository.Repository;
import io.duckguard.runtime.repository.RepositoryOpener;
import io.duckguard.runtime.repository.WalLog;
import io.duckguard.runtime.repository.WalRecord;
import io.duckguard.runtime.restore.DuckDbDriver;
import io.duckguard.runtime.restore.RestoreTarget;
import io.duckguard.runtime.restore.Restorer;
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
 * 2 bad usage. Picocli parses the arguments: it gives every verb {@code --help} and clear usage errors for free.
 */
@Command(name = "duckguard", mixinStandardHelpOptions = true, version = "duckguard 0.1",
        description = "Continuous, encrypted, point-in-time backup of DuckDB databases.",
        subcommands = {Cli.RestoreCommand.class, Cli.ListCommand.class, CommandLine.HelpCommand.class})
public final class Cli implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    public static int run(String[] args) {
        CommandLine cl = new CommandLine(new Cli());
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            cmd.getErr().println("duckguard: " + message(ex));
            return 1;
        });
        return cl.execute(args);
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

    /** Options every verb that reads a repository takes. */
    static class RepoOptions {
        @Option(names = "--repository", required = true, paramLabel = "DIR", description = "The backup repository.")
        Path repository;

        @Option(names = "--key-file", paramLabel = "FILE",
                description = "The repository's key (default: ~/.duckguard/keys/<repository id>.key).")
        Path keyFile;

        Repository open() throws Exception {
            return RepositoryOpener.openExisting(repository.toAbsolutePath(), keyFile == null ? null : keyFile.toAbsolutePath());
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
    static final class RestoreCommand implements Callable<Integer> {
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

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws Exception {
            PrintWriter out = spec.commandLine().getOut();
            RestoreTarget target = RestoreTarget.parse(to);
            if (output.toFile().exists() && !force) {
                throw new IllegalArgumentException(output + " already exists; refusing to overwrite it (add --force)");
            }
            Repository r = repo.open();
            DatabaseHistory h = repo.database(r, database);
            Properties info = h.info();
            DuckDbDriver duckdb = DuckDbDriver.find(duckdbJar, info.getProperty("duckdb-jar"), info.getProperty("duckdb-version"));
            Restorer.Result res = new Restorer(h, msg -> {
                out.println(msg);
                out.flush();
            }).restore(target, output, force, duckdb);
            out.printf("restored %s -> %s: epoch %d, %d commits replayed, last commit %s, %.1f MB, %d ms%n",
                    res.database(), res.output(), res.epoch(), res.commits(),
                    res.lastCommitTime() > 0 ? Instant.ofEpochMilli(res.lastCommitTime()) : "(snapshot only)",
                    res.bytes() / 1e6, res.millis());
            out.flush();
            return 0;
        }
    }

    @Command(name = "list", mixinStandardHelpOptions = true,
            description = "Show the databases in a repository, their snapshots and restorable range.")
    static final class ListCommand implements Callable<Integer> {
        @CommandLine.Mixin
        RepoOptions repo = new RepoOptions();

        @Option(names = "--database", paramLabel = "NAME", description = "Only this database.")
        String database;

        @Option(names = "--commits", description = "Also list every commit (epoch.n, time).")
        boolean commits;

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws Exception {
            PrintWriter out = spec.commandLine().getOut();
            Repository r = repo.open();
            List<String> names = database != null ? List.of(repo.database(r, database).name()) : r.databaseNames();
            out.printf("repository %s (id %s, %s)%n", r.root(), r.id(), r.codec().encrypted() ? "encrypted" : "NOT encrypted");
            if (names.isEmpty()) out.println("  no databases yet");
            for (String n : names) {
                DatabaseHistory h = r.database(n);
                Properties info = h.info();
                out.printf("database %s  (from %s, DuckDB %s)%n", n, info.getProperty("source-path"), info.getProperty("duckdb-version"));
                long from = 0;
                long to = 0;
                for (long e : h.epochs()) {
                    if (!h.hasManifest(e)) {
                        out.printf("  epoch %d: incomplete snapshot (not restorable)%n", e);
                        continue;
                    }
                    try {
                        Manifest m = h.readManifest(e);
                        WalLog.Contents c = h.hasWalLog(e) ? h.readWalLog(e) : null;
                        int count = c == null ? 0 : c.commitCount();
                        long last = lastCommitTime(c);
                        if (from == 0) from = m.createdMillis();
                        to = Math.max(to, Math.max(last, m.createdMillis()));
                        out.printf("  epoch %d: snapshot %s (%s, %.1f MB), %d commits%s%n", e, Instant.ofEpochMilli(m.createdMillis()),
                                m.reason(), m.fileSize() / 1e6, count, last > 0 ? ", last " + Instant.ofEpochMilli(last) : "");
                        if (commits && c != null) {
                            int i = 0;
                            for (WalRecord rec : c.records()) {
                                for (CommitMark cm : rec.commits()) out.printf("    commit:%d.%d  %s%n", e, ++i, Instant.ofEpochMilli(cm.timeMillis()));
                            }
                        }
                    } catch (CorruptObjectException ex) {
                        out.printf("  epoch %d: DAMAGED: %s%n", e, ex.getMessage());
                    }
                }
                if (from > 0) out.printf("  restorable: %s .. %s%n", Instant.ofEpochMilli(from), Instant.ofEpochMilli(to));
            }
            out.flush();
            return 0;
        }

        private static long lastCommitTime(WalLog.Contents c) {
            if (c == null) return 0;
            long t = 0;
            for (WalRecord rec : c.records()) for (CommitMark cm : rec.commits()) t = Math.max(t, cm.timeMillis());
            return t;
        }
    }

}
