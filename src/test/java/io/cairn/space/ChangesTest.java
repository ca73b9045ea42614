package io.cairn.space;

import io.cairn.io.MemoryBlockDevice;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.NoSuchElementException;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Diffs between versions of disks, against byte[] models, and their cost on a huge sparse disk. */
class ChangesTest {

    private static final int BLOCK = RandomHistory.BLOCK;

    @Property(tries = 40)
    void changedRangesAreExactlyWhereVersionsMayDiffer(@ForAll long seed) {
        RandomHistory history = new RandomHistory(seed, 30 + (int) Math.floorMod(seed, 30L));
        List<String> references = new ArrayList<>(history.models.keySet());
        for (int pair = 0; pair < 6 && !references.isEmpty(); pair++) {
            String from = history.pick(references);
            String to = history.pick(references);
            byte[] older = history.models.get(from);
            byte[] newer = history.models.get(to);
            if (older.length != newer.length) {
                continue;
            }
            Changes.ChangeSet changes = Changes.between(history.store, from, to);
            byte[] patched = older.clone();
            long previousEnd = 0;
            for (Changes.ChangedRange range : changes.ranges()) {
                assertTrue(range.offsetBytes() >= previousEnd && range.lengthBytes() > 0, history::toString);
                assertEquals(0, range.offsetBytes() % BLOCK, history::toString);
                previousEnd = range.offsetBytes() + range.lengthBytes();
                int start = (int) range.offsetBytes();
                int end = (int) previousEnd;
                if (range.zero()) {
                    assertTrue(Arrays.equals(new byte[end - start], Arrays.copyOfRange(newer, start, end)),
                            history + ": " + from + " → " + to + " " + range + " must read as zeros");
                }
                System.arraycopy(newer, start, patched, start, end - start);
            }
            assertTrue(previousEnd <= newer.length, history::toString);
            assertArrayEquals(newer, patched, history + ": " + from + " → " + to + " outside the reported ranges");
            assertEquals(List.of(), Changes.between(history.store, to, to).ranges(), "a version equals itself");
        }
    }

    @Test
    void diffOfATebibyteDiskCostsWhatChanged() {
        Store store = Store.format(new MemoryBlockDevice(), 64L << 20, 256, StoreOptions.defaults());
        long size = 1L << 40;
        store.create("big", size);
        try (Volume volume = store.openVolume("big")) {
            // A block in each of 1,000 GiB: a full walk of this tree reads over 2,000 nodes.
            for (long gib = 0; gib < 1000; gib++) {
                volume.write(gib << 30, ByteBuffer.wrap(ExclusiveSpaceTest.filled(BLOCK, 1)), false);
            }
        }
        store.snapshot("big", "monday");
        long[] changed = {5L * BLOCK, (100L << 30) + 7 * BLOCK, (900L << 30) + 3 * BLOCK};
        try (Volume volume = store.openVolume("big")) {
            for (long offset : changed) {
                volume.write(offset, ByteBuffer.wrap(ExclusiveSpaceTest.filled(BLOCK, 2)), false);
            }
        }
        store.commit();

        Changes.ChangeSet changes = Changes.between(store, "big@monday", "big");
        List<Changes.ChangedRange> expected = new ArrayList<>();
        for (long offset : changed) {
            expected.add(new Changes.ChangedRange(offset, BLOCK, false));
        }
        assertEquals(expected, changes.ranges());
        // Two roots; under top slot 0 one level-3 pair, then for each of two blocks a level-2 and a leaf
        // pair; under top slot 1 a level-3, a level-2 and a leaf pair.
        assertEquals(2 + 2 + 2 * 4 + 6, changes.nodesVisited());
        System.out.printf("diff of a 1 TiB disk with %d changed blocks: %d radix nodes read in %.2f ms%n",
                changed.length, changes.nodesVisited(), changes.elapsedNanos() / 1e6);

        Changes.ChangeSet part = Changes.within(store, "big@monday", "big", 99L << 30, 2L << 30);
        assertEquals(List.of(expected.get(1)), part.ranges());
        Changes.ChangeSet full = Changes.fromEmpty(store, "big");
        assertEquals((1000L + changed.length) * BLOCK, full.changedBytes(), "every mapped block of the disk");
        assertTrue(full.nodesVisited() > 2000, "a full walk reads every node: " + full.nodesVisited());
    }

    @Test
    void cloneAgainstItsParentSnapshotAndErrors() {
        RandomHistory history = new RandomHistory(7, 0);
        history.write("d0", 0, ExclusiveSpaceTest.filled(3 * BLOCK, 1));
        String snapshot = history.snapshot("d0");
        history.cloneOf(snapshot);
        history.write("d1", BLOCK, ExclusiveSpaceTest.filled(10, 9));
        try (Volume volume = history.store.openVolume("d1")) {
            volume.trim(2 * BLOCK, BLOCK, false);
        }
        Changes.ChangeSet changes = Changes.between(history.store, snapshot, "d1");
        assertEquals(List.of(new Changes.ChangedRange(BLOCK, BLOCK, false), new Changes.ChangedRange(2 * BLOCK, BLOCK, true)),
                changes.ranges());
        assertEquals(snapshot, Changes.resolveSince(history.store, "d1", snapshot.substring(snapshot.indexOf('@') + 1)));
        assertEquals(snapshot, Changes.resolveSince(history.store, "d1", snapshot));

        history.store.create("other", 64L * BLOCK);
        String unrelated = history.store.snapshot("other", null).reference();
        assertThrows(IllegalArgumentException.class, () -> Changes.resolveSince(history.store, "d1", unrelated));
        assertThrows(NoSuchElementException.class, () -> Changes.resolveSince(history.store, "d1", "999"));
        assertThrows(NoSuchElementException.class, () -> Changes.resolveSince(history.store, "d1", "nosuchlabel"));
        history.store.create("bigger", 128L * BLOCK);
        assertThrows(IllegalArgumentException.class, () -> Changes.between(history.store, snapshot, "bigger"));
    }
}
