package io.cairn.volume;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class StoreLabelTest {

    @Test
    void labelsAreUniquePerDiskButAnyNumberOfSnapshotsMayHaveNone() {
        try (Store store = Store.format(new SimpleMemoryDevice(), 64L << 20, 256, StoreOptions.defaults())) {
            store.create("disk", 1 << 20);
            store.snapshot("disk", null);
            store.snapshot("disk", "nightly");
            store.snapshot("disk", "weekly");
            assertEquals("disk 'disk' already has a snapshot labelled 'weekly' (id 3)",
                    assertThrows(IllegalArgumentException.class, () -> store.label("disk@nightly", "weekly")).getMessage());

            assertEquals("", store.label("disk@nightly", "").label());
            assertEquals(java.util.List.of("", "", "weekly"),
                    store.snapshots("disk").stream().map(SnapshotInfo::label).toList());
        }
    }
}
