package io.cairn.volume;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.alloc.ExtentLeaser;
import io.cairn.alloc.SharedCounters;
import io.cairn.alloc.SpaceMap;
import io.cairn.cluster.Lease;
import io.cairn.cluster.LockHolder;
import io.cairn.cluster.ZooKeeperFixture;
import io.cairn.cluster.ZooKeeperLockManager;
import io.cairn.format.ExtentRecord;
import io.cairn.format.Layout;
import io.cairn.format.Pointer;
import io.cairn.gc.CheckReport;
import io.cairn.gc.Checker;
import io.cairn.io.FileBlockDevice;
import io.cairn.io.StorageException;
import io.cairn.tree.RootRef;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.zookeeper.ZooKeeper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Extent leases (docs/CLUSTER.md, "Extent leases"; SpaceMap design note 8): node stores sharing one file,
 * each allocating only in extents it leased from a real ZooKeeper server ({@link ZooKeeperFixture}) through
 * its {@link ExtentLeaser}. The disks' own leases are given as always valid, so what is tested is the extents'.
 */
class ExtentLeasesTest {

    private static final long STORE_BYTES = 64L << 20;
    /** 2 MiB extents: a node fills one with a few writes. */
    private static final int EXTENT_BLOCKS = 512;
    private static final long DISK_BYTES = 32L << 20;

    @TempDir
    Path dir;

    /** Node ids whose members count as live for the leasers. */
    private final Set<Integer> live = java.util.concurrent.ConcurrentHashMap.newKeySet();

    private Store node(int id) {
        return Store.openShared(FileBlockDevice.open(dir.resolve("store.cairn"), false), null, StoreOptions.defaults(), id,
                dir.resolve("store.live"), Duration.ofSeconds(10));
    }

    private String format() {
        return format(STORE_BYTES);
    }

    private String format(long storeBytes) {
        try (Store store = Store.formatFile(dir.resolve("store.cairn"), storeBytes, EXTENT_BLOCKS, StoreOptions.defaults())) {
            return store.storeId().toString();
        }
    }

    /** Runs the leasers' refills in the background, as a cluster node's scan thread does. */
    private final java.util.concurrent.ExecutorService refills = java.util.concurrent.Executors.newSingleThreadExecutor();

    /** Runs refills every scan interval (T/4), as a cluster node's scan thread does. */
    private final java.util.concurrent.ScheduledExecutorService scans = java.util.concurrent.Executors.newSingleThreadScheduledExecutor();

    @org.junit.jupiter.api.AfterEach
    void stopRefills() {
        refills.shutdownNow();
        scans.shutdownNow();
    }

    /** Refills {@code leaser} every T/4 from now on, as the node's scan thread would. */
    private void scan(ExtentLeaser leaser) {
        long periodMillis = ZooKeeperFixture.TIMEOUTS.lease().toMillis() / 4;
        scans.scheduleWithFixedDelay(() -> {
            try {
                leaser.refill();
            } catch (RuntimeException closed) {
                // a scan just before the test closed the node's lock manager
            }
        }, periodMillis, periodMillis, TimeUnit.MILLISECONDS);
    }

    private ExtentLeaser lease(Store store, ZooKeeperLockManager locks) {
        live.add(store.node());
        java.util.concurrent.atomic.AtomicReference<ExtentLeaser> self = new java.util.concurrent.atomic.AtomicReference<>();
        ExtentLeaser leaser = store.leaseExtents(locks, () -> {
            locks.members(); // asks the coordinator, as a cluster node's list of live node ids does
            return Set.copyOf(live);
        }, () -> refills.execute(() -> {
            try {
                self.get().refill();
            } catch (IllegalStateException closed) {
                // a refill asked for just before the test closed the node's lock manager
            }
        }));
        self.set(leaser);
        leaser.refill();
        return leaser;
    }

    /** A ZooKeeper server and one node (id 11) on a fresh store, serving disk {@code vm}; closed in reverse. */
    private record OneNode(ZooKeeperFixture zk, String storeId, ZooKeeperLockManager locks, Store store, ExtentLeaser leaser)
            implements AutoCloseable {

        @Override
        public void close() throws Exception {
            try (zk; locks; store) {
                // closes the store, then the lock manager, then the server
            }
        }
    }

    private OneNode oneNode() throws Exception {
        String storeId = format();
        ZooKeeperFixture zk = new ZooKeeperFixture();
        ZooKeeperLockManager locks = zk.node("a", storeId);
        Store store = node(11);
        return new OneNode(zk, storeId, locks, store, serveDisk(store, locks, "vm", 1));
    }

