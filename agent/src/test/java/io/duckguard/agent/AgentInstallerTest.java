package io.duckguard.agent;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.duckguard.bootstrap.DuckGuardHooks;
import io.duckguard.bootstrap.HookListener;
import java.lang.instrument.Instrumentation;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.stream.Collectors;
import net.bytebuddy.agent.ByteBuddyAgent;
import org.duckdb.DuckDBAppender;
import org.duckdb.DuckDBConnection;
import org.duckdb.DuckDBSingleValueAppender;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Weaves {@link AgentInstaller}'s advice into the real DuckDB driver in this JVM (through {@link ByteBuddyAgent}) and
 * checks what a {@link HookListener} sees. No runtime: the test installs its own listener.
 *
 * <p>{@code DuckDBConnection} is loaded before the instrumentation is installed (the agentmain path: retransformed in
 * place); the appender classes are loaded afterwards (the premain path: transformed while loading).
 */
class AgentInstallerTest {
    private static Instrumentation inst;
    /** Which of the four instrumented classes were already loaded when the instrumentation was installed. */
    private static Set<String> loadedBefore;

    @TempDir
    Path dir;
    private Recorder recorder;
    private String url;

    @BeforeAll
    static void instrument() throws Exception {
        inst = ByteBuddyAgent.install();
        Class.forName("org.duckdb.DuckDBConnection"); // already loaded when the agent arrives -> retransformation
        loadedBefore = Arrays.stream(inst.getAllLoadedClasses()).map(Class::getName)
                .filter(n -> n.startsWith("org.duckdb.DuckDB")).collect(Collectors.toSet());
        AgentInstaller.instrument(inst);
        assertTrue(AgentInstaller.transformedTypes().contains(AgentInstaller.CONNECTION),
                "loaded class retransformed: " + AgentInstaller.transformedTypes());
    }

    @AfterAll
    static void uninstrument() {
        DuckGuardHooks.install(null);
        AgentInstaller.uninstall(inst);
    }

    @BeforeEach
    void listen() {
        recorder = new Recorder(Thread.currentThread());
        DuckGuardHooks.install(recorder);
        url = "jdbc:duckdb:" + dir.resolve("test.duckdb");
    }

    @AfterEach
    void stopListening() {
        DuckGuardHooks.install(null);
    }

    @Test
    void allDuckDbClassesAreTransformedWithoutErrors() throws Exception {
        try (Connection c = DriverManager.getConnection(url); Statement s = c.createStatement()) {
            s.execute("CREATE TABLE t(i INTEGER)");
            Appenders.openAndClose(c);
        }
        assertEquals(
                List.of(AgentInstaller.APPENDER, AgentInstaller.CONNECTION, AgentInstaller.PREPARED_STATEMENT,
                        AgentInstaller.SINGLE_VALUE_APPENDER),
                AgentInstaller.transformedTypes().stream().sorted().toList());
        assertEquals(0, AgentInstaller.transformationErrors());
        // Both paths were exercised: retransformation of a loaded class and transformation at class load.
        assertTrue(loadedBefore.contains(AgentInstaller.CONNECTION), loadedBefore::toString);
        assertFalse(loadedBefore.contains(AgentInstaller.APPENDER), loadedBefore::toString);
    }

    @Test
    void connectionOpenedWithUrlAndClosed() throws Exception {
        Connection c = DriverManager.getConnection(url);
        assertEquals(List.of("opened " + url + " readOnly=false"), recorder.names());
        assertSame(c, recorder.events.get(0).connection);

        recorder.clear();
        c.close();
        assertEquals(List.of("closed"), recorder.names());
        assertSame(c, recorder.events.get(0).connection);
    }

    @Test
    void readOnlyFlagIsReported() throws Exception {
        try (Connection c = DriverManager.getConnection(url); Statement s = c.createStatement()) {
            s.execute("CREATE TABLE t(i INTEGER)");
        }
        recorder.clear();
        Properties p = new Properties();
        p.setProperty("duckdb.read_only", "true");
        try (Connection ro = DriverManager.getConnection(url, p)) {
            assertEquals("opened " + url + " readOnly=true", recorder.names().get(0));
            assertSame(ro, recorder.events.get(0).connection);
        }
    }

