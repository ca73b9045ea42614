package io.cairn.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The ZooKeeper lock manager against a real ZooKeeper server (no mocks); lease timeout 2 s. */
class ZooKeeperLockManagerTest {

    private static final long LEASE_MILLIS = ZooKeeperFixture.TIMEOUTS.lease().toMillis();

    private ZooKeeperFixture zookeeper;

    @BeforeEach
    void startZooKeeper() throws Exception {
        zookeeper = new ZooKeeperFixture();
    }

    @AfterEach
    void stopZooKeeper() throws Exception {
        zookeeper.close();
    }

    @Test
    void leasesAreExclusiveAndTokensIncreaseAcrossHolders() {
        try (ZooKeeperLockManager a = zookeeper.node("a"); ZooKeeperLockManager b = zookeeper.node("b")) {
            Lease first = a.acquire("vdi/7", Duration.ZERO);
            assertTrue(first.isValid());
            first.checkValid();
            assertEquals(Optional.of(new LockHolder("vdi/7", "a", first.fencingToken())), b.holder("vdi/7"));

            LockHeldException refused = assertThrows(LockHeldException.class, () -> b.acquire("vdi/7", Duration.ofMillis(300)));
            assertEquals("a", refused.holder().node());
            assertEquals("lock vdi/7 is held by node a (fencing token " + first.fencingToken() + ")", refused.getMessage());
            // A lock this node holds is contended like any other.
            assertThrows(LockHeldException.class, () -> a.acquire("vdi/7", Duration.ZERO));

            Lease other = b.acquire("extent/12", Duration.ZERO);
            assertEquals(List.of(new LockHolder("extent/12", "b", other.fencingToken()),
                    new LockHolder("vdi/7", "a", first.fencingToken())), a.locks());

            first.release();
            assertFalse(first.isValid());
            LeaseLostException stale = assertThrows(LeaseLostException.class, first::checkValid);
            assertTrue(stale.getMessage().contains("released"), stale.getMessage());
            Lease second = b.acquire("vdi/7", Duration.ofSeconds(5));
            assertTrue(second.fencingToken() > first.fencingToken(), second.fencingToken() + " after " + first.fencingToken());
            second.release();
            Lease third = a.acquire("vdi/7", Duration.ofSeconds(5));
            assertTrue(third.fencingToken() > second.fencingToken(), third.fencingToken() + " after " + second.fencingToken());
            assertFalse(first.isLost(), "released, not lost");
        }
    }

    @Test
    void aWaitingAcquireGetsTheLockWhenTheHolderReleases() throws Exception {
        try (ZooKeeperLockManager a = zookeeper.node("a"); ZooKeeperLockManager b = zookeeper.node("b")) {
            Lease held = a.acquire("gc", Duration.ZERO);
            CompletableFuture<Lease> waiting = CompletableFuture.supplyAsync(() -> b.acquire("gc", Duration.ofSeconds(10)));
            Thread.sleep(200);
            assertFalse(waiting.isDone(), "b must wait while a holds the lock");
            long releasedNanos = System.nanoTime();
            held.release();
            Lease taken = waiting.get(10, TimeUnit.SECONDS);
            long waitedMillis = (System.nanoTime() - releasedNanos) / 1_000_000;
            assertTrue(waitedMillis < LEASE_MILLIS, "the deletion watch wakes the waiter at once, not after " + waitedMillis + " ms");
            assertEquals("b", taken.node());
            assertTrue(taken.fencingToken() > held.fencingToken());
        }
    }

    @Test
    void anExpiredSessionLosesItsLeasesAndAnotherNodeTakesOverWithAHigherToken() throws Exception {
        try (ZooKeeperLockManager a = zookeeper.node("a"); ZooKeeperLockManager b = zookeeper.node("b")) {
            Lease lease = a.acquire("vdi/3", Duration.ZERO);
            CountDownLatch lost = new CountDownLatch(1);
            lease.onLost(l -> lost.countDown());

            zookeeper.expireOnServer(a.sessionHandle());

            Lease taken = b.acquire("vdi/3", Duration.ofSeconds(10));
            assertTrue(taken.fencingToken() > lease.fencingToken());
            assertTrue(lost.await(10, TimeUnit.SECONDS), "a is told its lease is lost");
            assertFalse(lease.isValid());
            assertTrue(lease.isLost());
            assertTrue(assertThrows(LeaseLostException.class, lease::checkValid).getMessage().contains("lost"));
            // a rejoins in a new session: registered again, and able to contend again.
            awaitMembers(b, List.of("a", "b"));
            assertThrows(LockHeldException.class, () -> a.acquire("vdi/3", Duration.ZERO));
        }
    }

