package io.cairn.alloc;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.cairn.format.Layout;
import io.cairn.format.Pointer;
import io.cairn.format.StoreGeometry;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * Counter passes from several threads at once, as the store runs them without its metadata lock (LocalCounters
 * design note 3): a leaf copy's increments and a reclaimed leaf's decrements over the same blocks, while commits
 * take the dirty bits and copy the counters. No change may be lost — every counter ends where the passes add up
 * to — and none may be missed by the commits: for every counter block, the last copy a commit took holds the
 * final counters (a change after a commit's copy leaves its bit set for the next one).
 */
class ConcurrentCounterPassesTest {

    private static final int EXTENT_BLOCKS = 8192;
    private static final int PASSES = 4000;
    private static final int BASE_COUNT = 8;

    @Test
    void concurrentPassesLoseNoChangeAndCommitsMissNone() throws Exception {
        long seed = new Random().nextLong();
        System.out.println("ConcurrentCounterPassesTest seed " + seed);
        Random random = new Random(seed);
        SpaceMap space = new SpaceMap(new StoreGeometry(4L * EXTENT_BLOCKS, EXTENT_BLOCKS), Layout.MAX_REFCOUNT);
        space.formatSystemExtent();
        // Two leaves' worth of children spread over the data extents, overlapping, each at BASE_COUNT.
        long[] blocks = new long[Layout.POINTERS_PER_NODE * 3 / 2];
        for (int i = 0; i < blocks.length; i++) {
            blocks[i] = space.allocate(SpaceMap.Purpose.DATA);
            for (int count = 1; count < BASE_COUNT; count++) {
                space.increment(blocks[i]);
            }
        }
        long[] first = shuffledPointers(blocks, 0, Layout.POINTERS_PER_NODE, random);
        long[] second = shuffledPointers(blocks, blocks.length - Layout.POINTERS_PER_NODE, blocks.length, random);
        Map<String, char[]> lastCopies = new HashMap<>();
        record(lastCopies, space.captureDirty(2));

        CyclicBarrier start = new CyclicBarrier(3);
        try (ExecutorService threads = Executors.newFixedThreadPool(2)) {
            Future<?> copier = threads.submit(() -> {
                await(start);
                for (int i = 0; i < PASSES; i++) {
                    // A leaf copy references the first leaf's targets, a reclamation releases them again; the
                    // other thread does the same with the second leaf, which shares a third of its targets.
                    assertEquals(first.length, space.incrementPointers(first, 0));
                    assertEquals(0, space.decrementHoldingPointers(first, new long[first.length]));
                }
            });
            Future<?> reclaimer = threads.submit(() -> {
                await(start);
                for (int i = 0; i < PASSES; i++) {
                    assertEquals(second.length, space.incrementPointers(second, 0));
                    assertEquals(0, space.decrementHoldingPointers(second, new long[second.length]));
                }
            });
            await(start);
            long generation = 3;
            while (!copier.isDone() || !reclaimer.isDone()) {
                // A commit: the bits taken (under the store's lock), the counters copied after it.
                List<SpaceMap.DirtyCounterBlock> taken = space.takeDirty(generation++);
                record(lastCopies, space.copyCounters(taken));
            }
            copier.get(); // a failure in a pass fails the test here
            reclaimer.get();
            record(lastCopies, space.captureDirty(generation));
        }

        for (long block : blocks) {
            assertEquals(BASE_COUNT, space.count(block), "block " + block + " (seed " + seed + ")");
        }
        for (Map.Entry<String, char[]> copy : lastCopies.entrySet()) {
            String[] key = copy.getKey().split("/");
            int extent = Integer.parseInt(key[0]);
            int counterBlock = Integer.parseInt(key[1]);
            char[] now = new char[copy.getValue().length];
            long firstBlock = space.geometry().extentStart(extent) + space.geometry().firstCoveredOffset(counterBlock);
            for (int i = 0; i < now.length; i++) {
                now[i] = (char) space.count(firstBlock + i);
            }
            assertArrayEquals(now, copy.getValue(), "the last copy of counter block " + copy.getKey()
                    + " a commit took holds the final counters (seed " + seed + ")");
        }
    }

    private static void record(Map<String, char[]> lastCopies, List<SpaceMap.CounterWrite> writes) {
        for (SpaceMap.CounterWrite write : writes) {
            if (write.counters() != null) {
                lastCopies.put(write.extent() + "/" + write.counterBlock(), write.counters());
            }
        }
    }

    private static long[] shuffledPointers(long[] blocks, int from, int to, Random random) {
        long[] pointers = new long[to - from];
        for (int i = 0; i < pointers.length; i++) {
            pointers[i] = Pointer.readOnly(blocks[from + i]);
        }
        for (int i = pointers.length - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            long swap = pointers[i];
            pointers[i] = pointers[j];
            pointers[j] = swap;
        }
        return pointers;
    }

    private static void await(CyclicBarrier barrier) {
        try {
            barrier.await();
        } catch (Exception interrupted) {
            throw new IllegalStateException(interrupted);
        }
    }
}
