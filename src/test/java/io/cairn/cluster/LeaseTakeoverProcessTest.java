package io.cairn.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Two nodes in two JVMs contend for one lease over a real ZooKeeper: the holder (a child process,
 * {@link LeaseHolderChild}) is killed with SIGKILL, or stopped with SIGSTOP past its lease; the other
 * node (this JVM) takes over, and a stopped holder, continued, never counted itself valid after it
 * stopped.
 */
class LeaseTakeoverProcessTest {

    private static final long LEASE_MILLIS = ZooKeeperFixture.TIMEOUTS.lease().toMillis();
    private static final String LOCK = "vdi/42";

    private ZooKeeperFixture zookeeper;
    private Process child;

    @BeforeEach
    void startZooKeeper() throws Exception {
        zookeeper = new ZooKeeperFixture();
    }

    @AfterEach
    void stopAll() throws Exception {
        if (child != null && child.isAlive()) {
            signal(child, "CONT");
            child.destroyForcibly();
            child.waitFor(30, TimeUnit.SECONDS);
        }
        zookeeper.close();
    }

    @Test
    void afterKillMinusNineTheOtherNodeTakesOverWithinTheLeaseTimeout() throws Exception {
        child = startChild("a");
        BufferedReader childOut = reader(child);
        long childToken = heldToken(childOut);
        try (ZooKeeperLockManager b = zookeeper.node("b")) {
            CompletableFuture<Lease> waiting = CompletableFuture.supplyAsync(() -> b.acquire(LOCK, Duration.ofSeconds(30)));
            Thread.sleep(200);
            assertTrue(!waiting.isDone(), "b waits while a lives");

            long killedNanos = System.nanoTime();
            child.destroyForcibly(); // SIGKILL
            Lease taken = waiting.get(30, TimeUnit.SECONDS);
            long takeoverMillis = (System.nanoTime() - killedNanos) / 1_000_000;

            assertTrue(takeoverMillis <= LEASE_MILLIS + 1_000, "took over " + takeoverMillis + " ms after the kill; lease " + LEASE_MILLIS + " ms");
            assertTrue(taken.fencingToken() > childToken, taken.fencingToken() + " after " + childToken);
            assertTrue(taken.isValid());
        }
    }

    @Test
    void aHolderStoppedPastItsLeaseIsNeverValidAfterTheTakeover() throws Exception {
        child = startChild("a");
        BufferedReader childOut = reader(child);
        long childToken = heldToken(childOut);
        try (ZooKeeperLockManager b = zookeeper.node("b")) {
            CompletableFuture<Lease> waiting = CompletableFuture.supplyAsync(() -> b.acquire(LOCK, Duration.ofSeconds(30)));
            Thread.sleep(200);

            signal(child, "STOP");
            long stoppedMillis = System.currentTimeMillis(); // the child is stopped by now
            Lease taken = waiting.get(30, TimeUnit.SECONDS);
            long takeoverMillis = System.currentTimeMillis();
            assertTrue(taken.fencingToken() > childToken);
            Thread.sleep(100); // b holds the lease while a is still stopped
            signal(child, "CONT");

            String invalid = childOut.readLine();
            assertTrue(invalid != null && invalid.startsWith("INVALID "), "child said: " + invalid);
            long lastValidMillis = Long.parseLong(invalid.substring("INVALID ".length()));
            // The child never found its lease valid after b took over (the safety property), and stopped finding it
            // valid when it was stopped: kill(1) returns once SIGSTOP is queued, and a thread running on another
            // core may go on for a moment until it is stopped, hence the slack.
            assertTrue(lastValidMillis < takeoverMillis, "last valid at " + lastValidMillis + ", taken over at " + takeoverMillis);
            assertTrue(lastValidMillis <= stoppedMillis + STOP_DELIVERY_SLACK_MILLIS,
                    "last valid at " + lastValidMillis + ", stopped at " + stoppedMillis);
            assertTrue(stoppedMillis < takeoverMillis);
            String lost = childOut.readLine();
            assertTrue(lost != null && lost.startsWith("LOST "), "child said: " + lost);
            assertTrue(child.waitFor(30, TimeUnit.SECONDS));
            assertEquals(0, child.exitValue());
            assertTrue(taken.isValid(), "b's lease is unaffected by a's return");
            assertEquals("b", b.holder(LOCK).orElseThrow().node());
        }
    }

    /** How long after kill(1) returns a thread of the stopped process may still run (signal delivery). */
    private static final long STOP_DELIVERY_SLACK_MILLIS = 50;

    private Process startChild(String node) throws IOException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        return new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), LeaseHolderChild.class.getName(),
                zookeeper.connectString(), zookeeper.storeId, node, LOCK, Long.toString(LEASE_MILLIS))
                .redirectError(ProcessBuilder.Redirect.DISCARD)
                .start();
    }

    private static BufferedReader reader(Process process) {
        return new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
    }

    private static long heldToken(BufferedReader childOut) throws IOException {
        String line = childOut.readLine();
        assertTrue(line != null && line.startsWith("HELD "), "child said: " + line);
        return Long.parseLong(line.substring("HELD ".length()));
    }

    /** Sends SIGSTOP or SIGCONT and waits for kill(1) to return, by which time the signal was delivered. */
    private static void signal(Process process, String signal) throws IOException, InterruptedException {
        Process kill = new ProcessBuilder("kill", "-" + signal, Long.toString(process.pid())).inheritIO().start();
        assertTrue(kill.waitFor(10, TimeUnit.SECONDS));
    }
}
