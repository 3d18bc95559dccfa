package io.duckguard.runtime.capture;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * Holds new JDBC calls on one database while the checkpointer works (DESIGN.md: "briefly gates commits").
 *
 * <p>App threads call {@link #enter(boolean)} before and {@link #exit()} after each outermost call that may write; that
 * is a volatile read and two atomic adds while the gate is open. The checkpointer (the database's shipper
 * thread, the only closer) calls {@link #close(long)}, which stops new calls and waits for calls in flight to
 * finish, then {@link #open()}. If calls in flight do not drain in time (a long query), close gives up and reopens,
 * so the app is never held longer than that timeout.
 */
final class CommitGate {
    private final AtomicInteger inFlight = new AtomicInteger();
    private final Object lock = new Object();
    private volatile boolean closed;
    /** Closed for calls inside transactions too: nothing at all may commit (a drill pins a commit position). */
    private volatile boolean closedForAll;
    /** Whether this thread holds a pass: exit without enter (listener installed mid-call) must not unbalance us. */
    private final ThreadLocal<boolean[]> holding = ThreadLocal.withInitial(() -> new boolean[1]);

    /**
     * App thread: blocks while the gate is closed, then takes a pass. A call inside an open transaction is never
     * held: holding it would keep its transaction open, and DuckDB refuses to checkpoint while another transaction
     * holds uncommitted updates. So the gate holds new transactions and lets running ones finish.
     */
    void enter(boolean inTransaction) throws InterruptedException {
        while (true) {
            if (!closed || (inTransaction && !closedForAll)) {
                inFlight.incrementAndGet();
                if (!closed || (inTransaction && !closedForAll)) {
                    holding.get()[0] = true;
                    return;
                }
                release();
            }
            synchronized (lock) {
                while (closed) lock.wait();
            }
        }
    }

    /** App thread: gives the pass back (no-op if this thread holds none). */
    void exit() {
        boolean[] h = holding.get();
        if (!h[0]) return;
        h[0] = false;
        release();
    }

    private void release() {
        if (inFlight.decrementAndGet() == 0 && closed) {
            synchronized (lock) {
                lock.notifyAll();
            }
        }
    }

    /**
     * Checkpointer: closes the gate and waits until no call is in flight. Returns false (gate open again) if that
     * did not happen within {@code timeoutMillis}.
     */
    boolean close(long timeoutMillis) throws InterruptedException {
        return close(timeoutMillis, false);
    }

    /** {@link #close(long)}; with {@code all}, calls inside running transactions are held too (briefly!). */
    boolean close(long timeoutMillis, boolean all) throws InterruptedException {
        long deadline = System.nanoTime() + timeoutMillis * 1_000_000L;
        synchronized (lock) {
            closedForAll = all;
            closed = true;
            while (inFlight.get() > 0) {
                long left = (deadline - System.nanoTime()) / 1_000_000L;
                if (left <= 0) {
                    closed = false;
                    closedForAll = false;
                    lock.notifyAll();
                    return false;
                }
                lock.wait(Math.min(left, 5));
            }
            return true;
        }
    }

    void open() {
        synchronized (lock) {
            closed = false;
            closedForAll = false;
            lock.notifyAll();
        }
    }
}