    @Test
    void leasesSelfFenceBeforeTheSessionCouldExpireAndOperationsFailClearlyWhileZooKeeperIsDown() throws Exception {
        try (ZooKeeperLockManager a = zookeeper.node("a")) {
            Lease lease = a.acquire("vdi/1", Duration.ZERO);
            AtomicReference<String> lostReason = new AtomicReference<>();
            lease.onLost(l -> lostReason.set(l.lostReason()));
            Thread.sleep(ZooKeeperFixture.TIMEOUTS.heartbeatMillis() * 2); // a heartbeat or two confirmed it

            long stoppedNanos = System.nanoTime();
            zookeeper.server.stop();
            // A short outage does not cost the lease: it stays valid for 2/3 of the lease timeout after
            // the last confirmation, which was at most one heartbeat before the stop.
            Thread.sleep(LEASE_MILLIS / 4);
            assertTrue(lease.isValid(), "valid during a short outage");

            long invalidNanos = awaitInvalid(lease);
            long fencedAfterMillis = (invalidNanos - stoppedNanos) / 1_000_000;
            // The server could expire the session no earlier than (its last contact + lease timeout), and
            // the last contact was at most one heartbeat and a round trip before the stop.
            long earliestExpiryMillis = LEASE_MILLIS - ZooKeeperFixture.TIMEOUTS.heartbeatMillis() - 50;
            // (Polling every millisecond on a loaded machine may notice it a little late.)
            assertTrue(fencedAfterMillis <= LEASE_MILLIS * 2 / 3 + 200,
                    "invalid " + fencedAfterMillis + " ms after the stop: the window is 2/3 of " + LEASE_MILLIS + " ms");
            assertTrue(fencedAfterMillis < earliestExpiryMillis, "self-fenced before the session could expire");

            long before = System.nanoTime();
            CoordinatorUnavailableException down = assertThrows(CoordinatorUnavailableException.class,
                    () -> a.acquire("vdi/2", Duration.ZERO));
            long failedAfterMillis = (System.nanoTime() - before) / 1_000_000;
            assertTrue(down.getMessage().matches("ZooKeeper at " + zookeeper.connectString() + " unreachable for \\d+\\.\\d s.*"),
                    down.getMessage());
            assertTrue(failedAfterMillis <= ZooKeeperFixture.TIMEOUTS.coordinatorWaitMillis() + 500,
                    "failed after " + failedAfterMillis + " ms");
            assertThrows(CoordinatorUnavailableException.class, a::members);

            zookeeper.server.restart();
            Lease again = a.acquire("vdi/1", Duration.ofSeconds(10));
            assertTrue(again.isValid());
            assertTrue(again.fencingToken() > lease.fencingToken());
            assertFalse(lease.isValid(), "a lapsed lease never becomes valid again");
            assertTrue(lease.isLost());
            assertTrue(lostReason.get() != null && lostReason.get().contains("not confirmed"), String.valueOf(lostReason.get()));
            awaitMembers(a, List.of("a")); // registered again in the session after the restart
        }
    }

    @Test
    void aLockZnodeDeletedByHandLosesTheLease() throws Exception {
        try (ZooKeeperLockManager a = zookeeper.node("a"); ZooKeeperLockManager b = zookeeper.node("b")) {
            Lease lease = a.acquire("extent/3", Duration.ZERO);
            CountDownLatch lost = new CountDownLatch(1);
            lease.onLost(l -> lost.countDown());
            b.sessionHandle().delete(Znodes.lock(zookeeper.storeId, "extent/3"), -1);
            assertTrue(lost.await(10, TimeUnit.SECONDS));
            assertFalse(lease.isValid());
            assertTrue(lease.lostReason().contains("was deleted"), lease.lostReason());
            Lease again = a.acquire("extent/3", Duration.ZERO);
            assertTrue(again.fencingToken() > lease.fencingToken());
        }
    }

    @Test
    void annotateChangesTheNotesOfAHeldLockOnlyAndKeepsTheLease() throws Exception {
        try (ZooKeeperLockManager a = zookeeper.node("a"); ZooKeeperLockManager b = zookeeper.node("b")) {
            Lease lease = a.acquire("extent/5", Duration.ZERO, java.util.Map.of("type", "data", "use", "spare"));
            assertTrue(a.annotate(lease, java.util.Map.of("type", "data", "use", "allocating")));
            assertEquals(Optional.of(new LockHolder("extent/5", "a", lease.fencingToken(),
                    java.util.Map.of("type", "data", "use", "allocating"))), b.holder("extent/5"));
            Thread.sleep(ZooKeeperFixture.TIMEOUTS.heartbeatMillis() * 2); // the data change must not look like a deletion
            assertTrue(lease.isValid(), "a lease whose notes changed is still held");
            assertThrows(IllegalArgumentException.class, () -> a.annotate(lease, java.util.Map.of("node", "b")));

            lease.release();
            Lease theirs = b.acquire("extent/5", Duration.ZERO, java.util.Map.of("type", "metadata"));
            assertFalse(a.annotate(lease, java.util.Map.of("type", "data")), "a released lease has no notes to change");
            assertEquals(java.util.Map.of("type", "metadata"), b.holder("extent/5").orElseThrow().notes(),
                    "the lock another node took since is untouched");
            assertTrue(theirs.isValid());
        }
    }

