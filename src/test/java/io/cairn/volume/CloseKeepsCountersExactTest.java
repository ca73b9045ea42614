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
}
