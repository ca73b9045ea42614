package io.cairn.volume;

import io.cairn.format.Pointer;
import io.cairn.io.ReopenableMemoryDevice;
import io.cairn.tree.RootRef;
import io.cairn.tree.TreeSpace;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static io.cairn.volume.ModelSupport.BLOCK;
import static io.cairn.volume.SnapshotCloneModelTest.assertClean;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Deleting snapshots and disks frees exactly what nothing else references, and leaks nothing. */
class DeletionTest {

    static final long DISK_BYTES = 64L * BLOCK;

    private ReopenableMemoryDevice device = new ReopenableMemoryDevice();
    private Store store = Store.format(device, 64L << 20, 256, StoreOptions.defaults());

    @Test
    void deletingTheSnapshotACloneCameFromKeepsTheCloneAndFreesOnlyWhatTheSnapshotAloneHeld() {
        store.create("disk", DISK_BYTES);
        byte[] base = ModelSupport.randomBytes(1, 10 * BLOCK);
        write("disk", 0, base);
        store.snapshot("disk", "base");
        byte[] diskModel = java.util.Arrays.copyOf(base, (int) DISK_BYTES);
        byte[] cloneModel = diskModel.clone();
        byte[] snapshotModel = diskModel.clone();
        // The disk moves on from blocks 0..3; the clone from blocks 2..5. Only the snapshot still holds
        // the original blocks 2 and 3.
        byte[] diskWrite = ModelSupport.randomBytes(2, 4 * BLOCK);
        write("disk", 0, diskWrite);
        System.arraycopy(diskWrite, 0, diskModel, 0, diskWrite.length);
        store.clone("clone", "disk@base");
        byte[] cloneWrite = ModelSupport.randomBytes(3, 4 * BLOCK);
        write("clone", 2 * BLOCK, cloneWrite);
        System.arraycopy(cloneWrite, 0, cloneModel, 2 * BLOCK, cloneWrite.length);
        store.commit();
        assertClean(store, "before the deletion");
        ModelSupport.assertSame(snapshotModel, ModelSupport.readAll(store, "disk@base"), 0, "snapshot");

        long snapshotId = store.snapshotInfo("disk@base").id();
        Set<Long> snapshotBlocks = dataBlocks(store.inspect(internals -> internals.snapshotRoots().get(snapshotId)));
        Set<Long> others = new HashSet<>(dataBlocks(rootOfVdi("disk")));
        others.addAll(dataBlocks(rootOfVdi("clone")));
        Set<Long> exclusive = new HashSet<>(snapshotBlocks);
        exclusive.removeAll(others);
        assertEquals(2, exclusive.size(), "the original blocks 2 and 3");
        long dataBefore = store.spaceReport().dataBytes();

        store.deleteSnapshot("disk@base");
        store.commit();

        assertEquals(dataBefore - exclusive.size() * (long) BLOCK, store.spaceReport().dataBytes());
        for (long block : exclusive) {
            assertEquals(0, (int) store.inspect(internals -> internals.space().count(block)), "block " + block);
        }
        for (long block : others) {
            assertTrue(store.inspect(internals -> internals.space().count(block)) > 0, "block " + block);
        }
        ModelSupport.assertSame(cloneModel, ModelSupport.readAll(store, "clone"), 0, "clone");
        ModelSupport.assertSame(diskModel, ModelSupport.readAll(store, "disk"), 0, "disk");
        assertTrue(store.snapshots("disk").isEmpty());
        assertClean(store, "after deleting the snapshot");

        reopen();
        ModelSupport.assertSame(cloneModel, ModelSupport.readAll(store, "clone"), 0, "clone after a reopen");
        ModelSupport.assertSame(diskModel, ModelSupport.readAll(store, "disk"), 0, "disk after a reopen");
        assertClean(store, "after a reopen");
        store.close();
    }

