package io.cairn.tree;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.alloc.SpaceMap;
import io.cairn.format.Layout;
import io.cairn.format.Pointer;
import io.cairn.format.StoreGeometry;
import io.cairn.io.MemoryBlockDevice;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;

/**
 * {@link TreeSpace#forEachDifference} visits exactly the entries whose blocks differ, as looking every touched
 * entry up in both trees finds them, in index order; and {@link TreeSpace#forEachDifferenceWithin}, called again
 * and again from where it stopped with a small node budget, visits the same, and every call gets somewhere. Trees of height 3 with entries spread over the whole index space, so pieces end at every
 * level; the seed is printed by jqwik on failure and replays the case.
 */
class DifferenceWalkTest {

    private static final int HEIGHT = 3;

    private record Visit(long index, long oldBlock, long newBlock) {
    }

    @Property(tries = 60)
    void piecesVisitWhatOneWalkVisits(@ForAll long seed, @ForAll @IntRange(min = 1, max = 8) int nodesPerPiece,
                                      @ForAll @IntRange(min = 0, max = 300) int entries) {
        SplittableRandom random = new SplittableRandom(seed);
        StoreGeometry geometry = new StoreGeometry(128L * Layout.MIN_EXTENT_BLOCKS, Layout.MIN_EXTENT_BLOCKS);
        SpaceMap space = new SpaceMap(geometry, Layout.MAX_REFCOUNT);
        space.formatSystemExtent();
        MemoryBlockDevice device = new MemoryBlockDevice(geometry.storeBlocks() * Layout.BLOCK_BYTES);
        TreeSpace trees = new TreeSpace(device, space, new NodeCache(device, 1 << 20), 1);
        long capacity = TreeSpace.capacity(HEIGHT);
        RootRef ref = new RootRef(0, HEIGHT);
        List<Long> written = new ArrayList<>();
        java.util.TreeSet<Long> touched = new java.util.TreeSet<>();
        for (int i = 0; i < entries; i++) {
            long index = randomIndex(random, capacity);
            trees.exchange(ref, index, Pointer.writable(space.allocate(SpaceMap.Purpose.DATA)), LeafKind.DATA);
            written.add(index);
            touched.add(index);
        }
        long oldRoot = ref.root();
        if (oldRoot != 0) {
            trees.share(oldRoot, HEIGHT, LeafKind.DATA); // a snapshot: what follows copies
        }
        for (int i = 0; i < entries / 2 + 1; i++) {
            int what = random.nextInt(3);
            if (what == 0 && !written.isEmpty()) {
                trees.punch(ref, written.get(random.nextInt(written.size())), LeafKind.DATA);
            } else {
                long index = what == 1 && !written.isEmpty() ? written.get(random.nextInt(written.size()))
                        : randomIndex(random, capacity);
                trees.exchange(ref, index, Pointer.writable(space.allocate(SpaceMap.Purpose.DATA)), LeafKind.DATA);
                touched.add(index);
            }
        }
        long from = random.nextInt(4) == 0 ? randomIndex(random, capacity) : 0;
        long to = random.nextInt(4) == 0 ? from + random.nextLong(capacity - from) + 1 : capacity;

        List<Visit> expected = new ArrayList<>();
        for (long index : touched.subSet(from, to)) {
            long oldBlock = oldRoot == 0 ? 0 : Pointer.blockOf(trees.lookup(oldRoot, HEIGHT, index));
            long newBlock = ref.root() == 0 ? 0 : Pointer.blockOf(trees.lookup(ref.root(), HEIGHT, index));
            if (oldBlock != newBlock) {
                expected.add(new Visit(index, oldBlock, newBlock));
            }
        }
        List<Visit> whole = new ArrayList<>();
        trees.forEachDifference(oldRoot, ref.root(), HEIGHT, from, to,
                (index, oldBlock, newBlock) -> whole.add(new Visit(index, oldBlock, newBlock)));
        assertEquals(expected, whole, "one walk visits what lookups find");
        List<Visit> pieces = new ArrayList<>();
        long at = from;
        int calls = 0;
        while (at < to) {
            long next = trees.forEachDifferenceWithin(oldRoot, ref.root(), HEIGHT, at, to, nodesPerPiece,
                    (index, oldBlock, newBlock) -> pieces.add(new Visit(index, oldBlock, newBlock)));
            assertTrue(next > at && next <= to, "a piece gets somewhere: from " + at + " to " + next);
            for (Visit visit : pieces) {
                assertTrue(visit.index() < next, "nothing visited at or after where the piece stopped");
            }
            at = next;
            calls++;
        }
        assertEquals(whole, pieces);
        if (!whole.isEmpty() && nodesPerPiece == 1) {
            assertTrue(calls > 1 || whole.getLast().index() - whole.getFirst().index() < Layout.POINTERS_PER_NODE,
                    "a budget of one node stops after each leaf");
        }
    }

    private static long randomIndex(SplittableRandom random, long capacity) {
        // Half anywhere (a path of their own), half near the start (several entries per leaf).
        return random.nextBoolean() ? random.nextLong(capacity) : random.nextLong(4L * Layout.POINTERS_PER_NODE);
    }
}