    @Test
    void electionFailsOverWhenTheLeaderLeaves() throws Exception {
        try (ZooKeeperLockManager a = zookeeper.node("a"); ZooKeeperLockManager b = zookeeper.node("b")) {
            Election electionA = a.elect("gc");
            assertTrue(electionA.awaitLeadership(Duration.ofSeconds(10)));
            Election electionB = b.elect("gc");
            assertFalse(electionB.awaitLeadership(Duration.ofMillis(300)));
            assertEquals(Optional.of("a"), electionB.leader());

            electionA.close();
            assertTrue(electionB.awaitLeadership(Duration.ofSeconds(10)), "b leads once a leaves");
            assertFalse(electionA.isLeader());
            assertEquals(Optional.of("b"), electionA.leader());
        }
    }

    @Test
    void membersAreTheLiveNodesAndADuplicateNameIsRefused() throws Exception {
        try (ZooKeeperLockManager a = zookeeper.node("a")) {
            try (ZooKeeperLockManager b = zookeeper.node("b")) {
                List<Member> members = a.members();
                assertEquals(List.of("a", "b"), members.stream().map(Member::name).toList());
                assertEquals(members, b.members(), "every node sees the same membership");
                Member memberB = members.get(1);
                assertEquals("127.0.0.1:10809", memberB.attributes().get("nbd"));
                assertEquals("/run/b.sock", memberB.attributes().get("admin"));
                assertEquals(Long.toString(ProcessHandle.current().pid()), memberB.attributes().get("pid"));

                long before = System.nanoTime();
                IllegalStateException duplicate = assertThrows(IllegalStateException.class, () -> zookeeper.node("b"));
                assertTrue(duplicate.getMessage().startsWith("node name b is already in use by a live member of store "
                        + zookeeper.storeId), duplicate.getMessage());
                assertTrue(duplicate.getMessage().contains("pid " + ProcessHandle.current().pid()), duplicate.getMessage());
                assertTrue((System.nanoTime() - before) / 1_000_000 >= LEASE_MILLIS, "waits one lease timeout for a dead namesake");
            }
            assertEquals(List.of("a"), a.members().stream().map(Member::name).toList());
        }
        IllegalArgumentException badName = assertThrows(IllegalArgumentException.class, () -> zookeeper.node("no/slash"));
        assertTrue(badName.getMessage().startsWith("invalid node name 'no/slash'"), badName.getMessage());
    }

    @Test
    void storesAreSeparateAndTheDirectoryShowsEachOne() {
        try (ZooKeeperLockManager a = zookeeper.node("a");
             ZooKeeperLockManager other = zookeeper.node("a", zookeeper.storeId + "-other");
             ClusterDirectory directory = ClusterDirectory.connect(zookeeper.connectString(), ZooKeeperFixture.TIMEOUTS)) {
            Lease lease = a.acquire("vdi/1", Duration.ZERO);
            Lease elsewhere = other.acquire("vdi/1", Duration.ZERO);
            assertTrue(elsewhere.isValid(), "the same lock name in another store is another lock");
            Election election = a.elect("gc");

            assertEquals(List.of(zookeeper.storeId, zookeeper.storeId + "-other"), directory.storeIds());
            ClusterDirectory.StoreView view = directory.store(zookeeper.storeId);
            assertEquals(List.of("a"), view.members().stream().map(Member::name).toList());
            assertEquals(List.of(new LockHolder("vdi/1", "a", lease.fencingToken())), view.locks());
            assertTrue(awaitLeader(directory, "gc"), "the directory names the gc leader");
            election.close();
        }
    }

    @Test
    void unreachableZooKeeperFailsTheConnectClearly() {
        String nowhere = "127.0.0.1:" + org.apache.curator.test.InstanceSpec.getRandomPort();
        long before = System.nanoTime();
        CoordinatorUnavailableException failure = assertThrows(CoordinatorUnavailableException.class,
                () -> ZooKeeperLockManager.connect(new ZooKeeperLockManager.Options(nowhere, "s", "a",
                        java.util.Map.of(), ZooKeeperFixture.TIMEOUTS)));
        assertTrue(failure.getMessage().startsWith("ZooKeeper at " + nowhere + " unreachable for "), failure.getMessage());
        assertTrue((System.nanoTime() - before) / 1_000_000 < LEASE_MILLIS + 1000);
    }

    private boolean awaitLeader(ClusterDirectory directory, String role) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() - deadline < 0) {
            if ("a".equals(directory.store(zookeeper.storeId).leaders().get(role))) {
                return true;
            }
            sleep(20);
        }
        return false;
    }

    private static void awaitMembers(LockManager manager, List<String> names) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        List<String> seen = List.of();
        while (System.nanoTime() - deadline < 0) {
            seen = manager.members().stream().map(Member::name).toList();
            if (seen.equals(names)) {
                return;
            }
            sleep(20);
        }
        assertEquals(names, seen);
    }

    /** Polls every millisecond; the nanoTime of the first poll that found the lease invalid. */
    private static long awaitInvalid(Lease lease) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (lease.isValid()) {
            assertTrue(System.nanoTime() - deadline < 0, "the lease never became invalid");
            sleep(1);
        }
        return System.nanoTime();
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}
