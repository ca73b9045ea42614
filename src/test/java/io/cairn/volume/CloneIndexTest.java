package io.cairn.volume;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.format.SnapshotRecord;
import io.cairn.volume.Store.VdiState;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * A deletion marks for a check the stored sketches of exactly the snapshots whose base it changed (sketch note 4),
 * found through the store's index of clones by source snapshot and each disk's oldest live snapshot instead of a walk
 * over every clone and its log. Each step stores every sketch, deletes, and compares the marks with the bases worked
 * out here from the records alone; then the stale blobs must be exactly what the next pass replaces, and a report
 * must find nothing left to compute. The index itself is compared with the records after every step, and after a
 * reopen, which builds it from the records again.
 */
class CloneIndexTest {

    private final SimpleMemoryDevice device = new SimpleMemoryDevice();
    private Store store = Store.format(device, 64L << 20, 256, StoreOptions.defaults());
    private int writes;

    @Test
    void deletionsMarkExactlyTheSnapshotsWhoseBaseChanged() {
        store.create("base", 1 << 20);
        List<Long> b = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            b.add(snapshot("base"));
        }
        store.clone("c1", "base@" + b.get(1));
        List<Long> c1 = List.of(snapshot("c1"), snapshot("c1"), snapshot("c1"));
        store.clone("c2", "base@" + b.get(1));
        long c2s = snapshot("c2");
        store.clone("c3", "base@" + b.get(3));
        long c3s = snapshot("c3");
        store.clone("cc", "c1@" + c1.get(0)); // a clone of a clone
        long cc0 = snapshot("cc");
        snapshot("cc");
        store.clone("dc", "c2@" + c2s);       // to be deleted, with a clone of its own
        long dcs = snapshot("dc");
        store.clone("dcc", "dc@" + dcs);
        long dccs = snapshot("dcc");
        Set<Long> bystanders = new HashSet<>();
        for (int i = 0; i < 20; i++) {
            store.clone("u" + i, "base@" + b.get(5));
            bystanders.add(snapshot("u" + i));
        }
        checkIndex();

        assertEquals(Set.of(dccs), deleting(() -> store.deleteVdi("dc", true)), "a deleted clone");
        assertEquals(Set.of(b.get(2), c1.get(0), c2s), deleting(() -> store.deleteSnapshot("base@" + b.get(1))),
                "a clone's source snapshot");
        assertEquals(Set.of(b.get(4), c3s), deleting(() -> store.deleteSnapshot("base@" + b.get(3))));
        assertEquals(Set.of(b.get(4), c3s), deleting(() -> store.deleteSnapshot("base@" + b.get(2))),
                "clones of the deleted snapshots up to the next live one");
        assertEquals(Set.of(c1.get(1), cc0), deleting(() -> store.deleteSnapshot("c1@" + c1.get(0))),
                "a clone of a clone");

        store.close();
        store = Store.open(device, null, StoreOptions.defaults());
        checkIndex();

        assertEquals(Set.of(dccs), deleting(() -> store.deleteSnapshot("c2@" + c2s)), "through a deleted clone");
        assertEquals(Set.of(b.get(4), c1.get(1), c3s, cc0, dccs), deleting(() -> store.deleteSnapshot("base@" + b.get(0))),
                "every lineage back to the first snapshot");
        assertEquals(bystanders, deleting(() -> store.deleteSnapshot("base@" + b.get(5))), "twenty clones of one snapshot");
        assertEquals(Set.of(), deleting(() -> store.deleteVdi("c1", true)), "nothing was based on c1's live snapshots");
        assertEquals(Set.of(), deleting(() -> store.deleteVdi("u0", true)));

