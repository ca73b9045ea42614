package io.cairn.space;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.format.Layout;
import io.cairn.gc.CheckReport;
import io.cairn.gc.Checker;
import io.cairn.volume.SharedNodes;
import io.cairn.volume.SketchCatalog;
import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Space reports on a store served by several nodes (docs/CLUSTER.md, "Space reports"): three node stores in one
 * process over one file and one shared counter file. Two nodes write, snapshot and delete snapshots of their own
 * disks while the third reports on the whole store; the figures of the disks that stood still must be those the
 * store gives once every node has stopped and it is opened alone.
 */
class SharedSpaceReportTest {

    private static final long STORE_BYTES = 512L << 20;
    private static final int EXTENT_BLOCKS = 2048;
    private static final int BLOCK = Layout.BLOCK_BYTES;
    /** Big enough that the sketches of its snapshots leave exact mode (2^14 entries). */
    private static final long STILL_BYTES = 96L << 20;
    private static final long BUSY_BYTES = 16L << 20;

    @TempDir
    Path dir;

    private Path storeFile() {
        return dir.resolve("store.cairn");
    }

    private Store node(int id) {
        return SharedNodes.open(storeFile(), dir.resolve("store.live"), id, Duration.ofSeconds(10));
    }

    private static void write(Volume volume, long fromBlock, long blocks, SplittableRandom random) {
        byte[] data = new byte[256 * BLOCK];
        for (long block = fromBlock; block < fromBlock + blocks; block += 256) {
            int length = (int) Math.min(256, fromBlock + blocks - block) * BLOCK;
            random.nextBytes(data);
            volume.write(block * BLOCK, ByteBuffer.wrap(data, 0, length), false);
        }
    }

