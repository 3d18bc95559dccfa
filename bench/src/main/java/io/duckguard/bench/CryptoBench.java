package io.duckguard.bench;

import com.github.luben.zstd.Zstd;
import io.duckguard.runtime.capture.DatabaseRegistry;
import io.duckguard.runtime.cli.Cli;
import io.duckguard.runtime.config.AgentConfig;
import io.duckguard.runtime.repository.Repository;
import io.duckguard.runtime.repository.RepositoryOpener;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import org.bouncycastle.crypto.engines.AESEngine;
import org.bouncycastle.crypto.modes.GCMBlockCipher;
import org.bouncycastle.crypto.params.AEADParameters;
import org.bouncycastle.crypto.params.KeyParameter;

/**
 * Issue 4's benchmark: what sealing a snapshot block costs per core (zstd + AES-256-GCM through the JDK), against
 * the physical limit here (sequential write + fdatasync of the backup disk), AES-GCM through the JDK's intrinsics
 * vs BouncyCastle's pure-Java engine, and how fast {@code keys rotate} re-wraps data keys. Real DuckDB blocks (a
 * generated trades table), single thread, after a warm-up that gets past the JIT (C2 compiles AES-GCM only after a
 * few hundred MB). Medians of 5 passes. Prints a markdown table and writes bench/target/crypto.md.
 */
final class CryptoBench {
    private CryptoBench() {}

