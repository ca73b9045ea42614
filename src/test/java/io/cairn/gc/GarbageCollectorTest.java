package io.cairn.gc;

import io.cairn.format.Layout;
import io.cairn.format.NodeCodec;
import io.cairn.format.Pointer;
import io.cairn.io.FaultInjectingBlockDevice;
import io.cairn.io.MemoryBlockDevice;
import io.cairn.io.ReopenableMemoryDevice;
import io.cairn.io.SimulatedCrashException;
import io.cairn.io.StorageException;
import io.cairn.tree.RootRef;
import io.cairn.volume.PinnedRoot;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The garbage collector on one thread: leaks made by hand and by power cuts are collected, nothing
 * else changes, damage stops it, and the pinned trees stay as they were while the store changes.
 */
class GarbageCollectorTest {

    private static final long STORE_BYTES = 64L << 20;
    private static final int EXTENT_BLOCKS = 256;

    @Test
    void aStoreWithoutLeaksHasNoGarbage() {
        Store store = populated(new ReopenableMemoryDevice());
        Map<String, byte[]> before = StoreContent.of(store);
        GcReport report = GarbageCollector.collect(store);
        assertFalse(report.damaged(), report.summary());
        assertTrue(report.leaks().isEmpty(), report.summary());
        assertEquals(0, report.blocksFreed());
        assertEquals(6, report.rootsPinned(), "disk, copy, the snapshot and the three tables");
        assertTrue(report.nodesScanned() >= 4 && report.tablePagesScanned() >= 3, report.summary());
        assertEquals(STORE_BYTES, report.storeBytes());
        assertTrue(report.gigabytesPerSecond() > 0, report.summary());
        StoreContent.assertSame(before, StoreContent.of(store), "after gc");
        assertTrue(Checker.check(store).clean(), "the pins are given back");
        store.close();
    }

    /**
     * A root whose counter is saturated is pinned through a copy, which holds its children but not the root:
     * when its disk writes (a new root) and commits during the scan, the old root is down to its leak. That
     * collection leaves it; the next one frees it and the references its children kept from it.
     */
    @Test
    void aSaturatedRootLetGoDuringTheScanIsLeftForTheNextCollection() {
        Store store = Store.format(new MemoryBlockDevice(), STORE_BYTES, EXTENT_BLOCKS, StoreOptions.defaults().withMaxRefcount(3));
        store.create("vm", 1L << 20);
        byte[] first = new byte[4096];
        new Random(1).nextBytes(first);
        try (Volume volume = store.openVolume("vm")) {
            volume.write(0, ByteBuffer.wrap(first), false);
        }
        store.commit();
        long root = store.inspect(internals -> internals.vdiRoots().values().iterator().next().root());
        store.inspect(internals -> {
            internals.space().repairCount(root, 3); // one record and a leak of two: saturated at 3
            return null;
        });
        byte[] second = new byte[4096];
        new Random(2).nextBytes(second);
        GcReport during = GarbageCollector.collect(store, () -> {
            try (Volume volume = store.openVolume("vm")) {
                volume.write(4096, ByteBuffer.wrap(second), false); // copies the root: its record lets it go
            }
            store.commit();
        });
        assertFalse(during.damaged(), during.summary());
        assertEquals(Map.of(root, 2), excessByBlock(during), during.summary());
        assertEquals(0, during.referencesRemoved(), "the root that lost its record is left as it is");
        GcReport next = GarbageCollector.collect(store);
        assertTrue(next.leaks().stream().anyMatch(leak -> leak.block() == root && leak.trueCount() == 0), next.summary());
        assertTrue(Checker.check(store).clean(), Checker.check(store).summary());
        byte[] disk = StoreContent.read(store, "vm", 8192);
        assertArrayEquals(first, java.util.Arrays.copyOfRange(disk, 0, 4096));
        assertArrayEquals(second, java.util.Arrays.copyOfRange(disk, 4096, 8192));
        store.close();
    }

    @Test
    void injectedLeaksAreCollectedAndNothingElse() {
        ReopenableMemoryDevice device = new ReopenableMemoryDevice();
        Store store = populated(device);
        Random random = new Random(7);
        Map<Long, Integer> injected = new TreeMap<>();
        long unlinked = 0;
        for (int i = 0; i < 12; i++) {
            StoreContent.Leak leak = StoreContent.inject(store, random, true);
            injected.merge(leak.block(), leak.excess(), Integer::sum);
            unlinked += leak.unlinked() ? 1 : 0;
        }
        assertTrue(unlinked > 0, "some leaks are allocated blocks nothing names");
        Map<String, byte[]> before = StoreContent.of(store);
        long freeBefore = store.spaceReport().freeBytes();
        GcReport report = GarbageCollector.collect(store);
        assertFalse(report.damaged(), report.summary());
        assertEquals(injected, excessByBlock(report), report.summary());
        assertEquals(injected.values().stream().mapToLong(Integer::longValue).sum(), report.referencesRemoved());
        assertTrue(report.blocksFreed() >= unlinked, report.summary());
        assertEquals(freeBefore + report.bytesFreed(), store.spaceReport().freeBytes(), "freed blocks are free");
        StoreContent.assertSame(before, StoreContent.of(store), "after gc");
        assertTrue(Checker.check(store).clean());
        store.close();
        store = Store.open(device.reopen(), null, StoreOptions.defaults());
        assertTrue(Checker.check(store).clean(), "the collection is durable");
        StoreContent.assertSame(before, StoreContent.of(store), "after reopening");
        store.close();
    }

