package io.duckguard.runtime.util;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;

/** Waiting for work handed to duckguard's worker threads. */
public final class Futures {
    private Futures() {}

    /**
     * Waits up to {@code millis} for the task to end, however it ends; false if it is still running. Interruption
     * keeps the thread's flag and returns true: the {@link #await} that follows reports it.
     */
    public static boolean doneWithin(Future<?> f, long millis) {
        try {
            f.get(millis, java.util.concurrent.TimeUnit.MILLISECONDS);
            return true;
        } catch (java.util.concurrent.TimeoutException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return true;
        } catch (ExecutionException | java.util.concurrent.CancellationException e) {
            return true;
        }
    }

    /**
     * The task's result. An IOException it threw is rethrown as it is; any other failure (a CorruptObjectException,
     * say) arrives as the cause of an IOException, for callers that know it to unwrap. Interruption keeps the
     * thread's flag and becomes an InterruptedIOException.
     */
    public static <T> T await(Future<T> f) throws IOException {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            InterruptedIOException io = new InterruptedIOException("interrupted");
            io.initCause(e);
            throw io;
        } catch (ExecutionException e) {
            if (e.getCause() instanceof IOException io) throw io;
            throw new IOException(e.getCause());
        }
    }
}
