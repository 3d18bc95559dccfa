package io.duckguard.runtime.crypto;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.Provider;
import java.util.Locale;

/**
 * AES-GCM in native code (Amazon Corretto Crypto Provider, on AWS-LC) for the CLI's bulk work: restore, verify
 * --read-data, snapshot. The CLI runs in a fresh JVM, where the JDK's AES-GCM is plain Java until C2 has compiled it
 * with its intrinsics: 1 GB of 256 KiB objects took 2.7 s to decrypt cold on one core here, 0.23 s native, from the
 * first object. A CLI restore of the bench's 1.2 GB snapshot went from a median of 1.59 s to 1.28 s. Same algorithm,
 * same bytes: what one seals the other opens.
 *
 * <p>Only in a process that asked for it ({@link #allowInThisProcess}: the CLI). Never in a host application: its
 * JVM has the JDK's GCM compiled already, and loading a native library into a trading app is not ours to decide.
 * Never registered with {@link java.security.Security}: only {@link ObjectCodec}'s ciphers use it. The JDK's
 * AES-GCM is used instead when
 * <ul>
 *   <li>{@code -Dduckguard.native-crypto=false} says so;</li>
 *   <li>the kernel runs in FIPS mode ({@code /proc/sys/crypto/fips_enabled}): the JVM's configured providers are the
 *       policy there;</li>
 *   <li>the platform is not Linux x86_64, the one native build bundled;</li>
 *   <li>the library fails to load or its self-tests fail ({@link #status} says why; the restore prints it).</li>
 * </ul>
 * Loading takes ~0.25 s (the library is unpacked from the jar), so {@link AesGcmWarmUp} does it on its own thread
 * while the CLI starts. Thread-safe.
 */
public final class NativeAesGcm {
    public static final String DISABLE_PROPERTY = "duckguard.native-crypto";
    private static volatile boolean allowed;
    private static volatile Provider provider;
    private static volatile String status = "JDK";
    private static boolean tried; // guarded by the class

    private NativeAesGcm() {}

    /** This process may load it (the CLI calls this first thing). */
    public static void allowInThisProcess() {
        allowed = true;
    }

    /** The provider new ciphers should come from, or null for the JDK's. */
    static Provider provider() {
        return provider;
    }

    /** What AES-GCM decrypts now, for reports: "native (...)" or "JDK (...: why not native)". */
    public static String status() {
        return status;
    }

    /** Loads it unless it ran already or is not wanted (see the class comment). Blocks; returns whether it is in use. */
    static synchronized boolean load() {
        if (provider != null) return true;
        if (!allowed || tried) return false;
        tried = true;
        String why = reasonNotToLoad();
        if (why != null) {
            status = "JDK (" + why + ")";
            return false;
        }
        try {
            com.amazon.corretto.crypto.provider.AmazonCorrettoCryptoProvider p =
                    com.amazon.corretto.crypto.provider.AmazonCorrettoCryptoProvider.INSTANCE;
            p.assertHealthy(); // throws with the loading error or a failed self-test
            javax.crypto.Cipher.getInstance("AES/GCM/NoPadding", p); // the one algorithm we need is there
            provider = p;
            status = "native (Amazon Corretto Crypto Provider " + p.getVersionStr() + ")";
            return true;
        } catch (Exception | LinkageError t) { // no library, a failed self-test, ...: the JDK's then, and say why
            status = "JDK (native AES-GCM failed to load: " + t + ")";
            return false;
        }
    }

    /** Back to the JDK's AES-GCM and not loaded: tests only, so that one test's load does not change the others'. */
    static synchronized void resetForTests() {
        provider = null;
        allowed = false;
        tried = false;
        status = "JDK";
    }

    private static String reasonNotToLoad() {
        if ("false".equalsIgnoreCase(System.getProperty(DISABLE_PROPERTY))) return "-D" + DISABLE_PROPERTY + "=false";
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "");
        if (!os.equals("linux") || !(arch.equals("amd64") || arch.equals("x86_64"))) {
            return "no native AES-GCM bundled for " + os + "/" + arch;
        }
        try {
            Path fips = Path.of("/proc/sys/crypto/fips_enabled");
            if (Files.exists(fips) && Files.readString(fips).trim().equals("1")) return "the kernel runs in FIPS mode";
        } catch (java.io.IOException | RuntimeException e) {
            return "cannot read /proc/sys/crypto/fips_enabled: " + e.getMessage();
        }
        return null;
    }
}