    @Test
    void aReportWhileOtherNodesWriteHasTheFiguresOfTheStoreAtRest() throws Exception {
        Store.formatFile(storeFile(), STORE_BYTES, EXTENT_BLOCKS, StoreOptions.defaults()).close();
        long seed = new SplittableRandom().nextLong();
        System.out.println("SharedSpaceReportTest seed " + seed);
        SplittableRandom random = new SplittableRandom(seed);
        List<DiskUsage.Report> reports = new ArrayList<>();
        List<SketchedSpace.Report> estimates = new ArrayList<>();
        Set<Long> stillSnapshots;
        try (Store a = node(1); Store b = node(2); Store c = node(3)) {
            // Disks that stand still while the report runs: all of a0, then two snapshots around an overwrite.
            a.create("a0", STILL_BYTES);
            a.hold("a0", 10, () -> true);
            try (Volume volume = a.openVolume("a0")) {
                write(volume, 0, STILL_BYTES / BLOCK, random);
                volume.flush();
                a.snapshot("a0", "full");
                write(volume, 0, 2048, random);
                volume.flush();
                a.snapshot("a0", "overwritten");
                write(volume, 4096, 100, random);
                volume.flush();
            }
            b.create("b0", BUSY_BYTES);
            b.hold("b0", 20, () -> true);
            try (Volume volume = b.openVolume("b0")) {
                write(volume, 1000, 1000, random);
                volume.flush();
            }
            b.snapshot("b0", "base");
            b.clone("b0-clone", "b0@base");
            b.hold("b0-clone", 21, () -> true);
            stillSnapshots = a.snapshots("a0").stream().map(SnapshotInfo::id).collect(Collectors.toSet());

            // Busy disks: writes, flushes, snapshots and deletions (which free blocks for reuse) on nodes 1 and 2.
            a.create("a1", BUSY_BYTES);
            a.hold("a1", 11, () -> true);
            b.create("b1", BUSY_BYTES);
            b.hold("b1", 22, () -> true);
            AtomicBoolean stop = new AtomicBoolean();
            List<Throwable> problems = java.util.Collections.synchronizedList(new ArrayList<>());
            List<Thread> writers = new ArrayList<>();
            Object[][] work = {{a, "a1", seed + 1}, {b, "b1", seed + 2}};
            for (Object[] job : work) {
                Store store = (Store) job[0];
                String disk = (String) job[1];
                writers.add(Thread.ofPlatform().start(() -> {
                    SplittableRandom own = new SplittableRandom((long) job[2]);
                    try (Volume volume = store.openVolume(disk)) {
                        while (!stop.get()) {
                            write(volume, own.nextLong(BUSY_BYTES / BLOCK - 8), 1 + own.nextInt(8), own);
                            if (own.nextInt(4) == 0) {
                                volume.flush();
                            }
                            if (own.nextInt(32) == 0) {
                                store.snapshot(disk, null);
                                List<SnapshotInfo> log = store.snapshots(disk);
                                if (log.size() > 2) {
                                    store.deleteSnapshot(log.get(own.nextInt(log.size() - 1)).reference());
                                }
                            }
                        }
                        volume.flush();
                    } catch (Throwable problem) {
                        problems.add(problem);
                    }
                }));
            }
            try (Volume unflushed = a.openVolume("a0")) {
                // Written and not committed: the checkpoint makes node 1 commit it (copies of shared radix nodes,
                // which count their children once more); a report from node 3's view alone would miss both.
                write(unflushed, 8000, 50, random);
                Thread.sleep(100);
                for (int round = 0; round < 4; round++) {
                    long started = System.nanoTime();
                    reports.add(DiskUsage.report(c, null));
                    long exactNanos = System.nanoTime() - started;
                    SketchCatalog catalog = c.sketchCatalog(false);
                    estimates.add(new SketchedSpace().report(catalog, stillSnapshots));
                    System.out.printf("SharedSpaceReportTest: exact report %.1f ms (%d radix nodes), estimate %.1f ms"
                            + " (%d deltas computed)%n", exactNanos / 1e6, reports.getLast().nodesVisited(),
                            (System.nanoTime() - started - exactNanos) / 1e6, catalog.computedNow());
                }
                IllegalStateException save = assertThrows(IllegalStateException.class, () -> c.sketchCatalog(true));
                assertTrue(save.getMessage().contains("only the node holding a disk writes"), save.getMessage());
            } finally {
                stop.set(true);
                for (Thread writer : writers) {
                    writer.join();
                }
            }
            assertEquals(List.of(), problems, "seed " + seed);
            CheckReport online = Checker.check(a);
            assertTrue(online.clean(), "seed " + seed + ": " + online);
        }

        try (Store alone = Store.openFile(storeFile(), StoreOptions.defaults())) {
            CheckReport report = Checker.check(alone);
            assertTrue(report.clean(), "seed " + seed + ": " + report);
            List<DiskUsage.Entry> atRest = still(DiskUsage.report(alone, null));
            for (DiskUsage.Report during : reports) {
                assertEquals(atRest, still(during), "the disks that stood still, reported while the others wrote (seed "
                        + seed + ")");
                assertTrue(during.entries().stream().anyMatch(entry -> entry.version().vdiName().equals("a1")),
                        "the busy disks are reported too");
            }
            DiskUsage.Entry live = atRest.stream().filter(entry -> entry.version().reference().equals("a0")).findFirst().orElseThrow();
            assertEquals(STILL_BYTES / BLOCK, live.usage().mappedDataBlocks(), "a0 maps every block of its 96 MiB");
            assertEquals(150, live.usage().exclusiveDataBlocks(), "only what was written after the last snapshot is a0's alone");
            assertEquals(150L * BLOCK, live.writtenBytes());

            ExactSpace.Counts exact = ExactSpace.count(alone, stillSnapshots);
            for (SketchedSpace.Report estimate : estimates) {
                assertEquals(2, estimate.snapshots());
                assertFalse(estimate.held().exact(), "past 2^14 blocks the sketches estimate");
                assertTrue(estimate.held().lowerBlocks() <= exact.heldBlocks() && exact.heldBlocks() <= estimate.held().upperBlocks(),
                        "held " + exact.heldBlocks() + " within " + estimate.held() + " (seed " + seed + ")");
                assertTrue(estimate.freed().lowerBlocks() <= exact.freedBlocks() && exact.freedBlocks() <= estimate.freed().upperBlocks(),
                        "freed " + exact.freedBlocks() + " within " + estimate.freed() + " (seed " + seed + ")");
            }
        }
    }