    /**
     * Deleted VDI and snapshot records stay in their tables (the forest view shows where clones came
     * from), so the tables may have grown; apart from that, the allocated blocks are those of a new store.
     */
    @Test
    void deletingEverythingLeavesOnlyTheFormatAndTheTables() {
        store.commit();
        long initialAllocated = allocatedBlocks();
        long initialTables = tableBlocks();
        assertEquals(initialTables, initialAllocated, "a new store holds only its tables");
        long initialDataBytes = store.spaceReport().dataBytes();
        assertEquals(0, initialDataBytes);

        for (int round = 0; round < 3; round++) {
            store.create("a", DISK_BYTES);
            store.create("b", 3L << 20);
            write("a", 100, ModelSupport.randomBytes(round, 20 * BLOCK));
            store.snapshot("a", "one");
            write("a", 5 * BLOCK + 7, ModelSupport.randomBytes(round + 10, 3 * BLOCK));
            store.snapshot("a", "two");
            store.clone("c", "a@one");
            write("c", 0, ModelSupport.randomBytes(round + 20, 2 * BLOCK));
            write("b", 2L << 20, ModelSupport.randomBytes(round + 30, 5 * BLOCK));
            store.snapshot("c", "x");
            store.clone("d", "c@x");
            if (round == 1) {
                reopen();
            }
            assertTrue(store.spaceReport().dataBytes() > 0);

            store.deleteVdi("a", true); // clone c still needs a@one's blocks
            store.commit();
            assertClean(store, "after deleting a, round " + round);
            for (String name : List.of("b", "c", "d")) {
                store.deleteVdi(name, true);
            }
            store.commit();
            assertEquals(initialDataBytes, store.spaceReport().dataBytes(), "data blocks left, round " + round);
            assertEquals(initialAllocated + (tableBlocks() - initialTables), allocatedBlocks(),
                    "the initial blocks plus the tables' growth, round " + round);
            assertClean(store, "after deleting everything, round " + round);
        }
        reopen();
        assertEquals(tableBlocks(), allocatedBlocks(), "after a reopen");
        assertClean(store, "after a reopen");
        store.close();
    }

    @Test
    void aDiskWhoseSnapshotIsInUseIsRefusedWholeWithItsSnapshots() {
        store.create("disk", DISK_BYTES);
        for (int i = 0; i < 3; i++) {
            write("disk", i * BLOCK, ModelSupport.randomBytes(10 + i, BLOCK));
            store.snapshot("disk", "s" + i);
        }
        try (Volume inUse = store.openVolume("disk@s1")) {
            IllegalStateException refused = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
                    () -> store.deleteVdi("disk", true));
            assertTrue(refused.getMessage().contains("in use by 1 open connection"), refused.getMessage());
        }
        assertEquals(List.of("s0", "s1", "s2"), store.snapshots("disk").stream().map(SnapshotInfo::label).toList(),
                "no snapshot was deleted, not even the newer one");
        store.deleteVdi("disk", true);
        store.commit();
        assertClean(store, "after the deletion");
    }

    private void write(String vdi, long offset, byte[] bytes) {
        try (Volume volume = store.openVolume(vdi)) {
            volume.write(offset, ByteBuffer.wrap(bytes), false);
        }
    }

    private void reopen() {
        store.close();
        device = device.reopen();
        store = Store.open(device, null, StoreOptions.defaults());
    }

    private RootRef rootOfVdi(String name) {
        long id = store.vdi(name).id();
        return store.inspect(internals -> internals.vdiRoots().get(id));
    }

    private Set<Long> dataBlocks(RootRef root) {
        Set<Long> blocks = new HashSet<>();
        store.inspect(internals -> {
            internals.trees().forEachMapped(root.root(), root.height(), 0, TreeSpace.capacity(root.height()),
                    (index, pointer) -> blocks.add(Pointer.blockOf(pointer)));
            return null;
        });
        assertFalse(blocks.isEmpty());
        return blocks;
    }

    /** Allocated blocks other than the format's own (superblocks, counter slots). */
    private long allocatedBlocks() {
        return store.inspect(internals -> {
            long[] count = {0};
            internals.space().forEachAllocated((block, counter, type) -> count[0]++);
            return count[0];
        });
    }

    /** Nodes and pages of the three system tables. */
    private long tableBlocks() {
        return store.inspect(internals -> {
            long count = 0;
            for (RootRef table : internals.tableRoots()) {
                if (table.root() != 0) {
                    count += treeBlocks(internals.trees(), table.root(), table.height());
                }
            }
            return count;
        });
    }

    private static long treeBlocks(TreeSpace trees, long block, int level) {
        long count = 1;
        for (int slot = 0; slot < 512; slot++) {
            long pointer = trees.node(block, level).pointer(slot);
            if (!Pointer.isHole(pointer)) {
                count += level == 1 ? 1 : treeBlocks(trees, Pointer.blockOf(pointer), level - 1);
            }
        }
        return count;
    }
}
