package io.duckguard.runtime.restore;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.runtime.restore.RestoreTarget.Kind;
import java.time.Instant;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The --to argument: a mistyped target must be refused, never silently read as "latest". */
class RestoreTargetTest {
    @Test
    void latest() {
        RestoreTarget t = RestoreTarget.parse("latest");
        assertEquals(Kind.LATEST, t.kind());
        assertEquals(t, RestoreTarget.parse(" LATEST "));
        assertEquals("latest", t.toString());
    }

    @Test
    void snapshot() {
        RestoreTarget t = RestoreTarget.parse("snapshot:3");
        assertEquals(Kind.SNAPSHOT, t.kind());
        assertEquals(3, t.epoch());
        assertEquals(0, t.commit(), "a snapshot is commit 0 of its epoch");
        assertEquals("snapshot:3", t.toString());
    }

    @Test
    void commit() {
        RestoreTarget t = RestoreTarget.parse("commit:2.17");
        assertEquals(Kind.COMMIT, t.kind());
        assertEquals(2, t.epoch());
        assertEquals(17, t.commit());
        assertEquals("commit:2.17", t.toString());
        assertEquals(RestoreTarget.parse("commit:2.0").commit(), 0);
    }

    @Test
    void instant() {
        RestoreTarget t = RestoreTarget.parse("2026-11-26T14:03:07.250Z");
        assertEquals(Kind.TIME, t.kind());
        assertEquals(Instant.parse("2026-11-26T14:03:07.250Z"), t.time());
        assertEquals("2026-11-26T14:03:07.250Z", t.toString());
        assertNull(RestoreTarget.parse("latest").time());
        // toString round-trips for every kind (the CLI prints it back in its progress line).
        for (String s : new String[] {"latest", "snapshot:9", "commit:4.1", "2026-01-01T00:00:00Z"}) {
            assertEquals(RestoreTarget.parse(s), RestoreTarget.parse(RestoreTarget.parse(s).toString()));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "last", "yesterday", "snapshot:", "snapshot:x", "snapshot:1.2", "commit:2", "commit:2.",
        "commit:.3", "commit:2.17.1", "commit:a.b", "2026-11-26 14:03:07", "2026-11-26", "12345"})
    void anythingElseIsRefusedListingTheAcceptedForms(String text) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RestoreTarget.parse(text));
        String m = e.getMessage();
        assertTrue(m.contains("'" + text + "'"), m);
        for (String form : new String[] {"latest", "snapshot:<epoch>", "commit:<epoch>.<n>", "ISO-8601"}) {
            assertTrue(m.contains(form), "lists " + form + ": " + m);
        }
    }
}
