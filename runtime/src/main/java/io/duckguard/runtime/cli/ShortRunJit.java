package io.duckguard.runtime.cli;

import io.duckguard.runtime.util.Log;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Keeps HotSpot's optimising compiler (C2) off duckguard's and the JDK's general code in a CLI restore, snapshot or
 * verify: a run of a few seconds whose bulk work is native (AES-GCM, zstd, DuckDB) or JDK crypto does not earn back
 * what C2 spends compiling.
 *
 * <p>Measured on the benchmark's point-in-time restore (1 GB snapshot + 100k commits, 2 cores): C2 compiled for
 * ~1 s of CPU, most of it in the first 1.5 s while the snapshot was being materialised on both cores (JDK
 * collections and strings at start-up; the WAL's check and merge). With C1 alone the snapshot was written 0.4 s
 * sooner and the restore took 2.6-2.7 s instead of 2.9-3.0 (medians of 4 alternating runs, with
 * {@code -XX:TieredStopAtLevel=1}, and the same with this class's compiler directive). A CLI snapshot of the 1 GB
 * file: 1.90 s instead of 2.09 s (medians of 5 alternating runs); {@code verify --read-data} of the PITR repository:
 * 1.07 s instead of 1.20 s (3 alternating runs).
 *
 * <p>The JDK's own cryptography keeps C2 ({@code com.sun.crypto.provider}, {@code sun.security.provider}): its
 * AES-GCM and SHA-256 are fast only through intrinsics C2 alone applies, and a restore falls back to the JDK's
 * AES-GCM where the native one is not available.
 *
 * <p>How: a compiler directive added through the JVM's diagnostic command {@code Compiler.directives_add}, called
 * in-process (4-10 ms; through the platform MBean server it would cost 120-160 ms). That needs
 * {@code Add-Opens: jdk.management/com.sun.management.internal}, which the agent jar's manifest grants to
 * {@code java -jar} only. Best effort: on any other JVM, or if that internal API changes, nothing happens and the CLI
 * runs as before ({@code -Dduckguard.debug=true} says why). Never in a host application: only the CLI calls it, and
 * only for a restore, a snapshot or a verify. {@code -Dduckguard.cli-c2=true} leaves the compilers alone.
 */
final class ShortRunJit {
    static final String KEEP_C2_PROPERTY = "duckguard.cli-c2";
    /** What {@code -Dduckguard.debug=true} prints when it worked (the agent jar's tests look for it). */
    static final String ADDED = "compiler directive added: C2 only for the JDK's cryptography";

    /** First match wins: the JDK's crypto keeps C2, everything else stays at C1. */
    static final String DIRECTIVES = """
            [ { match: ["com/sun/crypto/provider/*.*", "sun/security/provider/*.*"], c2: { Exclude: false } },
              { match: "*.*", c2: { Exclude: true } } ]
            """;

    private ShortRunJit() {}

    /** Adds the directive; returns whether the JVM accepted it. Call first thing in the CLI's main thread. */
    static boolean apply() {
        if (Boolean.getBoolean(KEEP_C2_PROPERTY)) return false;
        Path file = null;
        try {
            file = Files.createTempFile("duckguard-jit-", ".json");
            Files.writeString(file, DIRECTIVES, StandardCharsets.UTF_8);
            // libmanagement_ext, which implements the command, is loaded by this class's initialiser.
            Class.forName("com.sun.management.internal.PlatformMBeanProviderImpl");
            Class<?> impl = Class.forName("com.sun.management.internal.DiagnosticCommandImpl");
            java.lang.reflect.Method get = impl.getDeclaredMethod("getDiagnosticCommandMBean");
            get.setAccessible(true);
            java.lang.reflect.Method execute = impl.getDeclaredMethod("executeDiagnosticCommand", String.class);
            execute.setAccessible(true);
            Object answer = execute.invoke(get.invoke(null), "Compiler.directives_add " + file);
            boolean added = String.valueOf(answer).contains("added");
            Log.debug(added ? ADDED : "compiler directive not added: " + answer);
            return added;
        } catch (Exception | LinkageError e) { // another JVM, no jdk.management module, a changed internal API
            Log.debug("compiler directive not added: " + e);
            return false;
        } finally {
            if (file != null) {
                try {
                    Files.deleteIfExists(file);
                } catch (java.io.IOException ignored) {
                    // a temporary file of 150 bytes
                }
            }
        }
    }
}