    @Test
    void damageStopsTheCollectionAndChangesNothing() {
        Store store = populated(new ReopenableMemoryDevice());
        long dataBlock = firstDataBlock(store, "copy");
        int shared = store.inspect(internals -> internals.space().count(dataBlock));
        assertEquals(2, shared, "the clone's first block is shared with the snapshot");
        long leaked = store.inspect(internals -> {
            internals.space().repairCount(dataBlock, shared - 1);
            return internals.space().allocate(io.cairn.alloc.SpaceMap.Purpose.DATA);
        });
        GcReport report = GarbageCollector.collect(store);
        assertTrue(report.damaged(), report.summary());
        assertEquals(CheckReport.Kind.COUNT_TOO_LOW, report.damage().getFirst().kind());
        assertEquals(0, report.blocksFreed());
        assertEquals(0, report.referencesRemoved());
        assertTrue(report.summary().startsWith("DAMAGED"), report.summary());
        assertEquals(shared - 1, (int) store.inspect(internals -> internals.space().count(dataBlock)));
        CheckReport check = Checker.check(store);
        assertTrue(check.leaks().stream().anyMatch(finding -> finding.block() == leaked), "the leak is still there");
        assertTrue(check.damage().stream().noneMatch(finding -> finding.detail().contains("pin")), "pins were released");
        store.close();
    }

    @Test
    void aReadOnlyStoreIsRefused() {
        ReopenableMemoryDevice device = new ReopenableMemoryDevice();
        populated(device).close();
        Store store = Store.open(device.reopen(), null, StoreOptions.defaults().withReadOnly(true));
        assertThrows(StorageException.class, () -> GarbageCollector.collect(store));
        store.close();
    }

    /**
     * The pins: while they are held the store changes freely — overwrites, a new snapshot, deletion of
     * the disk and of the snapshot — yet every pinned node reads back as it was and stays allocated; a
     * second collection and {@code check --repair} are refused; {@code check} counts the pins.
     */
    @Test
    void pinnedTreesStayAsTheyWereWhileTheStoreChanges() {
        Store store = populated(new ReopenableMemoryDevice());
        Map<String, byte[]> atCheckpoint = StoreContent.of(store);
        List<PinnedRoot> pins = store.inspectCommitted(internals -> internals.pinLiveRoots());
        Map<Long, byte[]> images = new HashMap<>();
        for (PinnedRoot pinned : pins) {
            collectNodeImages(store, pinned.root(), images);
        }
        assertThrows(IllegalStateException.class, () -> GarbageCollector.collect(store));
        assertThrows(IllegalStateException.class, () -> Checker.repair(store));
        assertTrue(Checker.check(store).clean(), "pins count as references");

        write(store, "disk", 0, 6 * Layout.BLOCK_BYTES, 40); // would be in place without the pins
        write(store, "copy", 4096 * 600L, 4096, 41);
        store.snapshot("disk", "two");
        store.commit();
        store.deleteSnapshot("disk@one");
        store.deleteVdi("copy", false);
        store.commit();
        store.commit();
        for (Map.Entry<Long, byte[]> node : images.entrySet()) {
            assertArrayEquals(node.getValue(), readBlock(store, node.getKey()), "pinned node " + node.getKey() + " changed");
            assertTrue(store.inspect(internals -> internals.space().count(node.getKey())) > 0, "pinned node freed");
        }
        for (PinnedRoot pinned : pins) {
            // The data under the pinned disk root still reads as at the checkpoint.
            if (pinned.description().startsWith("VDI")) {
                long leaf = Pointer.blockOf(store.inspect(internals -> internals.trees().lookup(pinned.root().root(),
                        pinned.root().height(), 0)));
                assertArrayEquals(java.util.Arrays.copyOf(atCheckpoint.get("disk"), Layout.BLOCK_BYTES), readBlock(store, leaf));
                break;
            }
        }
        store.inspect(internals -> {
            internals.releasePins();
            return null;
        });
        store.commit();
        assertTrue(Checker.check(store).clean());
        store.close();
    }

