package io.cairn.nbd.store;

import io.cairn.io.FaultInjectingBlockDevice;
import io.cairn.io.MemoryBlockDevice;
import io.cairn.nbd.NbdExport;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** A write-through export acknowledges a write only once it is durable, with no FLUSH or FUA from the client. */
class WriteThroughTest {

    @Test
    void writeThroughWritesSurviveAPowerCutWithoutFlush() throws Exception {
        MemoryBlockDevice formatted = new MemoryBlockDevice();
        Store initial = Store.format(formatted, 16L << 20, 64, StoreOptions.defaults());
        initial.create("durable", 1L << 20);
        initial.create("cached", 1L << 20);
        initial.commit();

        FaultInjectingBlockDevice device = new FaultInjectingBlockDevice(formatted.copy());
        Store store = Store.open(device, null, StoreOptions.defaults());
        StoreExportCatalog catalog = new StoreExportCatalog(store, null, "durable"::equals);
        try (NbdExport durable = catalog.open("durable"); NbdExport cached = catalog.open("cached")) {
            durable.write(8192, ByteBuffer.wrap(new byte[] {1, 2, 3}), false);
            cached.write(8192, ByteBuffer.wrap(new byte[] {4, 5, 6}), false);
        }
        // Power cut: every write not yet flushed is dropped.
        MemoryBlockDevice survivor = device.crash(new Random(0) {
            @Override
            public int nextInt(int bound) {
                return 0; // the first fate: drop
            }
        });
        assertEquals(true, device.lastCrashOutcomes().stream()
                .allMatch(outcome -> outcome.fate() == FaultInjectingBlockDevice.Fate.DROPPED), "every pending write dropped");
        Store reopened = Store.open(survivor, null, StoreOptions.defaults().withReadOnly(true));
        assertEquals(1, read(reopened, "durable"), "write-through: the write was durable when acknowledged");
        assertEquals(0, read(reopened, "cached"), "without FLUSH a cached write may be lost (here it was)");
    }

    private static int read(Store store, String name) {
        try (Volume volume = store.openVolume(name)) {
            ByteBuffer buffer = ByteBuffer.allocate(1);
            volume.read(8192, buffer);
            return buffer.get(0);
        }
    }
}
