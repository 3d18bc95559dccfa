package io.duckguard.runtime.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Field;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * FastArgs must bind exactly what picocli binds, or give up: every line it accepts is parsed by both and every option
 * field compared, and no line picocli rejects (or answers with help) may be accepted.
 */
class FastArgsTest {
    private static final List<String[]> LINES = List.of(
            new String[] {"restore", "--repository", "/r", "--output", "/o.duckdb"},
            new String[] {"restore", "--repository=/r", "--output=/o.duckdb", "--to", "commit:3.7", "--force", "--key-file", "/k"},
            new String[] {"restore", "--to=2026-11-26T14:03:07.250Z", "--database", "t.duckdb", "--repository", "/r",
                    "--output", "o", "--duckdb-jar", "/d.jar", "--passphrase-env", "PW"},
            new String[] {"list", "--repository", "/r", "--commits"},
            new String[] {"verify", "--repository", "/r", "--read-data", "--subset", "5%"},
            new String[] {"gc", "--repository", "/r", "--dry-run", "--snapshots", "3", "--window=2h", "--daily", "7"},
            new String[] {"snapshot", "--repository", "/r", "--database-file", "/db.duckdb", "--keystore", "/ks.p12",
                    "--keystore-password-env", "KS"},
            new String[] {"drill", "--repository", "/r", "--scratch", "/tmp/x"},
            // picocli refuses or answers these: FastArgs must give up on each
            new String[] {"restore", "--repository", "/r"},                          // required --output missing
            new String[] {"restore", "--repository", "/r", "--output"},              // value missing
            new String[] {"restore", "--repository", "/r", "--output", "--force"},   // an option as the value
            new String[] {"restore", "--repository", "/r", "--output", "o", "--bogus"},
            new String[] {"restore", "--repository", "/r", "--output", "o", "extra"},
            new String[] {"restore", "--repository", "/r", "--repository", "/s", "--output", "o"},
            new String[] {"restore", "--help"},
            new String[] {"restore", "-h"},
            new String[] {"restore", "--repository", "/r", "--output", "o", "--force=true"},
            new String[] {"gc", "--repository", "/r", "--snapshots", "many"},
            new String[] {"gc", "--repository", "/r", "--snapshots", "-3"},                  // picocli's rules decide
            new String[] {"restore", "--repository", "/r", "--output", "o", "--to", "-x"},
            new String[] {"list", "--repository", "/r", "--", "x"});

    @Test
    void bindsWhatPicocliBindsOrGivesUp() throws Exception {
        int bound = 0;
        for (String[] line : LINES) {
            String verb = line[0];
            String[] args = java.util.Arrays.copyOfRange(line, 1, line.length);
            Object fast = Cli.VERBS.get(verb).get();
            boolean ok = FastArgs.bind(fast, args);
            Object slow = Cli.VERBS.get(verb).get();
            boolean picocliOk;
            try {
                CommandLine.ParseResult r = new CommandLine(slow).parseArgs(args);
                picocliOk = !r.isUsageHelpRequested() && !r.isVersionHelpRequested();
            } catch (CommandLine.ParameterException e) {
                picocliOk = false;
            }
            String what = String.join(" ", line);
            if (ok) {
                assertTrue(picocliOk, "FastArgs accepted what picocli refuses: " + what);
                assertEquals(options(slow), options(fast), what);
                bound++;
            } // giving up is always allowed: picocli then parses the line (--force=true is one it takes)
        }
        assertEquals(8, bound, "the well-formed lines bound");
    }

    @Test
    void everyVerbButKeysIsBoundFast() {
        for (Map.Entry<String, java.util.function.Supplier<Object>> e : Cli.VERBS.entrySet()) {
            assertEquals(!e.getKey().equals("keys"), e.getValue().get() instanceof Cli.Verb, e.getKey());
        }
        assertFalse(FastArgs.bind(new KeysCommand(), new String[] {"list", "--repository", "/r"}));
    }

    /** Every option field of a command and its mixins, by field name. */
    private static Map<String, Object> options(Object o) throws IllegalAccessException {
        Map<String, Object> m = new TreeMap<>();
        for (Class<?> c = o.getClass(); c != Object.class; c = c.getSuperclass()) {
            for (Field f : c.getDeclaredFields()) {
                f.setAccessible(true);
                if (f.isAnnotationPresent(CommandLine.Option.class)) m.put(f.getName(), f.get(o));
                if (f.isAnnotationPresent(CommandLine.Mixin.class)) {
                    for (Map.Entry<String, Object> e : options(f.get(o)).entrySet()) m.put(f.getName() + "." + e.getKey(), e.getValue());
                }
            }
        }
        assertTrue(m.size() >= 5, "options found: " + m);
        return m;
    }
}