    @Test
    void duplicateIsReported() throws Exception {
        try (DuckDBConnection c = DriverManager.getConnection(url).unwrap(DuckDBConnection.class)) {
            recorder.clear();
            try (Connection dup = c.duplicate()) {
                assertEquals(List.of("duplicated"), recorder.names());
                assertSame(c, recorder.events.get(0).connection);
                assertSame(dup, recorder.events.get(0).other);
            }
        }
    }

    @Test
    void eachOutermostCallIsOneBeforeAfterPair() throws Exception {
        try (Connection c = DriverManager.getConnection(url); Statement s = c.createStatement()) {
            s.execute("CREATE TABLE t(i INTEGER)");

            recorder.clear();
            assertEquals(2, s.executeUpdate("INSERT INTO t VALUES (1), (2)"), "result unchanged");
            assertPair(c);

            // executeBatch -> executeLargeBatch -> BEGIN, one execute() per row, conn.commit() -> COMMIT: all nested
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO t VALUES (?)")) {
                for (int i = 10; i < 13; i++) {
                    ps.setInt(1, i);
                    ps.addBatch();
                }
                recorder.clear();
                assertArrayEquals(new int[] {1, 1, 1}, ps.executeBatch());
                assertPair(c);
            }

            c.setAutoCommit(false);
            s.executeUpdate("INSERT INTO t VALUES (20)");
            recorder.clear();
            c.commit(); // executes "COMMIT" through a statement inside: nested
            assertPair(c);
            recorder.clear();
            c.rollback();
            assertPair(c);
            recorder.clear();
            c.setAutoCommit(true);
            assertPair(c);

            Appenders.flushAndClose(c, recorder);

            recorder.clear();
            try (ResultSet rs = s.executeQuery("SELECT count(*), sum(i) FROM t")) {
                assertTrue(rs.next());
                assertEquals(8, rs.getInt(1));
                assertEquals(1 + 2 + 10 + 11 + 12 + 20 + 30 + 40, rs.getInt(2));
            }
            assertPair(c);
        }
    }

    @Test
    void callDepthUnwindsWhenTheCallThrows() throws Exception {
        try (Connection c = DriverManager.getConnection(url); Statement s = c.createStatement()) {
            recorder.clear();
            assertThrows(SQLException.class, () -> s.execute("SELEC 1"));
            assertPair(c);
            // (DuckDB closes a statement whose execution failed; the connection stays usable)
            try (Statement s2 = c.createStatement()) {
                recorder.clear();
                s2.execute("SELECT 1");
                assertPair(c); // still outermost: the failed call left no depth behind
            }
        }
    }

    @Test
    void aThrowingListenerNeverReachesTheApplication() throws Exception {
        String expectedMessage;
        try (Connection c = DriverManager.getConnection(url); Statement s = c.createStatement()) {
            expectedMessage = assertThrows(SQLException.class, () -> s.execute("SELEC 1")).getMessage();
        }

        long errorsBefore = DuckGuardHooks.adviceErrors();
        DuckGuardHooks.install(new ThrowingListener());
        try (Connection c = DriverManager.getConnection(url); Statement s = c.createStatement()) {
            s.execute("CREATE TABLE t(i INTEGER)");
            assertEquals(1, s.executeUpdate("INSERT INTO t VALUES (7)"));
            c.setAutoCommit(false);
            s.executeUpdate("INSERT INTO t VALUES (8)");
            c.commit();
            try (Connection dup = c.unwrap(DuckDBConnection.class).duplicate();
                 Statement ds = dup.createStatement();
                 ResultSet rs = ds.executeQuery("SELECT sum(i) FROM t")) {
                assertTrue(rs.next());
                assertEquals(15, rs.getInt(1));
            }
            SQLException e = assertThrows(SQLException.class, () -> s.execute("SELEC 1"));
            assertEquals(SQLException.class, e.getClass());
            assertEquals(expectedMessage, e.getMessage(), "the application's own error, unchanged");
        }
        assertTrue(DuckGuardHooks.adviceErrors() > errorsBefore, "listener failures were counted");
    }

    private void assertPair(Object connection) {
        assertPair(recorder, connection);
    }

    private static void assertPair(Recorder recorder, Object connection) {
        assertEquals(List.of("before", "after"), recorder.names());
        assertSame(connection, recorder.events.get(0).connection);
        assertSame(connection, recorder.events.get(1).connection);
    }

    /**
     * Everything that names the appender classes, kept out of the test class itself: verifying the test class would
     * otherwise load them before the instrumentation is installed, and the load-time path would go untested.
     */
    private static final class Appenders {
        static void openAndClose(Connection c) throws SQLException {
            DuckDBConnection dc = c.unwrap(DuckDBConnection.class);
            try (DuckDBAppender a = dc.createAppender(DuckDBConnection.DEFAULT_SCHEMA, "t");
                 DuckDBSingleValueAppender sva = dc.createSingleValueAppender(DuckDBConnection.DEFAULT_SCHEMA, "t")) {
                assertNotNull(a);
                assertNotNull(sva);
            }
        }

        static void flushAndClose(Connection c, Recorder recorder) throws SQLException {
            DuckDBConnection dc = c.unwrap(DuckDBConnection.class);
            try (DuckDBAppender a = dc.createAppender(DuckDBConnection.DEFAULT_SCHEMA, "t")) {
                a.beginRow().append(30).endRow();
                recorder.clear();
                a.flush();
                assertPair(recorder, c);
                recorder.clear();
            }
            assertPair(recorder, c); // close() flushes inside: still one pair

            DuckDBSingleValueAppender sva = dc.createSingleValueAppender(DuckDBConnection.DEFAULT_SCHEMA, "t");
            sva.append(40);
            sva.endRow();
            recorder.clear();
            sva.flush();
            assertPair(recorder, null); // it does not know its connection
            recorder.clear();
            sva.close();
            assertPair(recorder, null);
        }
    }

    private record Event(String name, Object connection, Object other) {}

    /** Records what the test thread reports (DuckDB starts no Java threads, but be exact anyway). */
    private static final class Recorder implements HookListener {
        private final Thread owner;
        final List<Event> events = new ArrayList<>();

        Recorder(Thread owner) {
            this.owner = owner;
        }

        private void add(String name, Object connection, Object other) {
            if (Thread.currentThread() == owner) events.add(new Event(name, connection, other));
        }

        List<String> names() {
            return events.stream().map(Event::name).toList();
        }

        void clear() {
            events.clear();
        }

        @Override
        public void connectionOpened(Object connection, String url, boolean readOnly) {
            add("opened " + url + " readOnly=" + readOnly, connection, null);
        }

        @Override
        public void connectionDuplicated(Object original, Object duplicate) {
            add("duplicated", original, duplicate);
        }

        @Override
        public void beforeCall(Object connection) {
            add("before", connection, null);
        }

        @Override
        public void afterCall(Object connection) {
            add("after", connection, null);
        }

        @Override
        public void connectionClosed(Object connection) {
            add("closed", connection, null);
        }
    }

    private static final class ThrowingListener implements HookListener {
        @Override
        public void connectionOpened(Object connection, String url, boolean readOnly) {
            throw new RuntimeException("listener failure");
        }

        @Override
        public void connectionDuplicated(Object original, Object duplicate) {
            throw new RuntimeException("listener failure");
        }

        @Override
        public void beforeCall(Object connection) {
            throw new RuntimeException("listener failure");
        }

        @Override
        public void afterCall(Object connection) {
            throw new IllegalStateException("listener failure");
        }

        @Override
        public void connectionClosed(Object connection) {
            throw new RuntimeException("listener failure");
        }
    }
}