        store.close();
        store = Store.open(device, null, StoreOptions.defaults());
        checkIndex();
        store.close();
    }

    /** Writes a block of {@code disk} (each write a new pattern) and snapshots it; returns the snapshot's id. */
    private long snapshot(String disk) {
        try (Volume volume = store.openVolume(disk)) {
            writes++;
            volume.write((writes % 256L) * TestBlocks.BLOCK, TestBlocks.pattern(writes % 256L, writes), false);
        }
        return store.snapshot(disk, null).id();
    }

    /**
     * Stores every sketch, runs {@code deletion}, and checks the marks it left, the blobs the next pass replaces and
     * the index; returns the live snapshots whose base changed.
     */
    private Set<Long> deleting(Runnable deletion) {
        store.sketchCatalog(true);
        Map<Long, Long> before = bases();
        deletion.run();
        Map<Long, Long> after = bases();
        Set<Long> changed = new HashSet<>();
        after.forEach((id, base) -> {
            if (!base.equals(before.get(id))) {
                changed.add(id);
            }
        });
        assertEquals(changed, store.suspectSketches(), "marked for a check: the snapshots whose base changed");
        assertEquals(changed.size(), store.storeMissingSketches(), "their blobs were stale and are replaced");
        SketchCatalog catalog = store.sketchCatalog(false);
        assertEquals(0, catalog.computedNow(), "no stale blob is left for a report to compute");
        after.forEach((id, base) -> assertEquals((long) base, catalog.deltas().get(id).baseSnapshotId(), "base of " + id));
        checkIndex();
        TestBlocks.commitAndCheckClean(store);
        return changed;
    }

    /** Every live snapshot's base, from the records: the nearest live snapshot back along its log, then its disk's source. */
    private Map<Long, Long> bases() {
        return store.underMeta(() -> {
            Map<Long, Long> bases = new HashMap<>();
            for (SnapshotRecord record : store.snapshots.values()) {
                if (record.deleted()) {
                    continue;
                }
                long base = predecessor(record);
                while (base != 0 && store.snapshots.get(base).deleted()) {
                    base = predecessor(store.snapshots.get(base));
                }
                bases.put(record.id(), base);
            }
            return bases;
        });
    }

    private long predecessor(SnapshotRecord record) {
        return record.previousSnapshotId() != 0 ? record.previousSnapshotId()
                : store.vdis.get(record.vdiId()).record.parentSnapshotId();
    }

    /** Each disk's oldest live snapshot and clones by source snapshot, as the index keeps them, against the records. */
    private void checkIndex() {
        store.underMeta(() -> {
            Map<Long, Map<Long, Set<Long>>> clones = new HashMap<>();
            for (VdiState state : store.vdis.values()) {
                long source = state.record.parentSnapshotId();
                if (source != 0) {
                    clones.computeIfAbsent(store.snapshots.get(source).vdiId(), disk -> new TreeMap<>())
                            .computeIfAbsent(source, id -> new HashSet<>()).add(state.id);
                }
            }
            for (VdiState state : store.vdis.values()) {
                long oldest = 0;
                for (long id = state.record.snapshotLogHead(); id != 0; id = store.snapshots.get(id).previousSnapshotId()) {
                    oldest = store.snapshots.get(id).deleted() ? oldest : id;
                }
                assertEquals(oldest, state.oldestLiveSnapshot, "oldest live snapshot of " + state.record.name());
                Map<Long, Set<Long>> indexed = new TreeMap<>();
                if (state.clonesBySnapshot != null) {
                    state.clonesBySnapshot.forEach((id, list) -> {
                        Set<Long> ids = new HashSet<>();
                        list.forEach(clone -> ids.add(clone.id));
                        assertEquals(list.size(), ids.size(), "a clone indexed twice under snapshot " + id);
                        indexed.put(id, ids);
                    });
                }
                assertEquals(clones.getOrDefault(state.id, Map.of()), indexed, "clones of " + state.record.name() + "'s snapshots");
                assertTrue(state.record.parentSnapshotId() == 0 || state.indexedAsClone, state.record.name());
            }
            return null;
        });
    }
}
