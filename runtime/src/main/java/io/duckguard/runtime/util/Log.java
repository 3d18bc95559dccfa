package io.duckguard.runtime.util;

import java.time.Instant;

/**
 * duckguard's log: one line per event on stderr, prefixed so operators can grep it out of the host's output.
 * Deliberately not a logging framework: the agent must not touch the host's logging configuration.
 */
public final class Log {
    private static volatile boolean debug = Boolean.getBoolean("duckguard.debug");

    private Log() {}

    public static void setDebug(boolean on) {
        debug = on;
    }

    public static void info(String msg) {
        emit("INFO", msg, null);
    }

    public static void warn(String msg) {
        emit("WARN", msg, null);
    }

    public static void error(String msg, Throwable t) {
        emit("ERROR", msg, t);
    }

    public static void debug(String msg) {
        if (debug) emit("DEBUG", msg, null);
    }

    private static void emit(String level, String msg, Throwable t) {
        StringBuilder sb = new StringBuilder(128).append("duckguard ").append(Instant.now()).append(' ')
                .append(level).append(' ').append(msg);
        if (t != null) sb.append(": ").append(t);
        System.err.println(sb);
        if (t != null && debug) t.printStackTrace();
    }
}