    /**
     * Leaked blocks whose every real reference goes while the scan runs: the pins keep them (the deleted
     * disk's root is pinned, and each pinned node keeps its children), the collector lowers them to that
     * one reference, and when the pins go the ordinary removals free the whole tree.
     */
    @Test
    void leakedBlocksWhoseReferencesGoDuringTheScanAreFreedWithThePins() {
        Store store = populated(new ReopenableMemoryDevice());
        store.create("doomed", 4L << 20);
        write(store, "doomed", 0, 3 * Layout.BLOCK_BYTES, 50);
        store.commit();
        long dataBlock = firstDataBlock(store, "doomed");
        long leafNode = store.inspect(internals -> {
            RootRef root = internals.vdiRoots().get(store.vdi("doomed").id());
            long leaf = root.height() == 1 ? root.root()
                    : Pointer.blockOf(internals.trees().node(root.root(), root.height()).pointersCopy()[0]);
            internals.space().repairCount(dataBlock, internals.space().count(dataBlock) + 1);
            internals.space().repairCount(leaf, internals.space().count(leaf) + 2);
            return leaf;
        });
        long freeBefore = store.spaceReport().freeBytes();
        GcReport report = GarbageCollector.collect(store, () -> {
            store.deleteVdi("doomed", false);
            store.commit();
        });
        assertFalse(report.damaged(), report.summary());
        assertEquals(Map.of(dataBlock, 1, leafNode, 2), excessByBlock(report), report.summary());
        assertEquals(0, report.blocksFreed(), "nothing was unreachable at the checkpoint");
        assertTrue(Checker.check(store).clean(), "the released pin gave back the whole tree");
        assertEquals(0, (int) store.inspect(internals -> internals.space().count(dataBlock)));
        assertEquals(0, (int) store.inspect(internals -> internals.space().count(leafNode)));
        assertTrue(store.spaceReport().freeBytes() > freeBefore);
        store.close();
    }

    /**
     * The power goes out after a commit that deleted a disk, a snapshot and overwritten blocks, before
     * the next commit: the counters on disk still hold the removed references. After reopening, the
     * collector gives back exactly that space: the space report is the one the store had before the cut.
     */
    @Test
    void leaksLeftByAPowerCutBetweenTwoCommitsAreCollected() {
        ReopenableMemoryDevice formatting = new ReopenableMemoryDevice();
        Store.format(formatting, STORE_BYTES, EXTENT_BLOCKS, StoreOptions.defaults()).close();
        FaultInjectingBlockDevice device = new FaultInjectingBlockDevice(formatting.medium().copy());
        Store store = Store.open(device, null, StoreOptions.defaults());
        store.create("disk", 3L << 20);
        store.create("other", 3L << 20);
        write(store, "disk", 0, 40 * Layout.BLOCK_BYTES, 1);
        write(store, "other", 4096 * 520L, 30 * Layout.BLOCK_BYTES, 2);
        store.snapshot("disk", "one");
        store.commit();
        store.clone("copy", "disk@one");
        write(store, "disk", 8192, 10 * Layout.BLOCK_BYTES, 3);
        write(store, "copy", 0, 5 * Layout.BLOCK_BYTES, 4);
        store.commit();
        store.deleteVdi("other", false);
        store.deleteSnapshot("disk@one");
        write(store, "copy", 4096, 20 * Layout.BLOCK_BYTES, 5);
        store.commit();
        Store.StoreSpace before = store.spaceReport();
        Map<String, byte[]> content = StoreContent.of(store);

        Store reopened = Store.open(device.crash(new Random(11)), null, StoreOptions.defaults());
        assertNotEquals(before, reopened.spaceReport(), "the cut left leaks");
        assertTrue(Checker.check(reopened).leaksOnly());
        GcReport report = GarbageCollector.collect(reopened);
        assertFalse(report.damaged(), report.summary());
        assertTrue(report.blocksFreed() > 30, report.summary());
        assertEquals(before, reopened.spaceReport());
        StoreContent.assertSame(content, StoreContent.of(reopened), "after the cut and gc");
        assertTrue(Checker.check(reopened).clean());
        reopened.close();
    }

