package io.cairn.volume;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

/** What close leaves on the device: every change, including the space that deletions freed. */
class StoreCloseTest {

    private static final int DISK_BYTES = 4 << 20;

    @Test
    void spaceFreedByADeleteIsFreeAgainAfterCloseAndReopen() {
        SimpleMemoryDevice device = new SimpleMemoryDevice();
        Store store = Store.format(device, 64L << 20, 256, StoreOptions.defaults());
        long writtenDataBytes = createAndFill(store);
        assertTrue(writtenDataBytes >= DISK_BYTES, store.spaceReport()::toString);
        store.close();

        store = Store.open(device, null, StoreOptions.defaults());
        store.deleteVdi("disk", false);
        // The delete's commit frees the blocks in memory only after it is durable; close must
        // make that durable too, or they stay counted as used for good.
        store.close();

        store = Store.open(device, null, StoreOptions.defaults());
        // Data extents keep their counter blocks, so "data" does not drop to 0; what matters is that
        // the same disk fits again in the same space.
        assertTrue(store.spaceReport().dataBytes() < DISK_BYTES / 16, store.spaceReport()::toString);
        assertEquals(writtenDataBytes, createAndFill(store));
        store.close();
    }

    /** Creates and fills a disk; returns the store's data bytes afterwards. */
    private static long createAndFill(Store store) {
        store.create("disk", DISK_BYTES);
        try (Volume volume = store.openVolume("disk")) {
            volume.write(0, ByteBuffer.allocate(DISK_BYTES).put(0, (byte) 1), false);
        }
        return store.spaceReport().dataBytes();
    }
}
