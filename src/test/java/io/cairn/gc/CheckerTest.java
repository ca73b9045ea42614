package io.cairn.gc;

import io.cairn.alloc.SpaceMap;
import io.cairn.format.CounterEncoding;
import io.cairn.format.ExtentRecord;
import io.cairn.format.Layout;
import io.cairn.format.NodeCodec;
import io.cairn.format.Pointer;
import io.cairn.io.ReopenableMemoryDevice;
import io.cairn.io.StorageException;
import io.cairn.tree.RootRef;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The checker on hand-made stores: clean ones, and ones damaged or leaking in each way it reports. */
class CheckerTest {

    private static final long STORE_BYTES = 64L << 20;
    private static final int EXTENT_BLOCKS = 256;

    private ReopenableMemoryDevice device = new ReopenableMemoryDevice();
    private Store store = Store.format(device, STORE_BYTES, EXTENT_BLOCKS, StoreOptions.defaults());

    @Test
    void freshStoreIsClean() {
        CheckReport report = Checker.check(store);
        assertTrue(report.clean(), report.summary());
        assertEquals(1, report.rootRecords()); // only the extent table has pages yet
        assertEquals(report.blocksAllocated(), report.blocksReferenced());
        assertEquals(16384, report.storeBlocks());
    }

    @Test
    void storeWithSharedTreesIsCleanAndEachNodeIsScannedOnce() {
        populate();
        store.commit();
        CheckReport report = Checker.check(store);
        assertTrue(report.clean(), report.summary());
        assertEquals(3 + 2 + 1, report.rootRecords()); // the tables, disk0 and clone0, the snapshot
        // The snapshot and the clone name one root: 2 disk roots and 2 leaf nodes, plus the table trees.
        assertEquals(4 + 3, report.nodesScanned(), report.summary());
        assertEquals(report.blocksAllocated(), report.blocksReferenced());
        store.close();
        device = device.reopen();
        store = Store.open(device, null, StoreOptions.defaults());
        assertTrue(Checker.check(store).clean());
    }

    @Test
    void commitsUncommittedChangesFirst() {
        store.create("disk0", 8L << 20);
        long before = store.durableGeneration();
        assertTrue(Checker.check(store).clean(), "a store with changes in memory is committed, then checked");
        assertTrue(store.durableGeneration() > before, "the check committed");
    }

    @Test
    void counterAboveTheRecountIsALeakAndRepairFixesIt() {
        populate();
        store.commit();
        long dataBlock = firstDataBlock("disk0");
        long orphan = store.inspect(internals -> {
            SpaceMap space = internals.space();
            space.repairCount(dataBlock, space.count(dataBlock) + 2);
            return space.allocate(SpaceMap.Purpose.DATA);
        });
        store.commit();
        CheckReport report = Checker.check(store);
        assertTrue(report.leaksOnly(), report.summary());
        assertEquals(List.of(CheckReport.Kind.COUNT_TOO_HIGH, CheckReport.Kind.UNREACHABLE),
                report.leaks().stream().map(CheckReport.Finding::kind).sorted().toList());
        assertEquals(1, report.unreachableBlocks());

        CheckReport repaired = Checker.repair(store);
        assertEquals(2, repaired.repairs().size(), repaired.summary());
        assertTrue(repaired.repairs().contains(new CheckReport.Repair(orphan, 1, 0)), repaired.summary());
        assertTrue(repaired.summary().contains("repaired 2 counter(s)"), repaired.summary());
        assertTrue(Checker.check(store).clean());
        store.close();
        device = device.reopen();
        store = Store.open(device, null, StoreOptions.defaults());
        assertTrue(Checker.check(store).clean(), "repairs are durable");
    }

