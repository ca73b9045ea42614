package io.cairn.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class EmbeddedLockManagerTest {

    @Test
    void leasesAreExclusiveNeverExpireAndTokensIncrease() throws Exception {
        try (EmbeddedLockManager manager = new EmbeddedLockManager("solo", Map.of("nbd", "127.0.0.1:10809"), 41)) {
            Lease first = manager.acquire("vdi/7", Duration.ZERO);
            assertEquals(42, first.fencingToken(), "tokens start above the floor");
            assertTrue(first.isValid());
            assertEquals(Optional.of(new LockHolder("vdi/7", "solo", 42)), manager.holder("vdi/7"));
            LockHeldException held = assertThrows(LockHeldException.class, () -> manager.acquire("vdi/7", Duration.ofMillis(50)));
            assertEquals("lock vdi/7 is held by node solo (fencing token 42)", held.getMessage());

            CompletableFuture<Lease> waiting = CompletableFuture.supplyAsync(() -> manager.acquire("vdi/7", Duration.ofSeconds(10)));
            Thread.sleep(50);
            assertFalse(waiting.isDone());
            first.release();
            Lease second = waiting.get(10, TimeUnit.SECONDS);
            assertTrue(second.fencingToken() > first.fencingToken());
            assertFalse(first.isValid());
            assertThrows(LeaseLostException.class, first::checkValid);
            assertEquals(List.of(new LockHolder("vdi/7", "solo", second.fencingToken())), manager.locks());
            assertEquals("solo", manager.members().getFirst().name());
            assertEquals("127.0.0.1:10809", manager.members().getFirst().attributes().get("nbd"));
        }
    }

    @Test
    void annotateChangesTheNotesOfAHeldLockOnly() {
        try (EmbeddedLockManager manager = new EmbeddedLockManager("solo")) {
            Lease lease = manager.acquire("extent/5", Duration.ZERO, Map.of("use", "spare"));
            assertTrue(manager.annotate(lease, Map.of("use", "allocating")));
            assertEquals(Map.of("use", "allocating"), manager.holder("extent/5").orElseThrow().notes());
            lease.release();
            Lease next = manager.acquire("extent/5", Duration.ZERO, Map.of("use", "spare"));
            assertFalse(manager.annotate(lease, Map.of("use", "allocating")), "a released lease has no notes to change");
            assertEquals(Map.of("use", "spare"), manager.holder("extent/5").orElseThrow().notes());
            assertTrue(next.isValid());
        }
    }

    @Test
    void closingReleasesEverythingAndRefusesNewWork() {
        EmbeddedLockManager manager = new EmbeddedLockManager("solo");
        Lease lease = manager.acquire("gc", Duration.ZERO);
        AtomicInteger lostCalls = new AtomicInteger();
        lease.onLost(l -> lostCalls.incrementAndGet());
        manager.close();
        assertFalse(lease.isValid());
        assertEquals(0, lostCalls.get(), "closing releases; it does not lose");
        assertThrows(IllegalStateException.class, () -> manager.acquire("gc", Duration.ZERO));
        manager.close();
    }

    @Test
    void theFirstCandidateLeadsUntilItLeaves() throws Exception {
        try (EmbeddedLockManager manager = new EmbeddedLockManager("solo")) {
            Election first = manager.elect("gc");
            Election second = manager.elect("gc");
            assertTrue(first.isLeader());
            assertFalse(second.awaitLeadership(Duration.ofMillis(20)));
            assertEquals(Optional.of("solo"), second.leader());
            first.close();
            assertTrue(second.awaitLeadership(Duration.ofSeconds(1)));
            second.close();
            assertEquals(Optional.empty(), second.leader());
        }
    }

    @Test
    void lostListenersRunOnceEvenWhenAddedAfterTheLoss() {
        Lease lease = new Lease("vdi/1", "solo", 1, ValidityEpoch.unlimited(), l -> { });
        AtomicInteger calls = new AtomicInteger();
        lease.onLost(l -> calls.incrementAndGet());
        assertTrue(lease.markLost("test"));
        assertFalse(lease.markLost("again"));
        lease.onLost(l -> calls.incrementAndGet());
        assertEquals(2, calls.get());
        assertEquals("test", lease.lostReason());
        assertTrue(assertThrows(LeaseLostException.class, lease::checkValid).getMessage().endsWith("lost: test"));
        lease.release();
        assertTrue(lease.isLost(), "release after loss changes nothing");
    }

    @Test
    void badNamesAreRefusedWithWhatIsAllowed() {
        assertEquals("invalid node name '': use 1 to 63 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit",
                assertThrows(IllegalArgumentException.class, () -> new EmbeddedLockManager("")).getMessage());
        try (EmbeddedLockManager manager = new EmbeddedLockManager("solo")) {
            for (String bad : List.of("", "/vdi", "vdi/", "vdi//7", "vdi:7", "a/b/c/d/e", "..", "-x")) {
                IllegalArgumentException refused = assertThrows(IllegalArgumentException.class, () -> manager.acquire(bad, Duration.ZERO));
                assertTrue(refused.getMessage().startsWith("invalid lock name '" + bad + "'"), refused.getMessage());
            }
            assertThrows(IllegalArgumentException.class, () -> manager.elect("g/c"));
        }
        assertThrows(IllegalArgumentException.class, () -> new EmbeddedLockManager("solo", Map.of("NBD", "x"), 0));
        assertThrows(IllegalArgumentException.class, () -> new EmbeddedLockManager("solo", Map.of("nbd", "a\nb"), 0));
        assertEquals("zk1:2181,zk2,[::1]:2182", Names.connectString(" zk1:2181,zk2,[::1]:2182 "));
        for (String bad : List.of("", "a b:1", "zk:99999", "zk:2181,", "zk:2181/chroot")) {
            assertTrue(assertThrows(IllegalArgumentException.class, () -> Names.connectString(bad)).getMessage()
                    .startsWith("invalid ZooKeeper address '" + bad + "': "), bad);
        }
        assertEquals("vdi:7", Names.lockSegment("vdi/7"));
        assertEquals("extent/data/12", Names.lockFromSegment(Names.lockSegment("extent/data/12")));
    }

    @Test
    void timeoutsDeriveFromTheLeaseTimeout() {
        LeaseTimeouts timeouts = new LeaseTimeouts(Duration.ofSeconds(12));
        assertEquals(12_000, timeouts.sessionTimeoutMillis());
        assertEquals(1_500, timeouts.heartbeatMillis());
        assertEquals(6_000, timeouts.coordinatorWaitMillis());
        assertEquals(600, timeouts.retryMillis());
        assertEquals(8_000_000_000L, LeaseTimeouts.validityNanos(12_000));
        assertThrows(IllegalArgumentException.class, () -> new LeaseTimeouts(Duration.ofMillis(100)));
        assertThrows(IllegalArgumentException.class, () -> new LeaseTimeouts(Duration.ofHours(1)));
    }
}