    static int run() throws Exception {
        Path work = Path.of(System.getProperty("bench.work", "target/bench-work")).resolve("crypto-" + System.currentTimeMillis());
        Files.createDirectories(work);
        List<byte[]> blocks = duckdbBlocks(work.resolve("trades.duckdb"));
        long bytes = (long) blocks.size() * blocks.get(0).length;
        byte[] key = new byte[32];
        new SecureRandom().nextBytes(key);
        Cipher jdk = Cipher.getInstance("AES/GCM/NoPadding");
        SecretKeySpec spec = new SecretKeySpec(key, "AES");
        byte[] out = new byte[blocks.get(0).length + 64];
        byte[] nonce = new byte[12];

        Runnable jdkPass = () -> {
            try {
                for (byte[] b : blocks) {
                    nonce[0]++;
                    jdk.init(Cipher.ENCRYPT_MODE, spec, new GCMParameterSpec(128, nonce));
                    jdk.doFinal(b, 0, b.length, out, 0);
                }
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        };
        List<byte[]> few = blocks.subList(0, Math.min(blocks.size(), 64)); // BouncyCastle is slow: 16 MiB per pass
        GCMBlockCipher bc = (GCMBlockCipher) GCMBlockCipher.newInstance(AESEngine.newInstance());
        Runnable bcPass = () -> {
            try {
                for (byte[] b : few) {
                    nonce[1]++;
                    bc.init(true, new AEADParameters(new KeyParameter(key), 128, nonce.clone()));
                    int n = bc.processBytes(b, 0, b.length, out, 0);
                    bc.doFinal(out, n);
                }
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        };
        byte[] zdst = new byte[(int) Zstd.compressBound(blocks.get(0).length)];
        long[] zOut = new long[1];
        int level = io.duckguard.runtime.snapshot.Snapshotter.BLOCK_ZSTD_LEVEL; // what snapshots use
        Runnable zstdPass = () -> {
            zOut[0] = 0;
            for (byte[] b : blocks) zOut[0] += Zstd.compressByteArray(zdst, 0, zdst.length, b, 0, b.length, level);
        };
        // The change fingerprint every chunk of every snapshot goes through (direct buffers, as the snapshot reads).
        var fingerprint = new io.duckguard.runtime.snapshot.ChangeFingerprint(new byte[32], blocks.get(0).length);
        List<ByteBuffer> direct = new ArrayList<>();
        for (byte[] b : blocks) direct.add(ByteBuffer.allocateDirect(b.length).put(b).flip());
        long[] fpSink = new long[1];
        Runnable fingerprintPass = () -> {
            for (ByteBuffer b : direct) fpSink[0] += fingerprint.of(b, b.capacity())[0];
        };
        // The real per-block path of a snapshot: keyed content id + zstd + AES-GCM (ObjectCodec) through a repository.
        Repository repo = Repository.create(work.resolve("repo"), io.duckguard.runtime.crypto.MasterKey.generate());
        io.duckguard.runtime.crypto.ObjectCodec codec = repo.codec();
        Runnable sealPass = () -> {
            try (io.duckguard.runtime.repository.Packs.Writer w = new io.duckguard.runtime.repository.Packs.Writer(repo)) {
                var sealing = w.sealingKey();
                for (byte[] b : blocks) {
                    byte[] id = codec.contentId(b, 0, b.length);
                    codec.seal(sealing, b, 0, b.length, "block:" + io.duckguard.runtime.util.Bytes.hex(id), level);
                }
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        };
        for (int i = 0; i < 4; i++) { // warm-up: well past the JIT's AES-GCM threshold
            jdkPass.run();
            zstdPass.run();
            fingerprintPass.run();
            sealPass.run();
        }
        bcPass.run();
        double jdkMBs = mbPerSec(bytes, jdkPass);
        double bcMBs = mbPerSec((long) few.size() * few.get(0).length, bcPass);
        double zstdMBs = mbPerSec(bytes, zstdPass);
        double fingerprintMBs = mbPerSec(bytes, fingerprintPass);
        double sealMBs = mbPerSec(bytes, sealPass);
        double ratio = (double) bytes / zOut[0];
        double diskMBs = diskWriteMBs(work.resolve("disk.bin"));
        double keysPerSec = rotationKeysPerSec(work);

        StringBuilder md = new StringBuilder();
        md.append("## Encryption and compression per core vs the disk (single thread, real DuckDB blocks)\n\n");
        md.append(String.format("- %d blocks of %d KiB from a generated trades table (DuckDB %s); medians of 5 passes after warm-up; "
                + "load average %s%n%n", blocks.size(), blocks.get(0).length / 1024, "1.5.6", loadAverage()));
        md.append("| what | MB/s per core | x disk write+fdatasync |\n|---|---:|---:|\n");
        md.append(row("disk: sequential write + fdatasync (1 MiB writes)", diskMBs, diskMBs));
        md.append(row("AES-256-GCM, JDK (SunJCE, intrinsics)", jdkMBs, diskMBs));
        md.append(row("AES-256-GCM, BouncyCastle GCMBlockCipher", bcMBs, diskMBs));
        md.append(row(String.format("zstd level %d (ratio %.3f)", level, ratio), zstdMBs, diskMBs));
        md.append(row("change fingerprint (NH, every chunk of every snapshot)", fingerprintMBs, diskMBs));
        md.append(row("duckguard block path: HMAC id + zstd " + level + " + AES-GCM (ObjectCodec)", sealMBs, diskMBs));
        md.append(String.format("%n- JDK AES-GCM is %.0fx BouncyCastle's here: BouncyCastle is used only for Argon2id and X25519.%n", jdkMBs / bcMBs));
        md.append(String.format("- Snapshots seal on every core (2 here): about %.0f MB/s of new blocks, %.1fx the disk.%n", 2 * sealMBs, 2 * sealMBs / diskMBs));
        md.append(String.format("- `keys rotate`: %.0f data keys re-wrapped per second (each record rewritten with tmp+fsync+rename).%n", keysPerSec));
        md.append("\nCommand: `mvn -B -ntp -q -Pbench -DskipTests -pl bench -am verify -Dbench=crypto`\n");
        System.out.println(md);
        Path report = Path.of("target", "crypto.md");
        Files.writeString(report, md.toString());
        return 0;
    }

    private static String row(String what, double mbs, double disk) {
        return String.format("| %s | %.0f | %.2f |%n", what, mbs, mbs / disk);
    }

    private static double mbPerSec(long bytes, Runnable pass) {
        double[] r = new double[5];
        for (int i = 0; i < r.length; i++) {
            long t0 = System.nanoTime();
            pass.run();
            r[i] = bytes / 1e6 / ((System.nanoTime() - t0) / 1e9);
        }
        Arrays.sort(r);
        return r[r.length / 2];
    }

    /** ~128 MB of real DuckDB blocks: a trades table written by DuckDB and checkpointed. */
    private static List<byte[]> duckdbBlocks(Path db) throws Exception {
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + db); Statement s = c.createStatement()) {
            s.execute("CREATE TABLE trades AS SELECT range AS id, TIMESTAMP '2026-01-01' + INTERVAL (range) MILLISECOND AS ts,"
                    + " 'SYM' || (hash(range) % 400) AS sym, CASE WHEN range % 2 = 0 THEN 'B' ELSE 'S' END AS side,"
                    + " (hash(range * 7) % 1000)::INTEGER AS qty, (hash(range * 13) % 100000) / 100.0 AS px FROM range(9000000)");
            s.execute("CHECKPOINT");
        }
        List<byte[]> blocks = new ArrayList<>();
        try (FileChannel ch = FileChannel.open(db, StandardOpenOption.READ)) {
            for (long off = 12288; off + 262144 <= ch.size(); off += 262144) {
                ByteBuffer b = ByteBuffer.allocate(262144);
                while (b.hasRemaining()) ch.read(b, off + b.position());
                blocks.add(b.array());
            }
        }
        return blocks;
    }

    private static double diskWriteMBs(Path f) throws Exception {
        byte[] buf = new byte[1 << 20];
        new SecureRandom().nextBytes(buf);
        double[] r = new double[3];
        for (int i = 0; i < r.length; i++) {
            Files.deleteIfExists(f);
            long t0 = System.nanoTime();
            try (FileChannel ch = FileChannel.open(f, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                for (int m = 0; m < 256; m++) ch.write(ByteBuffer.wrap(buf));
                ch.force(false);
            }
            r[i] = 256 * 1.048576 / ((System.nanoTime() - t0) / 1e9);
        }
        Files.deleteIfExists(f);
        Arrays.sort(r);
        return r[1];
    }

    /** A repository with ~200 epochs (2 data keys each), then `keys rotate` as the CLI runs it; keys/s from its report. */
    private static double rotationKeysPerSec(Path work) throws Exception {
        Path repoDir = work.resolve("rot-repo");
        Path key = work.resolve("rot.key");
        AgentConfig cfg = AgentConfig.parse("repository=" + repoDir + ",key-file=" + key + ",mode=async,jmx=false",
                new Properties(), Map.of());
        Repository repo = RepositoryOpener.openOrCreate(cfg.repository, true, cfg.keyFile);
        DatabaseRegistry reg = new DatabaseRegistry(cfg, repo, n -> { });
        Path db = work.resolve("rot.duckdb");
        try (Connection c = DriverManager.getConnection("jdbc:duckdb:" + db)) {
            reg.connectionOpened(c, "jdbc:duckdb:" + db, false);
            for (int i = 0; i < 200; i++) reg.snapshotNow("rot.duckdb", Duration.ofMinutes(1));
            reg.connectionClosed(c);
        }
        PrintStream old = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setOut(new PrintStream(captured, true));
        try {
            Cli.run(new String[] {"keys", "rotate", "--repository", repoDir.toString(), "--key-file", key.toString(),
                "--new-key-file", work.resolve("rot-new.key").toString()});
        } finally {
            System.setOut(old);
        }
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("\\(([0-9.]+) keys/s\\)").matcher(captured.toString());
        return m.find() ? Double.parseDouble(m.group(1)) : -1;
    }

    private static String loadAverage() {
        try {
            return Files.readString(Path.of("/proc/loadavg")).trim();
        } catch (Exception e) {
            return "?";
        }
    }
}