    /**
     * The checker recounts a store of either counter encoding against the counters read back from its slots: 300
     * clones share one snapshot's root, which 1-byte counters hold only up to 255 (the clones beyond share a copy),
     * 2-byte counters all at once. A counter one below the recount is damage in both.
     */
    @ParameterizedTest
    @EnumSource(CounterEncoding.class)
    void checksTheCountersOfEitherEncodingAfterAReopen(CounterEncoding encoding) {
        store.close();
        device = new ReopenableMemoryDevice();
        store = Store.format(device, STORE_BYTES, EXTENT_BLOCKS, StoreOptions.defaults(), java.util.UUID.randomUUID(), encoding);
        populate();
        for (int i = 0; i < 300; i++) {
            store.clone("many" + i, "disk0@base");
        }
        store.close();
        device = device.reopen();
        store = Store.open(device, null, StoreOptions.defaults());
        assertEquals(encoding, store.geometry().counterEncoding());
        long sharedRoot = rootOf("clone0").root();
        int count = store.inspect(internals -> internals.space().count(sharedRoot));
        // The snapshot, clone0 and the clones that share the root itself. disk0 still held it until the first
        // commit (its rewrite's removal is applied after a commit), so 1-byte counters stopped the clones at 255
        // with disk0's reference in: 254 once it went.
        assertEquals(encoding == CounterEncoding.NARROW ? 254 : 302, count);
        CheckReport report = Checker.check(store);
        assertTrue(report.clean(), report.summary());

        store.inspect(internals -> {
            internals.space().repairCount(sharedRoot, count - 1);
            return null;
        });
        store.close();
        device = device.reopen();
        store = Store.open(device, null, StoreOptions.defaults());
        CheckReport damaged = Checker.check(store);
        assertTrue(damaged.damaged(), damaged.summary());
        assertEquals(CheckReport.Kind.COUNT_TOO_LOW, damaged.damage().getFirst().kind());
        assertEquals(sharedRoot, damaged.damage().getFirst().block());
    }

    @Test
    void aCounterAboveWhatTheEncodingHoldsIsRefused() {
        populate();
        long dataBlock = firstDataBlock("disk0");
        IllegalArgumentException refused = assertThrows(IllegalArgumentException.class,
                () -> store.inspect(internals -> {
                    internals.space().repairCount(dataBlock, 256);
                    return null;
                }));
        assertEquals("a counter of this store holds at most 255, not 256 (block " + dataBlock + ")", refused.getMessage());
    }

    @Test
    void counterBelowTheRecountIsDamageAndRepairChangesNothing() {
        populate();
        store.commit();
        long dataBlock = firstDataBlock("disk0");
        int before = store.inspect(internals -> internals.space().count(dataBlock));
        assertTrue(before >= 2, "the first block is shared with the snapshot and the clone");
        store.inspect(internals -> {
            internals.space().repairCount(dataBlock, before - 1);
            internals.space().repairCount(internals.space().allocate(SpaceMap.Purpose.DATA), 1); // and a leak
            return null;
        });
        store.commit();
        CheckReport report = Checker.check(store);
        assertTrue(report.damaged());
        assertEquals(CheckReport.Kind.COUNT_TOO_LOW, report.damage().getFirst().kind());
        assertEquals(dataBlock, report.damage().getFirst().block());
        CheckReport repair = Checker.repair(store);
        assertTrue(repair.repairs().isEmpty());
        assertTrue(repair.summary().contains("not repaired"), repair.summary());
        assertEquals(before - 1, (int) store.inspect(internals -> internals.space().count(dataBlock)));
    }

    @Test
    void corruptNodeIsReportedAndTheScanGoesOn() {
        populate();
        store.create("other", 8L << 20);
        write("other", 0, 3 * Layout.BLOCK_BYTES, 5);
        store.commit();
        long leafNode = leafNodeOf("disk0", 0);
        device.write(leafNode * Layout.BLOCK_BYTES + 100, ByteBuffer.wrap(new byte[] {1, 2, 3}));
        CheckReport report = Checker.check(store);
        assertTrue(report.damaged());
        CheckReport.Finding corrupt = report.damage().stream()
                .filter(finding -> finding.kind() == CheckReport.Kind.CORRUPT_NODE).findFirst().orElseThrow();
        assertEquals(leafNode, corrupt.block());
        assertTrue(corrupt.detail().contains("checksum"), corrupt.detail());
        // The other disk was still scanned: its three data blocks are counted.
        assertTrue(report.dataReferences() >= 3, report.summary());
    }

    @Test
    void invalidPointersAreDamage() {
        store.create("disk0", 8L << 20);
        write("disk0", 0, 4 * Layout.BLOCK_BYTES, 1);
        store.commit();
        long leafNode = leafNodeOf("disk0", 0);
        long freeDataBlock = store.inspect(internals -> {
            long block = internals.space().allocate(SpaceMap.Purpose.DATA);
            internals.space().decrement(block);
            return block;
        });
        long metadataBlock = leafNode; // a data pointer at a metadata block: wrong extent type (and a conflicting role)
        long reserved = store.geometry().counterSlotBlock(0, 0, 1);
        rewriteLeaf(leafNode, new long[] {store.geometry().storeBlocks() + 7, freeDataBlock, reserved, metadataBlock});
        CheckReport report = Checker.check(store);
        List<CheckReport.Kind> kinds = report.damage().stream().map(CheckReport.Finding::kind).toList();
        assertTrue(kinds.contains(CheckReport.Kind.OUT_OF_RANGE), report.summary());
        assertTrue(kinds.contains(CheckReport.Kind.REFERENCE_TO_FREE_BLOCK), report.summary());
        assertTrue(kinds.contains(CheckReport.Kind.REFERENCE_TO_RESERVED), report.summary());
        assertTrue(kinds.contains(CheckReport.Kind.WRONG_EXTENT_TYPE), report.summary());
        assertTrue(kinds.contains(CheckReport.Kind.COUNT_TOO_LOW), report.summary()); // the leaf node, named twice
        CheckReport.Finding outOfRange = report.damage().get(kinds.indexOf(CheckReport.Kind.OUT_OF_RANGE));
        assertEquals("named by slot 0 of level-1 node " + leafNode + " (a disk tree)", outOfRange.detail());
    }

