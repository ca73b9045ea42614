package io.cairn.alloc;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.cairn.format.Layout;
import io.cairn.format.Pointer;
import io.cairn.format.StoreGeometry;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The batched counter updates of a node's children ({@link SpaceMap#incrementPointers},
 * {@link SpaceMap#decrementHoldingPointers}) do exactly what the one-by-one calls do: same counters, same
 * dirty counter blocks written by the next commit, same blocks held, same stop at a saturated counter.
 */
class SpaceMapBatchTest {

    private static final int EXTENT_BLOCKS = 4096;
    private static final int MAX_REFCOUNT = 3;

    @Test
    void incrementPointersMatchesIncrementOneByOne() {
        SpaceMap batched = newMap();
        SpaceMap single = newMap();
        long[] pointers = randomChildren(batched, single, new Random(7));

        long[] copy = pointers.clone();
        int stop = batched.incrementPointers(copy, 0);
        for (long pointer : pointers) {
            if (!Pointer.isHole(pointer)) {
                single.increment(Pointer.blockOf(pointer));
            }
        }
        assertEquals(pointers.length, stop, "no counter was saturated");
        assertArrayEquals(pointers, copy, "the pointers themselves are not changed");
        assertSameState(single, batched);
    }

    @Test
    void incrementPointersStopsAtASaturatedCounterWithoutChangingIt() {
        SpaceMap space = newMap();
        long a = space.allocate(SpaceMap.Purpose.DATA);
        long b = space.allocate(SpaceMap.Purpose.DATA);
        long c = space.allocate(SpaceMap.Purpose.DATA);
        space.increment(b);
        space.increment(b); // b is at the maximum, 3
        long[] pointers = {Pointer.writable(a), 0, Pointer.readOnly(b), Pointer.writable(c)};

        assertEquals(2, space.incrementPointers(pointers, 0));
        assertEquals(2, space.count(a));
        assertEquals(MAX_REFCOUNT, space.count(b));
        assertEquals(1, space.count(c), "nothing after the saturated block is touched");
        assertEquals(4, space.incrementPointers(pointers, 3), "goes on after the block the caller copied");
        assertEquals(2, space.count(c));
    }

    @Test
    void incrementPointersRefusesAFreeBlock() {
        SpaceMap space = newMap();
        long a = space.allocate(SpaceMap.Purpose.DATA);
        long b = space.allocate(SpaceMap.Purpose.DATA);
        space.decrement(b);
        assertThrows(IllegalStateException.class, () -> space.incrementPointers(new long[] {Pointer.writable(b)}, 0));
        assertEquals(1, space.count(a));
    }

    @Test
    void decrementHoldingPointersMatchesDecrementHoldingOneByOne() {
        SpaceMap batched = newMap();
        SpaceMap single = newMap();
        long[] pointers = randomChildren(batched, single, new Random(11));

        long[] unreferenced = new long[pointers.length];
        int found = batched.decrementHoldingPointers(pointers, unreferenced);
        List<Long> expected = new ArrayList<>();
        for (long pointer : pointers) {
            if (!Pointer.isHole(pointer) && single.decrementHolding(Pointer.blockOf(pointer)) == 0) {
                expected.add(Pointer.blockOf(pointer));
            }
        }
        assertEquals(expected, java.util.Arrays.stream(unreferenced, 0, found).boxed().toList());
        assertSameState(single, batched);
        for (long block : expected) {
            assertEquals(1, batched.count(block), "a block that lost its last reference is held at 1");
            batched.freeHeld(block);
        }
        batched.checkInvariants();
    }

    private static SpaceMap newMap() {
        SpaceMap space = new SpaceMap(new StoreGeometry(4L * EXTENT_BLOCKS, EXTENT_BLOCKS), MAX_REFCOUNT);
        space.formatSystemExtent();
        return space;
    }

    /**
     * The same 512 children in two maps: holes, blocks of counts 1 and 2, spread over two data extents so a
     * run changes extent and counter block; both maps committed clean first (no dirty counter blocks).
     */
    private static long[] randomChildren(SpaceMap first, SpaceMap second, Random random) {
        List<Long> blocks = new ArrayList<>();
        for (int i = 0; i < 2 * EXTENT_BLOCKS - 200; i++) {
            long block = first.allocate(SpaceMap.Purpose.DATA);
            assertEquals(block, second.allocate(SpaceMap.Purpose.DATA));
            blocks.add(block);
        }
        long[] pointers = new long[Layout.POINTERS_PER_NODE];
        for (int i = 0; i < pointers.length; i++) {
            if (random.nextInt(5) == 0) {
                continue;
            }
            long block = blocks.get(random.nextInt(blocks.size()));
            if (random.nextBoolean() && first.count(block) < MAX_REFCOUNT - 1) {
                first.increment(block);
                second.increment(block);
            }
            pointers[i] = random.nextBoolean() ? Pointer.writable(block) : Pointer.readOnly(block);
        }
        // Each block appears at most once, as in a node; duplicates are made holes.
        java.util.Set<Long> seen = new java.util.HashSet<>();
        for (int i = 0; i < pointers.length; i++) {
            if (pointers[i] != 0 && !seen.add(Pointer.blockOf(pointers[i]))) {
                pointers[i] = 0;
            }
        }
        first.captureDirty(1);
        second.captureDirty(1);
        return pointers;
    }

    private static void assertSameState(SpaceMap expected, SpaceMap actual) {
        for (int extent = 0; extent < expected.extentCount(); extent++) {
            assertArrayEquals(expected.copyCounters(extent), actual.copyCounters(extent), "counters of extent " + extent);
        }
        List<String> expectedDirty = expected.captureDirty(2).stream().map(w -> w.extent() + "/" + w.counterBlock() + "/" + w.slot()).toList();
        List<String> actualDirty = actual.captureDirty(2).stream().map(w -> w.extent() + "/" + w.counterBlock() + "/" + w.slot()).toList();
        assertEquals(expectedDirty, actualDirty, "the same counter blocks are written by the next commit");
        expected.checkInvariants();
        actual.checkInvariants();
    }
}