    @Test
    void sketchesStoredWhileServedAloneAreUsedUntilTheyNoLongerApplyAndComputedOnesAreKept() throws Exception {
        SplittableRandom random = new SplittableRandom(7);
        try (Store alone = Store.formatFile(storeFile(), STORE_BYTES, EXTENT_BLOCKS, StoreOptions.defaults())) {
            alone.create("d", BUSY_BYTES);
            try (Volume volume = alone.openVolume("d")) {
                for (int round = 0; round < 3; round++) {
                    write(volume, round * 500L, 1000, random);
                    volume.flush();
                    alone.snapshot("d", "s" + round);
                }
            }
            assertEquals(3, alone.storeMissingSketches());
        }
        Set<Long> left;
        SketchedSpace.Report after;
        try (Store a = node(1); Store b = node(2)) {
            a.hold("d", 10, () -> true);
            assertEquals(0, b.sketchCatalog(false).computedNow(), "every snapshot's stored blob applies");

            a.deleteSnapshot("d@s1"); // s2's base is now s0: its blob no longer applies
            SketchCatalog recomputed = b.sketchCatalog(false);
            assertEquals(1, recomputed.computedNow(), "only the snapshot whose base changed is computed");
            assertEquals(0, b.sketchCatalog(false).computedNow(), "the node keeps what it computed");
            left = b.snapshots("d").stream().map(SnapshotInfo::id).collect(Collectors.toSet());
            after = new SketchedSpace().report(recomputed, left);
        }
        try (Store atRest = Store.openFile(storeFile(), StoreOptions.defaults())) {
            ExactSpace.Counts exact = ExactSpace.count(atRest, left);
            assertTrue(after.held().exact() && after.freed().exact(), "under 2^14 blocks the sketches are exact");
            assertEquals(exact.heldBlocks() * BLOCK, after.held().bytes());
            assertEquals(exact.freedBlocks() * BLOCK, after.freed().bytes());
            assertTrue(Checker.check(atRest).clean());
        }
    }

    @Test
    void theNodeHoldingADiskStoresItsSnapshotsSketchesAndEveryNodeUsesThem() throws Exception {
        Store.formatFile(storeFile(), STORE_BYTES, EXTENT_BLOCKS, StoreOptions.defaults()).close();
        SplittableRandom random = new SplittableRandom(11);
        StoreOptions worker = StoreOptions.defaults().withSketchWorker(true);
        Path counters = dir.resolve("store.live");
        try (Store a = SharedNodes.open(storeFile(), counters, 1, Duration.ofSeconds(10), worker);
             Store b = SharedNodes.open(storeFile(), counters, 2, Duration.ofSeconds(10), worker)) {
            Object[][] disks = {{a, "d", 10L}, {b, "e", 20L}};
            for (Object[] disk : disks) {
                Store holder = (Store) disk[0];
                String name = (String) disk[1];
                holder.create(name, BUSY_BYTES);
                holder.hold(name, (long) disk[2], () -> true);
                try (Volume volume = holder.openVolume(name)) {
                    for (int round = 0; round < 2; round++) {
                        write(volume, round * 700L, 1000, random);
                        volume.flush();
                        holder.snapshot(name, "s" + round);
                    }
                }
            }
            // Every snapshot is at least 2 s old before the workers store it; the blobs reach the device with the
            // holders' next commits, and each node sees the other's after a rebase (its own commit).
            long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            java.util.Map<Long, Long> blobs = java.util.Map.of();
            while (blobs.size() < 4 && System.nanoTime() < deadline) {
                Thread.sleep(200);
                a.commit();
                b.commit();
                blobs = a.inspect(Store.Internals::sketchBlobs);
            }
            assertEquals(4, blobs.size(), "each holder stored the blobs of its disk's snapshots: " + blobs);
            try (Store c = node(3)) {
                assertEquals(0, c.sketchCatalog(false).computedNow(), "a third node reads them all");
            }
            CheckReport online = Checker.check(b);
            assertTrue(online.clean(), "one blob per snapshot, each referenced once: " + online);
        }
        try (Store atRest = Store.openFile(storeFile(), StoreOptions.defaults())) {
            assertEquals(4, atRest.inspect(Store.Internals::sketchBlobs).size());
            assertTrue(Checker.check(atRest).clean());
        }
    }

    /** The entries of the disks that stood still (a0 and its snapshots, b0, its snapshot and its clone). */
    private static List<DiskUsage.Entry> still(DiskUsage.Report report) {
        return report.entries().stream().filter(entry -> Set.of("a0", "b0", "b0-clone").contains(entry.version().vdiName()))
                .toList();
    }
}
