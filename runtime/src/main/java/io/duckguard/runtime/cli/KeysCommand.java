package io.duckguard.runtime.cli;

import io.duckguard.runtime.crypto.KeySource;
import io.duckguard.runtime.crypto.MasterKey;
import io.duckguard.runtime.repository.KeyRotation;
import io.duckguard.runtime.repository.Repository;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.function.Function;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code keys list | rotate | retire}: the repository's master keys. Data is never re-encrypted. */
@Command(name = "keys", mixinStandardHelpOptions = true,
        description = "The repository's master keys: list them, rotate to a new one, retire an old one.",
        subcommands = {KeysCommand.ListKeys.class, KeysCommand.Rotate.class, KeysCommand.Retire.class})
final class KeysCommand implements Callable<Integer> {
    /** Where environment variables are read (tests replace it). */
    static volatile Function<String, String> env = System::getenv;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getErr());
        return 2;
    }

    /** The key source named by one of a key file, a keystore or a passphrase variable; null when none is given. */
    static KeySource source(String prefix, Path keyFile, Path keystore, String keystorePasswordEnv, String passphraseEnv) {
        int n = (keyFile != null ? 1 : 0) + (keystore != null ? 1 : 0) + (passphraseEnv != null ? 1 : 0);
        if (n > 1) {
            throw new IllegalArgumentException("give only one of " + prefix + "key-file, " + prefix + "keystore, "
                    + prefix + "passphrase-env");
        }
        if (keystore == null && keystorePasswordEnv != null) {
            throw new IllegalArgumentException(prefix + "keystore-password-env is given without " + prefix + "keystore");
        }
        if (keyFile != null) return KeySource.file(keyFile.toAbsolutePath());
        if (keystore != null) {
            if (keystorePasswordEnv == null) {
                throw new IllegalArgumentException(prefix + "keystore needs " + prefix + "keystore-password-env VAR "
                        + "(the environment variable holding its password)");
            }
            return KeySource.keystore(keystore.toAbsolutePath(), keystorePasswordEnv, env);
        }
        if (passphraseEnv != null) return KeySource.passphrase(passphraseEnv, env);
        return null;
    }

    @Command(name = "list", mixinStandardHelpOptions = true,
            description = "Show the master keys: id, creation date, age, source, current/active/retired, and how many "
                    + "data keys are wrapped for each. Needs no key: nothing secret is shown.")
    static final class ListKeys implements Callable<Integer> {
        @Option(names = "--repository", required = true, paramLabel = "DIR", description = "The backup repository.")
        Path repository;

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws Exception {
            PrintWriter out = spec.commandLine().getOut();
            Path dir = repository.toAbsolutePath();
            if (!Repository.exists(dir)) throw new IllegalArgumentException("no duckguard repository at " + dir);
            List<KeyRotation.KeyLine> lines = KeyRotation.list(dir);
            if (lines.isEmpty()) {
                out.println("repository " + dir + " is not encrypted (encryption=none): it has no keys");
            } else {
                out.println("master keys of repository " + dir + ":");
                out.printf("  %-16s  %-24s  %6s  %-10s  %-30s  %s%n", "ID", "CREATED", "AGE", "SOURCE", "STATUS", "DATA KEYS");
                for (KeyRotation.KeyLine l : lines) {
                    String status = l.retired() != null ? "retired " + l.retired()
                            : l.current() ? "current" : "active (not current)";
                    out.printf("  %-16s  %-24s  %5sd  %-10s  %-30s  %s%n", l.id(), l.created(), l.ageDays(), l.source(),
                            status, l.wrappedDataKeys() < 0 ? "-" : Integer.toString(l.wrappedDataKeys()));
                }
            }
            out.flush();
            return 0;
        }
    }

    @Command(name = "rotate", mixinStandardHelpOptions = true,
            description = "Add a new master key and re-wrap every data key for it (no data is re-encrypted); it becomes "
                    + "the current key. The old key keeps working until it is retired. Safe while the agent runs.")
    static final class Rotate implements Callable<Integer> {
        @CommandLine.Mixin
        Cli.RepoOptions repo = new Cli.RepoOptions();

        @Option(names = "--new-key-file", paramLabel = "FILE", description = "The new key (created, mode 0600, if it does not exist).")
        Path newKeyFile;

        @Option(names = "--new-keystore", paramLabel = "FILE", description = "Create the new key in this PKCS#12 keystore.")
        Path newKeystore;

        @Option(names = "--new-keystore-password-env", paramLabel = "VAR", description = "Environment variable holding the new keystore's password.")
        String newKeystorePasswordEnv;

        @Option(names = "--new-passphrase-env", paramLabel = "VAR", description = "Environment variable holding the new passphrase.")
        String newPassphraseEnv;

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws Exception {
            PrintWriter out = spec.commandLine().getOut();
            KeySource target = source("--new-", newKeyFile, newKeystore, newKeystorePasswordEnv, newPassphraseEnv);
            if (target == null) {
                throw new IllegalArgumentException("give the new key: --new-key-file FILE, --new-keystore FILE "
                        + "--new-keystore-password-env VAR, or --new-passphrase-env VAR");
            }
            Repository r = repo.openForWriting();
            if (!r.codec().encrypted()) throw new IllegalArgumentException("repository " + r.root() + " is not encrypted: it has no keys");
            // Offer the source the keys of the repository other than the one it was opened with: a rotation run
            // again finds the new key it added last time.
            String opened = r.keyStatus().openedWithKeyId();
            List<KeySource.Known> known = new ArrayList<>();
            for (KeySource.Known k : r.masterKeys().known()) if (!k.id().equals(opened)) known.add(k);
            MasterKey nk = target.loadOrCreate(known);
            if (nk.keyId().equals(opened)) {
                throw new IllegalArgumentException("the new key (" + target + ") is the key the repository was opened with, "
                        + "id " + opened + ": give a new key");
            }
            KeyRotation.RotateReport rep = KeyRotation.rotate(r, nk, Cli.progress(out));
            out.printf("rotated master key %s -> %s: %d data keys re-wrapped in %d ms (%.0f keys/s); no data was "
                    + "re-encrypted%n", rep.oldKeyId(), rep.newKeyId(), rep.rewrapped(), rep.millis(), rep.keysPerSecond());
            out.printf("%s is now the current key. Next: give the agent the new key (%s) and restart it, then retire the "
                    + "old one: duckguard keys retire --repository %s <new key option> --id %s%n", rep.newKeyId(), target,
                    r.root(), rep.oldKeyId());
            out.flush();
            return 0;
        }
    }

    @Command(name = "retire", mixinStandardHelpOptions = true,
            description = "Remove an old master key: its wraps are deleted from every data key. Refused for the current "
                    + "key and while any data key is wrapped for no other key. Open the repository with a key that stays.")
    static final class Retire implements Callable<Integer> {
        @CommandLine.Mixin
        Cli.RepoOptions repo = new Cli.RepoOptions();

        @Option(names = "--id", required = true, paramLabel = "ID", description = "The master key id to retire (see keys list).")
        String id;

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws Exception {
            PrintWriter out = spec.commandLine().getOut();
            Repository r = repo.openForWriting();
            KeyRotation.RetireReport rep = KeyRotation.retire(r, id, Cli.progress(out));
            out.printf("retired master key %s: %d wraps removed from %d data keys. Now destroy every copy of that key "
                    + "(key file, keystore entry, passphrase): only then can data removed from the repository no longer "
                    + "be recovered from an old copy of it.%n", rep.keyId(), rep.wrapsRemoved(), rep.dataKeys());
            out.flush();
            return 0;
        }
    }
}