    @Test
    void readOnlyHintsAreNotErrors() {
        store.create("disk0", 8L << 20);
        write("disk0", 0, 2 * Layout.BLOCK_BYTES, 1);
        store.commit();
        long leafNode = leafNodeOf("disk0", 0);
        long[] pointers = store.inspect(internals -> internals.trees().node(leafNode, 1).pointersCopy());
        assertFalse(Pointer.isReadOnly(pointers[0]));
        rewriteLeaf(leafNode, new long[] {Pointer.markReadOnly(pointers[0]), pointers[1]});
        assertTrue(Checker.check(store).clean());
    }

    @Test
    void repairRefusesReadOnlyStore() {
        store.close();
        device = device.reopen();
        store = Store.open(device, null, StoreOptions.defaults().withReadOnly(true));
        assertTrue(Checker.check(store).clean());
        assertThrows(StorageException.class, () -> Checker.repair(store));
    }

    @Test
    void bitmapFindsBitsAcrossChunks() {
        BlockBitmap bitmap = new BlockBitmap(5L << 30);
        long[] bits = {0, 63, 64, (1L << 20) - 1, 1L << 20, 3L << 30, (5L << 30) - 1};
        for (long bit : bits) {
            assertTrue(bitmap.set(bit));
            assertFalse(bitmap.set(bit));
        }
        long found = -1;
        for (long bit : bits) {
            found = bitmap.nextSetBit(found + 1);
            assertEquals(bit, found);
            assertTrue(bitmap.get(bit));
        }
        assertEquals(-1, bitmap.nextSetBit(found + 1));
        assertFalse(bitmap.get(65));
        assertEquals(bits.length, bitmap.cardinality());
    }

    // ---------------------------------------------------------------- helpers

    /** disk0 with data, a snapshot of it, and a clone of the snapshot. */
    private void populate() {
        store.create("disk0", 8L << 20);
        write("disk0", 0, 6 * Layout.BLOCK_BYTES + 100, 1);
        store.snapshot("disk0", "base");
        write("disk0", 2 * Layout.BLOCK_BYTES, 10, 2);
        store.clone("clone0", "disk0@base");
    }

    private void write(String vdi, long offset, int length, int seed) {
        byte[] bytes = new byte[length];
        new Random(seed).nextBytes(bytes);
        try (Volume volume = store.openVolume(vdi)) {
            volume.write(offset, ByteBuffer.wrap(bytes), false);
        }
    }

    private RootRef rootOf(String vdi) {
        long id = store.vdi(vdi).id();
        return store.inspect(internals -> internals.vdiRoots().get(id));
    }

    private long leafNodeOf(String vdi, int slot) {
        RootRef root = rootOf(vdi);
        assertEquals(2, root.height());
        return store.inspect(internals -> Pointer.blockOf(internals.trees().node(root.root(), 2).pointer(slot)));
    }

    private long firstDataBlock(String vdi) {
        long leaf = leafNodeOf(vdi, 0);
        long block = store.inspect(internals -> Pointer.blockOf(internals.trees().node(leaf, 1).pointer(0)));
        assertEquals(ExtentRecord.Type.DATA, store.inspect(internals ->
                internals.space().extent(store.geometry().extentOf(block)).type()));
        return block;
    }

    /** Writes a valid leaf node image with {@code pointers} in its first slots over {@code block} on the device. */
    private void rewriteLeaf(long block, long[] pointers) {
        long[] all = new long[Layout.POINTERS_PER_NODE];
        System.arraycopy(pointers, 0, all, 0, pointers.length);
        device.write(block * Layout.BLOCK_BYTES, NodeCodec.encode(all, block, 1, 1));
    }
}
