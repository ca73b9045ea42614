package io.cairn.alloc;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
        forEachChild(pointers, single::increment);
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

    /** A free block in the middle of a pass is refused; the blocks before it keep their new counts, none after it changes. */
    @Test
    void aFreeBlockInTheMiddleStopsBothPassesThere() {
        SpaceMap space = newMap();
        long a = space.allocate(SpaceMap.Purpose.DATA);
        long free = space.allocate(SpaceMap.Purpose.DATA);
        long c = 0;
        for (int i = 0; i <= EXTENT_BLOCKS; i++) {
            c = space.allocate(SpaceMap.Purpose.DATA); // runs into the next extent
        }
        assertTrue(c >= a + EXTENT_BLOCKS, "c lies in another extent than a");
        space.decrement(free);
        space.increment(c);
        long[] pointers = {Pointer.writable(a), 0, Pointer.readOnly(free), Pointer.writable(c)};

        IllegalStateException increment = assertThrows(IllegalStateException.class, () -> space.incrementPointers(pointers, 0));
        assertEquals("increment of free block " + free, increment.getMessage());
        assertEquals(2, space.count(a));
        assertEquals(2, space.count(c), "nothing after the free block is touched");

        IllegalStateException decrement = assertThrows(IllegalStateException.class,
                () -> space.decrementHoldingPointers(pointers, new long[pointers.length]));
        assertEquals("decrement of free block " + free, decrement.getMessage());
        assertEquals(1, space.count(a));
        assertEquals(2, space.count(c), "nothing after the free block is touched");
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

    /**
     * Extents of 2^17 blocks have 65 counter blocks, more than one word of dirty bits: children in three
     * data extents, many of them at counter blocks past the 64th, mark the same counter blocks as one by one.
     */
    @Test
    void batchesMatchOneByOneWhenAnExtentHasMoreThan64CounterBlocks() {
        int extentBlocks = 1 << 18; // 65 counter blocks of 4064 counters
        SpaceMap batched = newMap(extentBlocks);
        SpaceMap single = newMap(extentBlocks);
        long[] pointers = randomChildren(batched, single, new Random(13), 2 * extentBlocks + 1000);
        long highCounterBlocks = java.util.Arrays.stream(pointers).filter(pointer -> pointer != 0)
                .filter(pointer -> (Pointer.blockOf(pointer) & (extentBlocks - 1)) >= 64L * batched.geometry().counterEncoding().countersPerBlock())
                .count();
        assertTrue(highCounterBlocks > 0, "some children are counted in the second word of dirty bits");

        assertEquals(pointers.length, batched.incrementPointers(pointers.clone(), 0));
        java.util.Set<String> expectedDirty = new java.util.TreeSet<>();
        forEachChild(pointers, block -> expectedDirty.add(block / extentBlocks + "/" + batched.geometry().counterBlockOf(block)));
        java.util.Set<String> actualDirty = new java.util.TreeSet<>();
        batched.captureDirty(2).forEach(write -> actualDirty.add(write.extent() + "/" + write.counterBlock()));
        assertEquals(expectedDirty, actualDirty, "exactly the counter blocks of the children are written");
        single.captureDirty(2);
        forEachChild(pointers, single::increment);
        batched.captureDirty(3);
        single.captureDirty(3);
        for (int extent = 0; extent < single.extentCount(); extent++) {
            assertArrayEquals(single.copyCounters(extent), batched.copyCounters(extent), "counters of extent " + extent);
        }

        batched.decrementHoldingPointers(pointers, new long[pointers.length]);
        forEachChild(pointers, single::decrementHolding);
        assertSameState(single, batched);
    }

    /** Gives {@code update} the block of every pointer that is not a hole, in order. */
    private static void forEachChild(long[] pointers, java.util.function.LongConsumer update) {
        for (long pointer : pointers) {
            if (!Pointer.isHole(pointer)) {
                update.accept(Pointer.blockOf(pointer));
            }
        }
    }

    private static SpaceMap newMap() {
        return newMap(EXTENT_BLOCKS);
    }

    private static SpaceMap newMap(int extentBlocks) {
        SpaceMap space = new SpaceMap(new StoreGeometry(4L * extentBlocks, extentBlocks), MAX_REFCOUNT);
        space.formatSystemExtent();
        return space;
    }

    /**
     * The same 512 children in two maps: holes, blocks of counts 1 and 2, spread over two data extents so a
     * run changes extent and counter block; both maps committed clean first (no dirty counter blocks).
     */
    private static long[] randomChildren(SpaceMap first, SpaceMap second, Random random) {
        return randomChildren(first, second, random, 2 * EXTENT_BLOCKS - 200);
    }

    /** As above, over the first {@code allocatedBlocks} blocks the maps allocate. */
    private static long[] randomChildren(SpaceMap first, SpaceMap second, Random random, int allocatedBlocks) {
        List<Long> blocks = new ArrayList<>();
        for (int i = 0; i < allocatedBlocks; i++) {
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