    /** Starts leasing for {@code store} (as a node joining its cluster does), creates {@code disk} and holds it. */
    private ExtentLeaser serveDisk(Store store, ZooKeeperLockManager locks, String disk, long token) {
        ExtentLeaser leaser = lease(store, locks);
        store.create(disk, DISK_BYTES);
        store.hold(disk, token, () -> true);
        return leaser;
    }

    /**
     * Writes {@code megabytes} of fresh data to {@code disk} from {@code offsetBytes}, then flushes. With a 2 MiB
     * extent and one spare, a burst of writes can use up the spare before the background refill has run: the
     * leaser (if given) is refilled after every MiB, as the refill would be long before a 64 MiB spare fills.
     */
    private static void write(Store store, ExtentLeaser leaser, String disk, long offsetBytes, int megabytes, int seed) {
        try (Volume volume = store.openVolume(disk)) {
            for (int i = 0; i < megabytes; i++) {
                volume.write(offsetBytes + ((long) i << 20), ByteBuffer.wrap(ModelSupport.randomBytes(seed + i, 1 << 20)), false);
                if (leaser != null) {
                    leaser.refill();
                }
            }
            volume.flush();
        }
    }

    /** The extents holding {@code disk}'s data blocks in {@code [offsetBytes, offsetBytes + lengthBytes)}. */
    private static Set<Integer> dataExtents(Store store, String disk, long offsetBytes, long lengthBytes) {
        long id = store.vdi(disk).id();
        return store.inspect(internals -> {
            RootRef root = internals.vdiRoots().get(id);
            Set<Integer> extents = new TreeSet<>();
            for (long index = offsetBytes / Layout.BLOCK_BYTES; index < (offsetBytes + lengthBytes) / Layout.BLOCK_BYTES; index++) {
                long pointer = internals.trees().lookup(root.root(), root.height(), index);
                if (!Pointer.isHole(pointer)) {
                    extents.add(internals.space().geometry().extentOf(Pointer.blockOf(pointer)));
                }
            }
            return extents;
        });
    }

    private static ExtentRecord record(Store store, int extent) {
        return store.inspect(internals -> internals.space().extent(extent));
    }

    private static Lease extentLease(Store store, int extent) {
        return store.inspect(internals -> internals.space().extentLease(extent));
    }

    /** Every extent this node's records name, with its record. */
    private static Map<Integer, ExtentRecord> recordsOf(Store store, int node) {
        return store.inspect(internals -> {
            Map<Integer, ExtentRecord> mine = new TreeMap<>();
            for (int extent = 0; extent < internals.space().extentCount(); extent++) {
                ExtentRecord record = internals.space().extent(extent);
                if (record.holder() == node && record.type() != ExtentRecord.Type.SYSTEM) {
                    mine.put(extent, record);
                }
            }
            return mine;
        });
    }

    private static void assertClean(Path file) {
        try (Store alone = Store.openFile(file, StoreOptions.defaults())) {
            CheckReport report = Checker.check(alone);
            assertTrue(report.clean(), report.toString());
        }
    }

