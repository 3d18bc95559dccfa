package io.duckguard.runtime.repository;

import io.duckguard.runtime.crypto.CorruptObjectException;
import io.duckguard.runtime.crypto.DataKey;
import io.duckguard.runtime.crypto.ObjectCodec;
import io.duckguard.runtime.util.AtomicFiles;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The repository's log of one WAL epoch: an append-only file of sealed records, each a batch of whole commits.
 *
 * <pre>
 * file   := frame(header) frame(record)*
 * frame  := u32 length, u32 crc32c(length), sealed object of that length
 * header := u32 version, u64 epoch, byte[32] sha-256 of the base file this WAL applies to
 * record := u64 walStart, u64 walEnd, u32 n, n x (u64 commit end in WAL, i64 commit time ms), WAL bytes
 * </pre>
 *
 * The header is written with tmp+fsync+rename, so the log exists only once its base binding is durable. Records
 * are appended and fdatasynced (one fsync per batch: group commit). Each record is sealed with its own position
 * (walStart) in the associated data, so records cannot be reordered or moved between logs unnoticed. A crash can
 * leave a torn last frame; readers stop before it and {@link Writer} cuts it before appending. The length is
 * checksummed so that a damaged length in the middle of a log is reported as damage, never mistaken for a torn
 * tail (which would silently drop every later commit: DuckDB's own WAL has exactly that trap).
 */
public final class WalLog {
    private static final int VERSION = 1;

    private WalLog() {}

    private static final int FRAME_HEADER = 8;

    /** A sealed object framed as it is stored in a log (tests rebuild logs with it). */
    public static ByteBuffer frame(byte[] sealed) {
        ByteBuffer f = ByteBuffer.allocate(FRAME_HEADER + sealed.length);
        f.putInt(sealed.length).putInt(lengthCrc(sealed.length)).put(sealed);
        return f.flip();
    }

    private static int lengthCrc(int len) {
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(ByteBuffer.allocate(4).putInt(len).array());
        crc.update(0x5A); // so that an all-zero header never checks out
        return (int) crc.getValue();
    }

    private static boolean allZero(byte[] b, int from) {
        for (int i = from; i < b.length; i++) if (b[i] != 0) return false;
        return true;
    }

    static String objectName(String logName, long walStart) {
        return logName + "#" + walStart;
    }

    static void createFile(ObjectCodec codec, DataKey key, Path file, String logName, long epoch, byte[] baseSha256) throws IOException {
        ByteArrayOutputStream bo = new ByteArrayOutputStream();
        DataOutputStream o = new DataOutputStream(bo);
        o.writeInt(VERSION);
        o.writeLong(epoch);
        o.write(baseSha256);
        byte[] sealed = codec.seal(key, bo.toByteArray(), logName + "#header");
        AtomicFiles.write(file, frame(sealed).array(), false);
    }

    /** Everything a reader found in a log: its binding, its valid records, and whether a torn tail was seen. */
    public record Contents(long epoch, byte[] baseSha256, List<WalRecord> records, long validLength, boolean tornTail) {
        public long walEnd() {
            return records.isEmpty() ? 0 : records.get(records.size() - 1).walEnd();
        }

        public int commitCount() {
            int n = 0;
            for (WalRecord r : records) n += r.commits().size();
            return n;
        }
    }

    /**
     * Reads and authenticates a whole log. A damaged frame in the middle is an error naming the log and offset;
     * a short or unreadable final frame is a torn tail (a crash while appending) and ends the log there.
     */
    public static Contents read(ObjectCodec codec, Path file, String logName) throws IOException, CorruptObjectException {
        byte[] all = Files.readAllBytes(file);
        ByteBuffer b = ByteBuffer.wrap(all);
        if (all.length < FRAME_HEADER) throw new CorruptObjectException(logName, "truncated header");
        int hlen = b.getInt();
        if (b.getInt() != lengthCrc(hlen) || hlen <= 0 || FRAME_HEADER + hlen > all.length) {
            throw new CorruptObjectException(logName, "damaged header");
        }
        byte[] header = codec.open(all, FRAME_HEADER, hlen, logName + "#header");
        DataInputStream h = new DataInputStream(new ByteArrayInputStream(header));
        if (h.readInt() != VERSION) throw new CorruptObjectException(logName, "unknown WAL log version");
        long epoch = h.readLong();
        byte[] baseSha = h.readNBytes(32);
        int pos = FRAME_HEADER + hlen;
        long expectedStart = 0; // every WAL epoch is shipped from its first byte
        List<WalRecord> records = new ArrayList<>();
        boolean torn = false;
        while (pos < all.length) {
            if (all.length - pos < FRAME_HEADER) {
                torn = true; // a frame header cut short by a crash
                break;
            }
            int len = ByteBuffer.wrap(all, pos, 4).getInt();
            int crc = ByteBuffer.wrap(all, pos + 4, 4).getInt();
            if (crc != lengthCrc(len) || len <= 0) {
                if (allZero(all, pos)) {
                    torn = true; // space allocated but never written (a crash right after extending the file)
                    break;
                }
                throw new CorruptObjectException(logName, "frame at byte " + pos + " has a damaged length; "
                        + "later commits of this epoch cannot be read");
            }
            if (len > all.length - pos - FRAME_HEADER) {
                torn = true; // a record whose write was cut short by a crash
                break;
            }
            // The record's position is authenticated: it must start right where the previous one ended.
            WalRecord r;
            try {
                r = decodeRecord(codec, all, pos + FRAME_HEADER, len, logName, expectedStart);
            } catch (CorruptObjectException e) {
                if (pos + FRAME_HEADER + len == all.length) {
                    torn = true; // the last frame: a write cut short by a crash is indistinguishable; stop here
                    break;
                }
                throw new CorruptObjectException(logName, "record at byte " + pos + " is damaged ("
                        + e.getMessage() + "); later commits of this epoch cannot be trusted");
            }
            records.add(r);
            expectedStart = r.walEnd();
            pos += FRAME_HEADER + len;
        }
        return new Contents(epoch, baseSha, records, pos, torn);
    }

    private static WalRecord decodeRecord(ObjectCodec codec, byte[] all, int off, int len, String logName,
                                          long expectedStart) throws CorruptObjectException {
        long start = expectedStart;
        byte[] plain = codec.open(all, off, len, objectName(logName, start));
        try {
            DataInputStream in = new DataInputStream(new ByteArrayInputStream(plain));
            long walStart = in.readLong();
            long walEnd = in.readLong();
            int n = in.readInt();
            if (walStart != start || walEnd < walStart || n < 0) {
                throw new CorruptObjectException(objectName(logName, start), "record does not continue the log");
            }
            List<CommitMark> commits = new ArrayList<>(n);
            for (int i = 0; i < n; i++) commits.add(new CommitMark(in.readLong(), in.readLong()));
            int headerLen = 8 + 8 + 4 + n * 16;
            byte[] wal = Arrays.copyOfRange(plain, headerLen, plain.length);
            if (wal.length != walEnd - walStart) {
                throw new CorruptObjectException(objectName(logName, start), "record length mismatch");
            }
            return new WalRecord(walStart, walEnd, commits, wal);
        } catch (IOException e) {
            throw new CorruptObjectException(objectName(logName, start), "record is malformed");
        }
    }

    /**
     * Appends records to one epoch's log. Single-threaded: owned by that database's shipper thread.
     * Every append is durable (fdatasync) when it returns; a failed append is cut back off the file so the log
     * never holds garbage in its middle.
     */
    public static final class Writer implements AutoCloseable {
        private final ObjectCodec codec;
        private final DataKey key;
        private final String logName;
        private final FileChannel ch;
        private long goodLength;
        private long walEnd;

        Writer(ObjectCodec codec, DataKey key, Path file, String logName) throws IOException, CorruptObjectException {
            this.codec = codec;
            this.key = key;
            this.logName = logName;
            Contents c = read(codec, file, logName);
            this.ch = FileChannel.open(file, StandardOpenOption.WRITE);
            this.goodLength = c.validLength();
            this.walEnd = c.walEnd();
            if (ch.size() != goodLength) {
                ch.truncate(goodLength); // cut a torn tail left by a crash
                ch.force(true);
            }
        }

        /** The WAL offset the next record must start at (= end of what is durable in this log). */
        public long walEnd() {
            return walEnd;
        }

        public long sizeBytes() {
            return goodLength;
        }

        public void append(long walStart, long walEndExclusive, List<CommitMark> commits, byte[] wal, int off, int len)
                throws IOException {
            if (walStart != walEnd) {
                throw new IllegalStateException("WAL log " + logName + " expects offset " + walEnd + ", got " + walStart);
            }
            ByteArrayOutputStream bo = new ByteArrayOutputStream(len + 20 + commits.size() * 16);
            DataOutputStream o = new DataOutputStream(bo);
            o.writeLong(walStart);
            o.writeLong(walEndExclusive);
            o.writeInt(commits.size());
            for (CommitMark m : commits) {
                o.writeLong(m.walEnd());
                o.writeLong(m.timeMillis());
            }
            o.write(wal, off, len);
            byte[] sealed = codec.seal(key, bo.toByteArray(), objectName(logName, walStart));
            ByteBuffer frame = frame(sealed);
            try {
                long p = goodLength;
                while (frame.hasRemaining()) p += ch.write(frame, p);
                ch.force(false);
            } catch (IOException e) {
                try {
                    ch.truncate(goodLength);
                } catch (IOException ignored) {
                    // the reader still stops at the torn frame; the next append retries the cut
                }
                throw e;
            }
            goodLength += FRAME_HEADER + sealed.length;
            walEnd = walEndExclusive;
        }

        @Override
        public void close() throws IOException {
            ch.close();
        }
    }
}
