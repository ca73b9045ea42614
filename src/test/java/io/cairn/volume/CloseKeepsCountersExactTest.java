package io.cairn.volume;

import io.cairn.format.StoreRecount;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Removals are applied to the counters after the commit that made them durable. A clean close must
 * make those applied removals durable too, or the blocks they freed stay allocated on disk for ever.
 */
class CloseKeepsCountersExactTest {

    @Test
    void blocksFreedByTheLastCommitAreFreeAfterReopening() {
        SimpleMemoryDevice device = new SimpleMemoryDevice();
        Store store = Store.format(device, 8L << 20, 64, StoreOptions.defaults());
        store.create("a", 4L << 20);
        store.create("b", 4L << 20);
        try (Volume volume = store.openVolume("a")) {
            volume.write(0, ByteBuffer.allocate(64 << 10), false);
        }
        try (Volume volume = store.openVolume("b")) {
            volume.write(0, ByteBuffer.allocate(8 << 10), false);
        }
        store.snapshot("b", "s");
        store.commit();
        store.deleteVdi("a", false);
        try (Volume volume = store.openVolume("b")) {
            volume.write(0, ByteBuffer.allocate(4 << 10), false); // shadows nodes shared with the snapshot
        }
        store.close();

        Store reopened = Store.open(device, null, StoreOptions.defaults());
        assertEquals(StoreRecount.references(reopened), StoreRecount.counters(reopened));
        long dataBlocks = StoreRecount.counters(reopened).keySet().stream().filter(block -> block >= 64).count();
        assertEquals(3, dataBlocks, "b's two blocks and its new copy of block 0; a's sixteen are free");
        reopened.close();
    }

    /**
     * A background commit leaves the removals it made durable to the reclaim thread, which close stops, maybe
     * before it ran them. Close must apply them and commit what they changed even when nothing else is left
     * to commit: a server stopped right after a scheduled snapshot's retention deletion leaked the deleted
     * snapshot's root reference and the table pages that commit replaced.
     */
    @Test
    void removalsAnUnfinishedBackgroundReclaimLeftAreDurableAfterClose() {
        SimpleMemoryDevice device = new SimpleMemoryDevice();
        Store store = Store.format(device, 8L << 20, 64, StoreOptions.defaults());
        store.create("a", 4L << 20);
        try (Volume volume = store.openVolume("a")) {
            volume.write(0, ByteBuffer.allocate(64 << 10), false);
        }
        store.snapshot("a", "old");
        store.snapshot("a", "kept");
        store.commit();
        store.deleteSnapshot("a@old");
        store.commitLeavingRemovalsQueued();
        store.close();

        Store reopened = Store.open(device, null, StoreOptions.defaults());
        assertEquals(StoreRecount.references(reopened), StoreRecount.counters(reopened));
        reopened.close();
    }
}