    @Test
    void aNodeAllocatesOnlyInLeasedExtentsAndTheirRecordsCarryTheLeaseTokens() throws Exception {
        String storeId = format();
        try (ZooKeeperFixture zk = new ZooKeeperFixture(); ZooKeeperLockManager locks = zk.node("a", storeId);
             Store a = node(11)) {
            ExtentLeaser leaser = lease(a, locks);
            assertEquals(1, leaser.target(SpaceMap.Purpose.DATA), "a 32-extent store allows one data spare per node");
            assertEquals(1, leaser.spares(SpaceMap.Purpose.DATA));
            assertEquals(1, leaser.spares(SpaceMap.Purpose.METADATA));
            a.create("vm", DISK_BYTES);
            a.hold("vm", 1, () -> true);
            write(a, leaser, "vm", 0, 5, 1); // more than two extents of data: spares are taken and refilled
            leaser.refill();
            a.commit();

            Map<Integer, ExtentRecord> mine = recordsOf(a, 11);
            Set<Integer> data = dataExtents(a, "vm", 0, 5L << 20);
            assertTrue(data.size() >= 3, "5 MiB of data spans at least three 2 MiB extents: " + data);
            assertTrue(mine.keySet().containsAll(data), "every data block is in an extent this node's records name");
            for (Map.Entry<Integer, ExtentRecord> entry : mine.entrySet()) {
                int extent = entry.getKey();
                LockHolder holder = locks.holder(ExtentLeaser.lockName(extent)).orElseThrow(
                        () -> new AssertionError("extent " + extent + " is claimed without a lease"));
                assertEquals("a", holder.node());
                assertEquals(holder.fencingToken(), entry.getValue().fencingToken(),
                        "the record of extent " + extent + " carries its lease's token");
                assertEquals(entry.getValue().type().name().toLowerCase(), holder.notes().get(ExtentLeaser.TYPE_NOTE));
                assertEquals(ExtentLeaser.USE_ALLOCATING, holder.notes().get(ExtentLeaser.USE_NOTE),
                        "the lock of extent " + extent + " says it is allocated in, for cairn nodes");
            }
            assertEquals(1, leaser.spares(SpaceMap.Purpose.DATA), "the pool was refilled");
            for (LockHolder lock : locks.locks()) {
                int extent = ExtentLeaser.extentOf(lock.lockName());
                if (extent >= 0 && !mine.containsKey(extent)) {
                    assertEquals(ExtentLeaser.USE_SPARE, lock.notes().get(ExtentLeaser.USE_NOTE), "extent " + extent + " is a spare");
                }
            }
        }
        assertClean(dir.resolve("store.cairn"));
    }

    @Test
    void withNoSpareLeftAndZooKeeperAwayAllocationFailsAndNoUnleasedExtentIsClaimed() throws Exception {
        try (OneNode node = oneNode()) {
            node.zk().stop();
            node.leaser().refill(); // waits T/2 for the coordinator, then records why the pool stays as it is
            Store a = node.store();
            StorageException full = assertThrows(StorageException.class, () -> write(a, null, "vm", 0, 8, 1));
            assertEquals(StorageException.Code.NO_SPACE, full.code());
            assertTrue(full.getMessage().matches("no free (data|metadata) block left in the extents this node holds leases on, "
                    + "and no spare extent: the coordinator is unreachable: ZooKeeper at \\S+ unreachable for [0-9.]+ s "
                    + "\\(this node keeps 1 spare (data|metadata) extent\\(s\\)\\)"), full.getMessage());
            Set<Integer> claimed = a.inspect(internals -> {
                Set<Integer> extents = new HashSet<>();
                for (int extent = 0; extent < internals.space().extentCount(); extent++) {
                    if (internals.space().holds(extent)) {
                        extents.add(extent);
                    }
                }
                return extents;
            });
            for (int extent : claimed) {
                assertNotNull(extentLease(a, extent), "extent " + extent + " was claimed without a lease");
            }
            assertTrue(claimed.size() <= 4, "at most the two spares leased up front and one refill each: " + claimed);
            node.zk().restart();
            node.leaser().refill();
            write(a, node.leaser(), "vm", 0, 8, 1); // ZooKeeper back: new spares, allocation goes on
            a.commit();
        }
        assertClean(dir.resolve("store.cairn"));
    }

