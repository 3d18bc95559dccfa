package io.duckguard.runtime.repository;

import io.duckguard.runtime.crypto.CorruptObjectException;
import io.duckguard.runtime.util.AtomicFiles;
import java.io.IOException;
import java.io.StringReader;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Properties;

/**
 * The history of one protected database in a repository: its identity, and per epoch a snapshot manifest and a
 * WAL log. An epoch is restorable once its manifest exists; its WAL log may be empty.
 */
public final class DatabaseHistory {
    static final String PROPS = "database.properties";
    /** Marks an epoch whose WAL log retention removed on purpose (the snapshot stays). */
    public static final String WAL_REMOVED = "wal-removed";
    private final Repository repo;
    private final String name;
    private final Path dir;

    DatabaseHistory(Repository repo, String name) {
        this.repo = repo;
        this.name = name;
        this.dir = repo.root().resolve("databases").resolve(name);
    }

    public String name() {
        return name;
    }

    public Repository repository() {
        return repo;
    }

    public boolean exists() {
        return Files.isRegularFile(dir.resolve(PROPS));
    }

    /** The identity recorded when this database was first protected: source path, DuckDB version, driver jar. */
    public Properties info() throws IOException {
        Properties p = new Properties();
        try {
            p.load(new StringReader(Files.readString(dir.resolve(PROPS), StandardCharsets.UTF_8)));
        } catch (NoSuchFileException e) {
            throw new RepositoryException("repository " + repo.root() + " has no database '" + name + "'");
        }
        return p;
    }

    public void writeInfo(Properties p) throws IOException {
        StringWriter w = new StringWriter();
        p.store(w, "duckguard database history");
        AtomicFiles.write(dir.resolve(PROPS), w.toString().getBytes(StandardCharsets.UTF_8));
    }

    /** All epochs that have a directory, ascending (some may lack a manifest: a crash during their snapshot). */
    public List<Long> epochs() throws IOException {
        Path e = dir.resolve("epochs");
        if (!Files.isDirectory(e)) return List.of();
        List<Long> out = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(e)) {
            for (Path p : ds) {
                String n = p.getFileName().toString();
                if (n.matches("\\d{10}")) out.add(Long.parseLong(n));
            }
        }
        Collections.sort(out);
        return out;
    }

    public Path epochDir(long epoch) {
        return dir.resolve("epochs").resolve(String.format("%010d", epoch));
    }

    private String manifestName(long epoch) {
        return "databases/" + name + "/epochs/" + String.format("%010d", epoch) + "/manifest";
    }

    private String walName(long epoch) {
        return "databases/" + name + "/epochs/" + String.format("%010d", epoch) + "/wal";
    }

    public boolean hasManifest(long epoch) {
        return Files.isRegularFile(epochDir(epoch).resolve("manifest"));
    }

    public Manifest readManifest(long epoch) throws IOException, CorruptObjectException {
        Path f = epochDir(epoch).resolve("manifest");
        byte[] sealed;
        try {
            sealed = Files.readAllBytes(f);
        } catch (NoSuchFileException e) {
            throw new CorruptObjectException(manifestName(epoch), "missing");
        }
        Manifest m = Manifest.decode(repo.codec().open(sealed, manifestName(epoch)));
        if (m.epoch() != epoch) throw new CorruptObjectException(manifestName(epoch), "belongs to epoch " + m.epoch());
        return m;
    }

    public void writeManifest(Manifest m) throws IOException {
        // The epoch's directory before its key: garbage collection takes a key whose epoch has no directory for
        // the leftover of a removal that crashed.
        AtomicFiles.createDirectories(epochDir(m.epoch()));
        AtomicFiles.write(epochDir(m.epoch()).resolve("manifest"),
                repo.codec().seal(repo.manifestKey(name, m.epoch()), m.encode(), manifestName(m.epoch())));
    }

    public boolean walRemovedByRetention(long epoch) {
        return Files.exists(epochDir(epoch).resolve(WAL_REMOVED));
    }

    public boolean hasWalLog(long epoch) {
        return Files.isRegularFile(epochDir(epoch).resolve("wal"));
    }

    /** Creates the WAL log of {@code epoch}, bound to the base whose whole-file SHA-256 is given. */
    public void createWalLog(long epoch, byte[] baseSha256) throws IOException {
        AtomicFiles.createDirectories(epochDir(epoch));
        Path f = epochDir(epoch).resolve("wal");
        if (Files.exists(f) && !hasManifest(epoch)) {
            // Left by a base attempt that failed before its manifest: it can hold no record (the writer opens only
            // once the manifest exists), and its binding may name another file content. Start it afresh.
            try {
                if (readWalLog(epoch).records().isEmpty()) Files.delete(f);
            } catch (CorruptObjectException e) {
                throw new RepositoryException("cannot reuse " + walName(epoch) + ": " + e.getMessage(), e);
            }
        }
        WalLog.createFile(repo.codec(), repo.walKey(name, epoch), epochDir(epoch).resolve("wal"), walName(epoch), epoch, baseSha256);
    }

    public WalLog.Writer openWalLogForAppend(long epoch) throws IOException, CorruptObjectException {
        return new WalLog.Writer(repo.codec(), repo.walKey(name, epoch), epochDir(epoch).resolve("wal"), walName(epoch));
    }

    public WalLog.Contents readWalLog(long epoch) throws IOException, CorruptObjectException {
        Path f = epochDir(epoch).resolve("wal");
        if (!Files.isRegularFile(f)) throw new CorruptObjectException(walName(epoch), "missing");
        WalLog.Contents c = WalLog.read(repo.codec(), f, walName(epoch));
        if (c.epoch() != epoch) throw new CorruptObjectException(walName(epoch), "belongs to epoch " + c.epoch());
        return c;
    }
}
