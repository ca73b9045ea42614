package io.cairn.gc;

import io.cairn.alloc.SpaceMap;
import io.cairn.format.ExtentRecord;
import io.cairn.format.Layout;
import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.Store;
import io.cairn.volume.VdiInfo;
import io.cairn.volume.Volume;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** What the garbage collector tests compare before and after a collection, and how they make leaks. */
final class StoreContent {

    private StoreContent() {
    }

    /** Every byte of every live disk and live snapshot, by export name. */
    static Map<String, byte[]> of(Store store) {
        Map<String, byte[]> content = new TreeMap<>();
        for (VdiInfo vdi : store.listVdis(false)) {
            content.put(vdi.name(), read(store, vdi.name(), vdi.sizeBytes()));
            for (SnapshotInfo snapshot : store.snapshots(vdi.name())) {
                content.put(snapshot.reference(), read(store, snapshot.reference(), snapshot.sizeBytes()));
            }
        }
        return content;
    }

    static void assertSame(Map<String, byte[]> expected, Map<String, byte[]> actual, String context) {
        assertEquals(expected.keySet(), actual.keySet(), context);
        for (Map.Entry<String, byte[]> export : expected.entrySet()) {
            assertArrayEquals(export.getValue(), actual.get(export.getKey()), context + ": content of " + export.getKey());
        }
    }

    static byte[] read(Store store, String export, long sizeBytes) {
        try (Volume volume = store.openVolume(export)) {
            ByteBuffer buffer = ByteBuffer.allocate(Math.toIntExact(sizeBytes));
            volume.read(0, buffer);
            return buffer.array();
        }
    }

    /** A leak, as a crash would leave one: {@code +excess} on a random allocated block, or an allocated block nothing names. */
    record Leak(long block, int excess, boolean unlinked) {
    }

    /**
     * Makes one leak inside the store's exclusive hold; the random draw decides which kind and where.
     * A raised counter of a radix node may take more leaks with it: once the node is unreachable (after
     * a write shadowed it), the references its pointers hold are leaks too. {@code dataOnly} raises
     * only counters of data blocks, which point nowhere, so the leaks made are exactly the ones returned.
     */
    static Leak inject(Store store, Random random, boolean dataOnly) {
        return store.inspect(internals -> {
            SpaceMap space = internals.space();
            List<Long> allocated = new ArrayList<>();
            space.forEachAllocated((block, count, type) -> {
                if (count <= Layout.MAX_REFCOUNT - 3 && (!dataOnly || type == ExtentRecord.Type.DATA)) {
                    allocated.add(block);
                }
            });
            if (allocated.isEmpty() || random.nextInt(3) == 0) {
                long block = space.allocate(random.nextBoolean() ? SpaceMap.Purpose.DATA : SpaceMap.Purpose.METADATA);
                return new Leak(block, 1, true);
            }
            long block = allocated.get(random.nextInt(allocated.size()));
            int excess = 1 + random.nextInt(3);
            space.repairCount(block, space.count(block) + excess);
            return new Leak(block, excess, false);
        });
    }
}
