package io.duckguard.it.host;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The host's own durable record of what it was told is committed: one line per transaction,
 * {@code "<txnId> <epochMillis> <op> <key=value>..."}.
 *
 * <p>A line is written and fsynced ({@link FileChannel#force}) after DuckDB returned from the committing call and
 * before the app counts the transaction as acknowledged, so after a kill -9 or a power cut every line in the file
 * is a promise the database (or a restore of it) must keep. Rolled-back transactions are logged too, with op
 * {@code rollback}, as a promise of the opposite kind: they must never be present.
 */
public final class AckLog implements Closeable {

    /** One parsed line. {@code args} keeps the order written. */
    public record Entry(long txnId, long epochMillis, String op, Map<String, String> args) {

        /** True for a transaction the app was told committed (everything except rollback lines). */
        public boolean acknowledged() {
            return !Op.ROLLBACK.logName().equals(op);
        }

        /** The {@code rows=} argument: rows the txn wrote, or -1 when the line has none. */
        public long rows() {
            String v = args.get("rows");
            return v == null ? -1 : Long.parseLong(v);
        }

        public Op opKind() {
            return Op.fromLogName(op);
        }
    }

    private final FileChannel channel;

    private AckLog(FileChannel channel) {
        this.channel = channel;
    }

    /** Opens (creating if needed) for appending; earlier lines are kept. */
    public static AckLog open(Path path) throws IOException {
        Path parent = path.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        return new AckLog(FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.APPEND));
    }

    /**
     * Appends one line and forces it to disk before returning. Serialised: a line is one write() of a few dozen
     * bytes, so concurrent writers never interleave and a kill can at worst leave an unterminated last line, which
     * {@link #read} ignores (that op was not acknowledged yet).
     */
    public synchronized void append(long txnId, Op op, String args) throws IOException {
        String line = txnId + " " + System.currentTimeMillis() + " " + op.logName()
                + (args == null || args.isEmpty() ? "" : " " + args) + "\n";
        ByteBuffer buf = ByteBuffer.wrap(line.getBytes(StandardCharsets.UTF_8));
        while (buf.hasRemaining()) {
            channel.write(buf);
        }
        channel.force(true);
    }

    @Override
    public synchronized void close() throws IOException {
        channel.close();
    }

    /** All complete lines of the log, in file order. A missing file reads as empty. */
    public static List<Entry> read(Path path) throws IOException {
        if (!Files.exists(path)) {
            return List.of();
        }
        String text = Files.readString(path, StandardCharsets.UTF_8);
        List<Entry> out = new ArrayList<>();
        int start = 0;
        while (true) {
            int nl = text.indexOf('\n', start);
            if (nl < 0) {
                break; // an unterminated tail was being written when the process died: not acknowledged
            }
            String line = text.substring(start, nl).trim();
            start = nl + 1;
            if (!line.isEmpty()) {
                out.add(parse(line));
            }
        }
        return Collections.unmodifiableList(out);
    }

    /** Highest txn id in the log, or 0 when empty. */
    public static long maxTxnId(Path path) throws IOException {
        long max = 0;
        for (Entry e : read(path)) {
            max = Math.max(max, e.txnId());
        }
        return max;
    }

    static Entry parse(String line) {
        String[] parts = line.split(" ");
        if (parts.length < 3) {
            throw new IllegalArgumentException("malformed ack log line: " + line);
        }
        Map<String, String> args = new LinkedHashMap<>();
        for (int i = 3; i < parts.length; i++) {
            int eq = parts[i].indexOf('=');
            if (eq > 0) {
                args.put(parts[i].substring(0, eq), parts[i].substring(eq + 1));
            }
        }
        return new Entry(Long.parseLong(parts[0]), Long.parseLong(parts[1]), parts[2],
                Collections.unmodifiableMap(args));
    }
}
