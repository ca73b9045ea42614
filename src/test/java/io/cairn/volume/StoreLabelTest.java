package io.cairn.volume;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

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

    @Test
    void theLabelIndexAndTheNameIndexAnswerWhatTheListsWould() {
        try (Store store = Store.format(new SimpleMemoryDevice(), 64L << 20, 256, StoreOptions.defaults())) {
            store.create("disk", 1 << 20);
            assertTrue(store.hasDisk("disk"));
            assertFalse(store.hasDisk("other"));
            long nightly = store.snapshot("disk", "nightly").id();
            store.snapshot("disk", null);
            assertEquals(nightly, store.labelled("disk", "nightly").orElseThrow().id());
            assertEquals(java.util.Optional.empty(), store.labelled("disk", "weekly"));

            store.label("disk@nightly", "weekly"); // relabelled: the old label is free, the new one taken
            assertEquals(java.util.Optional.empty(), store.labelled("disk", "nightly"));
            assertEquals(nightly, store.labelled("disk", "weekly").orElseThrow().id());
            store.deleteSnapshot("disk@weekly");
            assertEquals(java.util.Optional.empty(), store.labelled("disk", "weekly"));

            store.clone("copy", "disk@" + store.snapshot("disk", "base").id());
            assertTrue(store.hasDisk("copy"));
            store.deleteVdi("copy", false);
            assertFalse(store.hasDisk("copy"), "a deleted disk's name is free");
            assertThrows(java.util.NoSuchElementException.class, () -> store.labelled("copy", "base"));
        }
    }
}