    /**
     * Cuts the power at every write of a workload (STYLE 8), reopens, and collects: never damage, the
     * content of every disk and snapshot the same before and after, the checker clean afterwards, and
     * some cuts leave leaks to collect.
     */
    @Test
    void everyPowerCutLeavesOnlyGarbageTheCollectorGivesBack() {
        ReopenableMemoryDevice formatting = new ReopenableMemoryDevice();
        Store.format(formatting, STORE_BYTES, EXTENT_BLOCKS, StoreOptions.defaults()).close();
        MemoryBlockDevice formatted = formatting.medium();
        FaultInjectingBlockDevice dryRun = new FaultInjectingBlockDevice(formatted.copy());
        crashWorkload(dryRun);
        long writes = dryRun.writeCount();
        int collected = 0;
        for (long crashAt = 1; crashAt <= writes; crashAt++) {
            FaultInjectingBlockDevice device = new FaultInjectingBlockDevice(formatted.copy());
            device.crashAtWrite(crashAt);
            try {
                crashWorkload(device);
            } catch (SimulatedCrashException expected) {
                // the power went out at write crashAt
            }
            long seed = crashAt * 31;
            String context = "crash at write " + crashAt + " of " + writes + ", outcome seed " + seed;
            Store store = Store.open(device.crash(new Random(seed)), null, StoreOptions.defaults());
            Map<String, byte[]> before = StoreContent.of(store);
            GcReport report = GarbageCollector.collect(store);
            assertFalse(report.damaged(), () -> context + ": " + report.summary());
            collected += report.blocksFreed() > 0 ? 1 : 0;
            StoreContent.assertSame(before, StoreContent.of(store), context);
            CheckReport after = Checker.check(store);
            assertTrue(after.clean(), () -> context + ", after gc: " + after.summary());
            store.close();
        }
        assertTrue(collected > 0, "no cut out of " + writes + " left a block to collect");
    }

    private static void crashWorkload(FaultInjectingBlockDevice device) {
        Store store = Store.open(device, null, StoreOptions.defaults());
        store.create("disk", 3L << 20);
        write(store, "disk", 0, 6 * Layout.BLOCK_BYTES + 10, 1);
        store.commit();
        store.snapshot("disk", "one");
        write(store, "disk", 2 * 4096 - 5, 3 * 4096, 2);
        store.commit();
        store.clone("copy", "disk@one");
        write(store, "copy", 4096, 2 * 4096, 4);
        store.commit();
        store.deleteSnapshot("disk@one");
        write(store, "copy", 0, 100, 5);
        store.commit();
        store.deleteVdi("disk", false);
        store.commit();
        store.close();
    }

    // ---------------------------------------------------------------- helpers

    /** A disk with data, a snapshot of it, and a clone of the snapshot with its own writes; committed. */
    private static Store populated(ReopenableMemoryDevice device) {
        Store store = Store.format(device, STORE_BYTES, EXTENT_BLOCKS, StoreOptions.defaults());
        store.create("disk", 4L << 20);
        write(store, "disk", 0, 5 * Layout.BLOCK_BYTES, 1);
        write(store, "disk", 4096 * 513L, 2 * Layout.BLOCK_BYTES, 2);
        store.snapshot("disk", "one");
        store.clone("copy", "disk@one");
        write(store, "copy", 4096, 2 * Layout.BLOCK_BYTES, 3);
        write(store, "disk", 0, Layout.BLOCK_BYTES, 4);
        store.commit();
        return store;
    }

    static void write(Store store, String vdi, long offset, int length, int seed) {
        byte[] bytes = new byte[length];
        new Random(seed).nextBytes(bytes);
        try (Volume volume = store.openVolume(vdi)) {
            volume.write(offset, ByteBuffer.wrap(bytes), false);
        }
    }

    private static Map<Long, Integer> excessByBlock(GcReport report) {
        Map<Long, Integer> excess = new TreeMap<>();
        for (CheckReport.Finding leak : report.leaks()) {
            excess.put(leak.block(), Math.toIntExact(leak.counter() - leak.trueCount()));
        }
        return excess;
    }

    private static long firstDataBlock(Store store, String vdi) {
        long id = store.vdi(vdi).id();
        return store.inspect(internals -> {
            RootRef root = internals.vdiRoots().get(id);
            return Pointer.blockOf(internals.trees().lookup(root.root(), root.height(), 0));
        });
    }

    private static byte[] readBlock(Store store, long block) {
        return store.inspect(internals -> {
            ByteBuffer image = ByteBuffer.allocate(Layout.BLOCK_BYTES);
            internals.device().read(block * Layout.BLOCK_BYTES, image);
            return image.array();
        });
    }

    /** The device image of every node under {@code root} (each once). */
    private static void collectNodeImages(Store store, RootRef root, Map<Long, byte[]> images) {
        List<long[]> pending = new ArrayList<>();
        pending.add(new long[] {root.root(), root.height()});
        while (!pending.isEmpty()) {
            long[] next = pending.removeLast();
            long block = next[0];
            int level = (int) next[1];
            if (images.containsKey(block)) {
                continue;
            }
            byte[] image = readBlock(store, block);
            images.put(block, image);
            if (level > 1) {
                for (long pointer : NodeCodec.decode(ByteBuffer.wrap(image), block, level)) {
                    if (!Pointer.isHole(pointer)) {
                        pending.add(new long[] {Pointer.blockOf(pointer), level - 1});
                    }
                }
            }
        }
    }
}