    @Test
    void aLostLeaseStopsNothingUntilAnotherNodeTakesTheExtentAndATakeoverStopsAllocationThere() throws Exception {
        try (OneNode node = oneNode(); ZooKeeperLockManager locksB = node.zk().node("b", node.storeId()); Store b = node(12)) {
            Store a = node.store();
            write(a, node.leaser(), "vm", 0, 1, 1);
            a.commit();
            int extent = dataExtents(a, "vm", 0, 1 << 20).iterator().next();
            long oldToken = record(a, extent).fencingToken();
            Lease lease = extentLease(a, extent);

            // Somebody deletes the lock znode: the lease is lost, but nobody has taken the extent.
            deleteLock(node.zk(), node.storeId(), extent);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (!lease.isLost() && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertTrue(lease.isLost(), "the lease is lost once its znode is gone");
            writeBlocks(a, "vm", 1 << 20, 64, 2);
            assertEquals(Set.of(extent), dataExtents(a, "vm", 1 << 20, 64L * Layout.BLOCK_BYTES),
                    "an extent nobody took is still allocated in");

            // Node a is no longer a live member; b needs space and takes the extent over (its lock is free).
            live.remove(11);
            serveDisk(b, locksB, "vb", 2);
            writeBlocks(b, "vb", 0, 64, 3);
            assertEquals(Set.of(extent), dataExtents(b, "vb", 0, 64L * Layout.BLOCK_BYTES), "b took a's extent over first");
            writeBlocks(a, "vm", 2 << 20, 64, 4);
            assertFalse(dataExtents(a, "vm", 2 << 20, 64L * Layout.BLOCK_BYTES).contains(extent),
                    "nothing more is allocated in an extent another node took over");
            b.commit();
            a.commit();
            ExtentRecord theirs = record(b, extent);
            assertEquals(12, theirs.holder());
            assertTrue(theirs.fencingToken() > oldToken, "a new lease, a newer token: " + theirs + " after " + oldToken);
            assertEquals(locksB.holder(ExtentLeaser.lockName(extent)).orElseThrow().fencingToken(), theirs.fencingToken());
            assertEquals(theirs, record(a, extent), "node a's commit kept b's record");
        }
        assertClean(dir.resolve("store.cairn"));
    }

    /** Writes {@code blocks} fresh 4 KiB blocks to {@code disk} from {@code offsetBytes} in one request, then flushes. */
    private static void writeBlocks(Store store, String disk, long offsetBytes, int blocks, int seed) {
        try (Volume volume = store.openVolume(disk)) {
            volume.write(offsetBytes, ByteBuffer.wrap(ModelSupport.randomBytes(seed, blocks * Layout.BLOCK_BYTES)), false);
            volume.flush();
        }
    }

    @Test
    void aDeadNodesExtentsAreTakenOverByTheNextNodeThatNeedsOne() throws Exception {
        String storeId = format();
        Map<Integer, ExtentRecord> deadOnes;
        try (ZooKeeperFixture zk = new ZooKeeperFixture()) {
            ZooKeeperLockManager locksA = zk.node("a", storeId);
            Store a = node(11);
            ExtentLeaser leaserA = serveDisk(a, locksA, "va", 1);
            write(a, leaserA, "va", 0, 1, 1);
            a.commit();
            deadOnes = recordsOf(a, 11);
            try (ZooKeeperLockManager locksB = zk.node("b", storeId); Store b = node(12)) {
                ExtentLeaser leaserB = serveDisk(b, locksB, "vb", 2);
                // Node a dies: its leases and membership end; its records still name it.
                a.close();
                leaserA.close();
                locksA.close();
                live.remove(11);

                leaserB.refill(); // leases one of a's extents per purpose beyond its spares
                write(b, leaserB, "vb", 0, 3, 2);
                b.commit();
                Map<Integer, ExtentRecord> taken = recordsOf(b, 12);
                taken.keySet().retainAll(deadOnes.keySet());
                assertFalse(taken.isEmpty(), "b needed extents and took a's over: a had " + deadOnes + ", b has "
                        + recordsOf(b, 12));
                for (Map.Entry<Integer, ExtentRecord> entry : taken.entrySet()) {
                    ExtentRecord before = deadOnes.get(entry.getKey());
                    assertEquals(before.type(), entry.getValue().type(), "a takeover keeps the extent's type");
                    assertTrue(entry.getValue().fencingToken() > before.fencingToken(), "newer token: " + entry);
                    assertEquals(locksB.holder(ExtentLeaser.lockName(entry.getKey())).orElseThrow().fencingToken(),
                            entry.getValue().fencingToken());
                }
                assertTrue(taken.values().stream().anyMatch(record -> record.type() == ExtentRecord.Type.DATA),
                        "the data extent a wrote in is allocated in by b now: " + taken);
                assertNotEquals(Set.of(), dataExtents(b, "vb", 0, 3L << 20));
            }
        }
        assertClean(dir.resolve("store.cairn"));
    }

    @Test
    void aCommitNeverWritesAnExtentRecordOverOneWrittenUnderANewerLease() throws Exception {
        String storeId = format();
        ExtentRecord theirsAtTheEnd;
        int extentTaken;
        try (ZooKeeperFixture zk = new ZooKeeperFixture(); ZooKeeperLockManager locksA = zk.node("a", storeId);
             ZooKeeperLockManager locksB = zk.node("b", storeId); Store a = node(11); Store b = node(12)) {
            ExtentLeaser leaserA = serveDisk(a, locksA, "va", 1);
            write(a, leaserA, "va", 0, 1, 1);
            a.commit();
            int extent = dataExtents(a, "va", 0, 1 << 20).iterator().next();
            ExtentRecord mine = record(a, extent);

            // Node a is cut off (its lease on the extent lost, no longer a live member); b takes the extent over.
            deleteLock(zk, storeId, extent);
            live.remove(11);
            ExtentLeaser leaserB = serveDisk(b, locksB, "vb", 2);
            write(b, leaserB, "vb", 0, 1, 2);
            b.commit();
            ExtentRecord theirs = record(b, extent);
            assertEquals(12, theirs.holder(), "b took the extent over");
            assertTrue(theirs.fencingToken() > mine.fencingToken());

            // As node a would see it from another host: its own holder word still names it. Its next commit reads
            // the newer token on disk, stops allocating there and keeps the durable record, not its own.
            UUID id = UUID.fromString(storeId);
            try (SharedCounters words = SharedCounters.attach(dir.resolve("store.live"), id, a.geometry(), 0,
                    built -> { throw new AssertionError("the counters are live: nothing to build"); })) {
                words.setExtentHolder(extent, 11, ExtentRecord.Type.DATA);
                a.create("va2", DISK_BYTES); // an admin change: rebases, then commits
                assertEquals(theirs, record(a, extent), "node a keeps the newer record");
                assertEquals(null, extentLease(a, extent));
                words.setExtentHolder(extent, 12, ExtentRecord.Type.DATA);
            }
            a.commit();
            theirsAtTheEnd = theirs;
            extentTaken = extent;
        }
        try (Store alone = Store.openFile(dir.resolve("store.cairn"), StoreOptions.defaults().withReadOnly(true))) {
            assertEquals(theirsAtTheEnd, record(alone, extentTaken), "the durable record is b's");
        }
        assertClean(dir.resolve("store.cairn"));
    }

    /** 16 MiB in 2 MiB extents: the system extent and seven more, about three per node of two. */
    private static final long SMALL_STORE_BYTES = 16L << 20;

    /** The extents {@code locks}' node holds leases on that nobody has claimed yet: its spares of {@code type}. */
    private static Set<Integer> spares(ZooKeeperLockManager locks, Store view, ExtentRecord.Type type) {
        Set<Integer> spares = new TreeSet<>();
        for (LockHolder lock : locks.locks()) {
            if (lock.node().equals(locks.nodeName()) && lock.lockName().startsWith(ExtentLeaser.LOCK_PREFIX)
                    && type.name().toLowerCase().equals(lock.notes().get(ExtentLeaser.TYPE_NOTE))) {
                int extent = Integer.parseInt(lock.lockName().substring(ExtentLeaser.LOCK_PREFIX.length()));
                if (!view.inspect(internals -> internals.space().holds(extent))) {
                    spares.add(extent);
                }
            }
        }
        return spares;
    }

    /**
     * Outcome of {@link #fill}: the 1 MiB pieces written and flushed, the NO_SPACE that ended it and how long into
     * the refused write it came, and the slowest piece written (one that waited for a spare, if any did).
     */
    private record Filled(int pieces, StorageException full, long failedAfterMillis, long slowestPieceMillis) {
    }

    /**
     * Writes fresh 1 MiB pieces (seed {@code seed + i}) to {@code disk} until the store says NO_SPACE, flushing each,
     * without refilling by hand: the store's takes and waits drive the leaser, as on a cluster node.
     */
    private static Filled fill(Store store, String disk, int seed) {
        try (Volume volume = store.openVolume(disk)) {
            long slowestMillis = 0;
            for (int i = 0; (long) i << 20 < DISK_BYTES; i++) {
                long started = System.nanoTime();
                try {
                    volume.write((long) i << 20, ByteBuffer.wrap(ModelSupport.randomBytes(seed + i, 1 << 20)), false);
                    volume.flush();
                    slowestMillis = Math.max(slowestMillis, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started));
                } catch (StorageException full) {
                    if (full.code() != StorageException.Code.NO_SPACE) {
                        throw full;
                    }
                    return new Filled(i, full, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started), slowestMillis);
                }
            }
        }
        throw new AssertionError("a " + (DISK_BYTES >> 20) + " MiB disk never filled a " + (SMALL_STORE_BYTES >> 20) + " MiB store");
    }

    /** Reads back the first {@code pieces} MiB of {@code disk} and compares them with what {@link #fill} wrote. */
    private static void assertPieces(Store store, String disk, int pieces, int seed) {
        try (Volume volume = store.openVolume(disk)) {
            for (int i = 0; i < pieces; i++) {
                ByteBuffer read = ByteBuffer.allocate(1 << 20);
                volume.read((long) i << 20, read);
                assertTrue(java.util.Arrays.equals(ModelSupport.randomBytes(seed + i, 1 << 20), read.array()),
                        "MiB " + i + " of " + disk + " reads back as written");
            }
        }
    }

    @Test
    void aNodeOutOfExtentsGetsAnotherNodesSpareGivenBackInsteadOfNoSpace() throws Exception {
        String storeId = format(SMALL_STORE_BYTES);
        try (ZooKeeperFixture zk = new ZooKeeperFixture(); ZooKeeperLockManager locksA = zk.node("a", storeId);
             ZooKeeperLockManager locksB = zk.node("b", storeId); Store a = node(11); Store b = node(12)) {
            ExtentLeaser leaserA = serveDisk(a, locksA, "va", 1);
            ExtentLeaser leaserB = serveDisk(b, locksB, "vb", 2);
            scan(leaserA);
            scan(leaserB);
            leaserB.refill();
            Set<Integer> sparesOfB = spares(locksB, b, ExtentRecord.Type.DATA);
            assertEquals(1, sparesOfB.size(), "b keeps one data spare: " + sparesOfB);

            Filled filled = fill(a, "va", 100);
            System.out.println("give-back: a wrote " + filled.pieces() + " MiB (slowest 1 MiB write, the one that waited "
                    + "for b's spare: " + filled.slowestPieceMillis() + " ms), refused " + filled.failedAfterMillis()
                    + " ms into the last write: " + filled.full().getMessage());
            a.commit();
            assertTrue(recordsOf(a, 11).keySet().containsAll(sparesOfB),
                    "a allocates in the data spare b gave back: " + sparesOfB + ", a's extents " + recordsOf(a, 11));
            assertEquals(Set.of(), spares(locksB, b, ExtentRecord.Type.DATA), "b leased no data spare while a waited");
            assertEquals(1, spares(locksB, b, ExtentRecord.Type.METADATA).size(), "b's metadata spare was not asked for");
            // Nothing is left to give back: the store is full for a, with the reason, without a full wait.
            assertTrue(filled.full().getMessage().startsWith("no free data block left in the extents this node holds leases "
                    + "on, and no spare extent: no extent of the store's 8 is free, and no other node holds a spare data "
                    + "extent it could give back"), filled.full().getMessage());
            assertTrue(filled.failedAfterMillis() < ZooKeeperFixture.TIMEOUTS.lease().toMillis(),
                    "failed as soon as nothing could come: " + filled.failedAfterMillis() + " ms");
            assertTrue(filled.pieces() >= 5, "a wrote into three data extents (its spare, the free one, b's), less their "
                    + "counter blocks: " + filled.pieces() + " MiB");
            assertPieces(a, "va", filled.pieces(), 100);
            StorageException fullForB = assertThrows(StorageException.class, () -> writeBlocks(b, "vb", 0, 16, 7));
            assertTrue(fullForB.getMessage().contains("no extent of the store's 8 is free, and no other node holds a spare "
                    + "data extent it could give back"), "b gave its data spare away and the store is full: "
                    + fullForB.getMessage());
            b.commit();
            a.commit();
            assertPieces(a, "va", filled.pieces(), 100);
        }
        assertClean(dir.resolve("store.cairn"));
    }

    @Test
    void aNodeWhoseSpareIsNotGivenBackFailsWithNoSpaceAfterTheBoundedWait() throws Exception {
        String storeId = format(SMALL_STORE_BYTES);
        try (ZooKeeperFixture zk = new ZooKeeperFixture(); ZooKeeperLockManager locksA = zk.node("a", storeId);
             ZooKeeperLockManager locksB = zk.node("b", storeId); Store a = node(11); Store b = node(12)) {
            serveDisk(a, locksA, "va", 1);
            ExtentLeaser leaserB = serveDisk(b, locksB, "vb", 2);
            leaserB.refill(); // and never again: b is stuck and does not look for wants
            Set<Integer> sparesOfB = spares(locksB, b, ExtentRecord.Type.DATA);
            assertEquals(1, sparesOfB.size());

            Filled filled = fill(a, "va", 200);
            System.out.println("no give-back: a wrote " + filled.pieces() + " MiB, refused " + filled.failedAfterMillis()
                    + " ms into the last write: " + filled.full().getMessage());
            long waitMillis = ZooKeeperFixture.TIMEOUTS.lease().toMillis();
            assertTrue(filled.failedAfterMillis() >= waitMillis && filled.failedAfterMillis() < waitMillis + 2000,
                    "waited the bounded time, one lease timeout: " + filled.failedAfterMillis() + " ms");
            assertTrue(filled.full().getMessage().matches("no free data block left in the extents this node holds leases on, "
                    + "and no spare extent: no spare came within 2.0 s: asked the other nodes to give back spare data "
                    + "extents \\(1 held by b\\); none came back in time \\(this node keeps \\d+ spare data extent\\(s\\)\\)"),
                    filled.full().getMessage());
            assertEquals(sparesOfB, spares(locksB, b, ExtentRecord.Type.DATA), "b still holds its spare");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            while (locksA.holder(ExtentLeaser.wantLockName(SpaceMap.Purpose.DATA)).isPresent() && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertFalse(locksA.holder(ExtentLeaser.wantLockName(SpaceMap.Purpose.DATA)).isPresent(),
                    "a stopped wanting when it gave up");
            a.commit();
            assertPieces(a, "va", filled.pieces(), 200);
        }
        assertClean(dir.resolve("store.cairn"));
    }

    /**
     * Three nodes write 1 MiB pieces at random places of their disks (overwrites free blocks in their own extents
     * again) on a 24 MiB store, committing now and then. First all of them for a random while; then one random node
     * alone until it is refused: by then no other node may hold a spare of the purpose it was refused for (they gave
     * them back, and lease none while free extents are short), and for data no extent may be idle; then all of them in rounds until a round in which every
     * node is refused leaves no extent free and unleased and no data spare anywhere. Every acknowledged piece reads
     * back; the checker is clean. Replay with {@code -Dcairn.seed=N}.
     */
    @Test
    void randomWritesOnThreeNodesFillTheStoreThroughGiveBacks() throws Exception {
        long seed = Long.getLong("cairn.seed", System.nanoTime());
        System.out.println("ExtentLeasesTest.randomWritesOnThreeNodesFillTheStoreThroughGiveBacks seed " + seed
                + " (replay with -Dcairn.seed=" + seed + ")");
        java.util.Random random = new java.util.Random(seed);
        String storeId = format(24L << 20);
        try (ZooKeeperFixture zk = new ZooKeeperFixture();
             ZooKeeperLockManager locksA = zk.node("a", storeId); ZooKeeperLockManager locksB = zk.node("b", storeId);
             ZooKeeperLockManager locksC = zk.node("c", storeId);
             Store a = node(11); Store b = node(12); Store c = node(13)) {
            Store[] stores = {a, b, c};
            ZooKeeperLockManager[] locks = {locksA, locksB, locksC};
            RandomPieces pieces = new RandomPieces(random, stores, seed);
            for (int n = 0; n < 3; n++) {
                scan(serveDisk(stores[n], locks[n], "v" + n, n + 1));
            }
            for (int op = random.nextInt(8); op > 0; op--) {
                pieces.write(random.nextInt(3));
            }
            int alone = random.nextInt(3);
            String refused = null;
            for (int op = 0; op < 100 && refused == null; op++) {
                refused = pieces.write(alone);
            }
            assertNotNull(refused, "node " + alone + " filled the store (seed " + seed + ")");
            String purpose = refused.startsWith("no free data block") ? "data" : refused.startsWith("no free metadata block")
                    ? "metadata" : null;
            if (purpose != null) {
                for (LockHolder lock : locksA.locks()) {
                    boolean othersSpare = ExtentLeaser.extentOf(lock.lockName()) >= 0 && !lock.node().equals(locks[alone].nodeName())
                            && ExtentLeaser.USE_SPARE.equals(lock.notes().get(ExtentLeaser.USE_NOTE))
                            && purpose.equals(lock.notes().get(ExtentLeaser.TYPE_NOTE));
                    assertFalse(othersSpare, "node " + locks[alone].nodeName() + " was refused (" + refused + ") while "
                            + lock + " was a spare of another node (seed " + seed + ")");
                }
            }
            if ("data".equals(purpose)) {
                assertEquals("", idle(stores, locksA), "node " + locks[alone].nodeName() + " was refused (" + refused
                        + ") with extents idle (seed " + seed + ")");
            }
            boolean filled = false;
            for (int round = 0; round < 40 && !filled; round++) {
                boolean anyWrote = false;
                List<Integer> order = new java.util.ArrayList<>(List.of(0, 1, 2));
                java.util.Collections.shuffle(order, random);
                for (int n : order) {
                    anyWrote |= pieces.write(n) == null;
                }
                filled = !anyWrote && idle(stores, locksA).isEmpty();
            }
            assertEquals("", idle(stores, locksA), "every extent is claimed or a metadata spare (seed " + seed + "); refusals: "
                    + pieces.lastRefusals());
            for (int n = 0; n < 3; n++) {
                stores[n].commit();
                pieces.assertReadBack(n);
            }
        }
        assertClean(dir.resolve("store.cairn"));
    }

    /** 1 MiB pieces written to disk {@code vN} of node N, with a model of what each acknowledged piece holds. */
    private static final class RandomPieces {
        private final java.util.Random random;
        private final Store[] stores;
        private final long seed;
        private final List<Map<Integer, Integer>> written = new java.util.ArrayList<>();
        private final List<String> refusals = new java.util.ArrayList<>();

        RandomPieces(java.util.Random random, Store[] stores, long seed) {
            this.random = random;
            this.stores = stores;
            this.seed = seed;
            for (int n = 0; n < stores.length; n++) {
                written.add(new TreeMap<>());
            }
        }

        /** Writes a random piece on node {@code n} (and commits one time in four); the NO_SPACE message, or null. */
        String write(int n) {
            int piece = random.nextInt((int) (DISK_BYTES >> 20));
            int pieceSeed = random.nextInt();
            String refused = null;
            try (Volume volume = stores[n].openVolume("v" + n)) {
                volume.write((long) piece << 20, ByteBuffer.wrap(ModelSupport.randomBytes(pieceSeed, 1 << 20)), false);
                volume.flush();
                written.get(n).put(piece, pieceSeed);
            } catch (StorageException full) {
                assertEquals(StorageException.Code.NO_SPACE, full.code(), full.getMessage() + " (seed " + seed + ")");
                written.get(n).remove(piece); // partly written: not part of the model any more
                refused = full.getMessage();
                refusals.add("node " + n + ": " + refused);
            }
            if (random.nextInt(4) == 0) {
                stores[n].commit();
            }
            return refused;
        }

        String lastRefusals() {
            return String.join("\n", refusals.subList(Math.max(0, refusals.size() - 6), refusals.size()));
        }

        void assertReadBack(int n) {
            try (Volume volume = stores[n].openVolume("v" + n)) {
                for (Map.Entry<Integer, Integer> piece : written.get(n).entrySet()) {
                    ByteBuffer read = ByteBuffer.allocate(1 << 20);
                    volume.read((long) piece.getKey() << 20, read);
                    assertTrue(java.util.Arrays.equals(ModelSupport.randomBytes(piece.getValue(), 1 << 20), read.array()),
                            "node " + n + "'s MiB " + piece.getKey() + " reads back as written (seed " + seed + ")");
                }
            }
        }
    }

    /**
     * True if no extent is free and unleased and no node leases a data spare: each extent nobody claimed is some
     * node's metadata spare (their requests are for data).
     */
    private static String idle(Store[] nodes, ZooKeeperLockManager locks) {
        Map<Integer, LockHolder> leases = new TreeMap<>();
        for (LockHolder lock : locks.locks()) {
            if (ExtentLeaser.extentOf(lock.lockName()) >= 0) {
                leases.put(ExtentLeaser.extentOf(lock.lockName()), lock);
            }
        }
        StringBuilder idle = new StringBuilder();
        for (int extent = 1; extent < nodes[0].geometry().extentCount(); extent++) { // extent 0 is the system's
            int e = extent;
            boolean claimed = java.util.Arrays.stream(nodes).anyMatch(node -> node.inspect(internals -> internals.space().holds(e)));
            LockHolder lease = leases.get(extent);
            if (!claimed && (lease == null || !"metadata".equals(lease.notes().get(ExtentLeaser.TYPE_NOTE)))) {
                idle.append(" extent ").append(extent).append(lease == null ? " free and unleased" : " leased: " + lease);
            }
        }
        return idle.toString();
    }

    private static void deleteLock(ZooKeeperFixture zk, String storeId, int extent) throws Exception {
        CountDownLatch connected = new CountDownLatch(1);
        ZooKeeper client = new ZooKeeper(zk.connectString(), 5000, event -> {
            if (event.getState() == org.apache.zookeeper.Watcher.Event.KeeperState.SyncConnected) {
                connected.countDown();
            }
        });
        try {
            assertTrue(connected.await(10, TimeUnit.SECONDS));
            client.delete("/cairn/" + storeId + "/locks/extent:" + extent, -1);
        } finally {
            client.close();
        }
    }
}
