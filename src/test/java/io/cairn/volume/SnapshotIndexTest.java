package io.cairn.volume;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The store keeps, per disk, its live labels and the number of its live snapshots instead of walking the
 * snapshot log: both must follow snapshots, relabels and deletions, and be rebuilt the same at open.
 */
class SnapshotIndexTest {

    @Test
    void labelsAndCountsFollowEveryChangeAndSurviveReopening() {
        SimpleMemoryDevice device = new SimpleMemoryDevice();
        try (Store store = Store.format(device, 64L << 20, 256, StoreOptions.defaults())) {
            store.create("disk", 1 << 20);
            store.create("other", 1 << 20);
            store.snapshot("disk", "a");       // 1
            store.snapshot("disk", "b");       // 2
            store.snapshot("disk", null);      // 3
            store.snapshot("other", "a");      // 4: labels are per disk
            store.label("disk@b", "c");        // b is free again
            store.deleteSnapshot("disk@a");    // a is free again, one snapshot fewer
            store.snapshot("disk", "b");       // 5
            store.snapshot("disk", "a");       // 6
            check(store);
        }
        try (Store store = Store.open(device, null, StoreOptions.defaults())) {
            check(store);
            store.deleteVdi("disk", true);
            store.create("disk", 1 << 20);
            assertEquals(0, store.vdi("disk").snapshotCount());
            store.snapshot("disk", "a");       // the deleted disk's labels do not belong to the new one
            assertEquals(1, store.vdi("disk").snapshotCount());
        }
    }

    private static void check(Store store) {
        assertEquals(4, store.vdi("disk").snapshotCount());
        assertEquals(1, store.vdi("other").snapshotCount());
        assertEquals(List.of(2L, 3L, 5L, 6L), store.snapshots("disk").stream().map(SnapshotInfo::id).toList());
        assertEquals(6, store.snapshotInfo("disk@a").id());
        assertEquals(5, store.snapshotInfo("disk@b").id());
        assertEquals(2, store.snapshotInfo("disk@c").id());
        assertEquals(4, store.snapshotInfo("other@a").id());
        assertEquals(3, store.snapshotInfo("disk@3").id());
        assertEquals("disk 'disk' has no snapshot with id 1",
                assertThrows(java.util.NoSuchElementException.class, () -> store.snapshotInfo("disk@1")).getMessage());
        assertEquals("disk 'disk' has no snapshot with id 4",
                assertThrows(java.util.NoSuchElementException.class, () -> store.snapshotInfo("disk@4")).getMessage());
        assertEquals("disk 'disk' has no snapshot with id 99999999999999999999",
                assertThrows(java.util.NoSuchElementException.class, () -> store.snapshotInfo("disk@99999999999999999999")).getMessage());
        assertEquals("disk 'disk' has no snapshot with id 03",
                assertThrows(java.util.NoSuchElementException.class, () -> store.snapshotInfo("disk@03")).getMessage());
        assertEquals("disk 'disk' already has a snapshot labelled 'c' (id 2)",
                assertThrows(IllegalArgumentException.class, () -> store.snapshot("disk", "c")).getMessage());
    }
}
