package io.cairn.volume;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.cairn.tree.TreeSpace;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

/**
 * The shadow counts {@code cairn stats} reports: a write to a leaf shared with a snapshot copies it once per
 * snapshot, a write to a durable unshared node moves it once per commit, and further writes to the same
 * leaf in the same transaction shadow nothing.
 */
class CopyOnWriteCountsTest {

    private static final int BLOCK_BYTES = 4096;
    /** Blocks 0 and 1000 are in different leaves (512 entries each) under one root of height 2. */
    private static final long OTHER_LEAF_BLOCK = 1000;

    @Test
    void copiesAreCountedPerSnapshotAndLeafMovesPerCommit() {
        Store store = Store.format(new SimpleMemoryDevice(), 64L << 20, 256, StoreOptions.defaults());
        store.create("disk0", 8L << 20);
        writeBlock(store, 0);
        writeBlock(store, OTHER_LEAF_BLOCK);
        assertEquals(new TreeSpace.Shadows(0, 0, 0), store.shadows(false), "nodes of the open transaction change in place");

        store.commit();
        writeBlock(store, 0);
        writeBlock(store, 1);
        assertEquals(new TreeSpace.Shadows(0, 0, 2), store.shadows(false), "the durable root and leaf are moved once");

        store.snapshot("disk0", null);
        writeBlock(store, 0);
        assertEquals(new TreeSpace.Shadows(1, 1, 2), store.shadows(false), "the shared root and leaf are copied");
        writeBlock(store, 2);
        writeBlock(store, OTHER_LEAF_BLOCK);
        assertEquals(new TreeSpace.Shadows(2, 1, 2), store.shadows(true), "one more copy: the other leaf; then a reset");
        assertEquals(new TreeSpace.Shadows(0, 0, 0), store.shadows(false));

        store.snapshot("disk0", null);
        writeBlock(store, 3);
        assertEquals(new TreeSpace.Shadows(1, 1, 0), store.shadows(false), "every snapshot costs the next write a copy");
        store.close();
    }

    private static void writeBlock(Store store, long block) {
        try (Volume volume = store.openVolume("disk0")) {
            volume.write(block * BLOCK_BYTES, ByteBuffer.allocate(BLOCK_BYTES).putLong(0, block + 1), false);
        }
    }
}
