package io.cairn.volume;

import io.cairn.format.CounterEncoding;
import io.cairn.io.ReopenableMemoryDevice;
import io.cairn.tree.RootRef;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static io.cairn.volume.ModelSupport.BLOCK;
import static io.cairn.volume.SnapshotCloneModelTest.assertClean;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Snapshot counts far beyond what the randomized tests reach (seed 003 §3.3: no limit on count or
 * depth), and sharing beyond the real counter limit of each encoding (seed 000: a reference beyond
 * 65,535, or 255 with 1-byte counters, copies the block instead).
 */
class SnapshotScaleTest {

    /** 520 whole blocks and a partial one: a tree of height 2 with two leaf nodes. */
    static final long DISK_BYTES = 520L * BLOCK + 1536;

    private ReopenableMemoryDevice device = new ReopenableMemoryDevice();

    @Test
    void tenThousandSnapshotsWithWritesBetween() {
        int snapshotCount = 10_000;
        Store store = Store.format(device, 512L << 20, 4096, StoreOptions.defaults());
        store.create("disk", DISK_BYTES);
        List<Long> ids = new ArrayList<>(snapshotCount);
        try (Volume volume = store.openVolume("disk")) {
            for (int i = 0; i < snapshotCount; i++) {
                volume.write(offsetOfWrite(i), ByteBuffer.wrap(contentOfWrite(i)), false);
                ids.add(store.snapshot("disk", null).id());
                if (i % 500 == 499) {
                    store.commit();
                }
            }
        }
        store.commit();
        assertEquals(snapshotCount, store.snapshots("disk").size());
        verifyEveryHundredth(store, ids);
        assertClean(store, "after 10,000 snapshots");

        store.close();
        device = device.reopen();
        store = Store.open(device, null, StoreOptions.defaults());
        verifyEveryHundredth(store, ids);
        assertClean(store, "after 10,000 snapshots and a reopen");
        store.close();
    }

    /** Write i puts 12 bytes somewhere in the disk, often straddling a block boundary. */
    private static long offsetOfWrite(int i) {
        return (i * 4099L * 7) % (DISK_BYTES - 12);
    }

    private static byte[] contentOfWrite(int i) {
        return ByteBuffer.allocate(12).putInt(i).putInt(~i).putInt(i * 31).array();
    }

    /** Replays the writes into one model and compares snapshot i (taken after write i) for every 100th i. */
    private static void verifyEveryHundredth(Store store, List<Long> ids) {
        byte[] model = new byte[(int) DISK_BYTES];
        for (int i = 0; i < ids.size(); i++) {
            byte[] content = contentOfWrite(i);
            System.arraycopy(content, 0, model, (int) offsetOfWrite(i), content.length);
            if (i % 100 == 99 || i == ids.size() - 1) {
                String reference = "disk@" + ids.get(i);
                ModelSupport.assertSame(model, ModelSupport.readAll(store, reference), 0, "snapshot " + reference);
            }
        }
        ModelSupport.assertSame(model, ModelSupport.readAll(store, "disk"), 0, "the live disk");
    }

    /**
     * With 2-byte counters 66,000 snapshots pass the limit once; with 1-byte counters 1,000 snapshots pass it
     * and then saturate two copies in turn (no test limit: the limit is the store's format).
     */
    @ParameterizedTest
    @CsvSource({"WIDE, 66000", "NARROW, 1000"})
    void sharingBeyondTheCounterLimitCopiesTheRoot(CounterEncoding encoding, int snapshotCount) {
        int limit = encoding.maxCount();
        Store store = Store.format(device, 256L << 20, 4096, StoreOptions.defaults(), java.util.UUID.randomUUID(), encoding);
        assertEquals(limit, (int) store.inspect(internals -> internals.space().maxRefcount()), "the format's limit");
        store.create("disk", DISK_BYTES);
        byte[] original = new byte[(int) DISK_BYTES];
        for (int block = 0; block < 521; block += 13) {
            original[block * BLOCK] = (byte) (block + 1);
            original[Math.min(block * BLOCK + 3000, original.length - 1)] = (byte) ~block;
        }
        try (Volume volume = store.openVolume("disk")) {
            volume.write(0, ByteBuffer.wrap(original), false);
        }
        store.commit();
        long diskId = store.vdi("disk").id();
        long sharedRoot = store.inspect(internals -> internals.vdiRoots().get(diskId).root());

        List<Long> ids = new ArrayList<>(snapshotCount);
        for (int i = 0; i < snapshotCount; i++) {
            ids.add(store.snapshot("disk", null).id());
            if (i % 10_000 == 9_999) {
                store.commit();
            }
        }
        store.commit();

        // The live disk and limit - 1 snapshots name the shared root; its counter is at the real limit.
        // The later snapshots share a copy of the root (sharing its children) instead: the copy made for the
        // first of them stands in for the root until it saturates in turn, and then the next copy
        // (TreeSpace, substitutes).
        Map<Long, RootRef> snapshotRoots = store.inspect(internals -> internals.snapshotRoots());
        assertEquals(limit, (int) store.inspect(internals -> internals.space().count(sharedRoot)));
        long sharing = snapshotRoots.values().stream().filter(root -> root.root() == sharedRoot).count();
        assertEquals(limit - 1, sharing);
        Map<Long, Long> sharersByCopy = new TreeMap<>();
        snapshotRoots.values().stream().filter(root -> root.root() != sharedRoot)
                .forEach(root -> sharersByCopy.merge(root.root(), 1L, Long::sum));
        long beyond = snapshotCount - sharing;
        assertEquals(Math.ceilDiv(beyond, limit), sharersByCopy.size(), "each copy is shared up to the limit, then the next");
        for (Map.Entry<Long, Long> copy : sharersByCopy.entrySet()) {
            assertEquals(copy.getValue(), (long) store.inspect(internals -> internals.space().count(copy.getKey())));
        }
        assertEquals(Math.ceilDiv(beyond, limit) - 1, sharersByCopy.values().stream().filter(count -> count == limit).count(),
                "every copy but the last is saturated");
        assertClean(store, "after " + snapshotCount + " snapshots");

        byte[] changed = original.clone();
        byte[] overwrite = ModelSupport.randomBytes(66, 3 * BLOCK + 100);
        System.arraycopy(overwrite, 0, changed, 510 * BLOCK - 50, overwrite.length);
        try (Volume volume = store.openVolume("disk")) {
            volume.write(510 * BLOCK - 50, ByteBuffer.wrap(overwrite), false);
        }
        store.commit();
        for (int i = 0; i < snapshotCount; i += 1000) {
            String reference = "disk@" + ids.get(i);
            ModelSupport.assertSame(original, ModelSupport.readAll(store, reference), 0, "snapshot " + reference);
        }
        String last = "disk@" + ids.getLast();
        ModelSupport.assertSame(original, ModelSupport.readAll(store, last), 0, "snapshot " + last);
        ModelSupport.assertSame(changed, ModelSupport.readAll(store, "disk"), 0, "the live disk");
        assertTrue(store.inspect(internals -> internals.space().count(sharedRoot)) < limit,
                "the write moved the disk off the shared root");
        assertClean(store, "after writing past 66,000 snapshots");

        store.close();
        device = device.reopen();
        store = Store.open(device, null, StoreOptions.defaults());
        ModelSupport.assertSame(changed, ModelSupport.readAll(store, "disk"), 0, "the live disk after a reopen");
        assertClean(store, "after a reopen");
        store.close();
    }
}
