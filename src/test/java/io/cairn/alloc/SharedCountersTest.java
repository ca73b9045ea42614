package io.cairn.alloc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.format.Layout;
import io.cairn.format.StoreGeometry;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SharedCountersTest {

    private static final StoreGeometry GEOMETRY = new StoreGeometry(4 * 2048, 2048);

    private static SharedCounters attach(Path file, UUID storeId) {
        return SharedCounters.attach(file, storeId, GEOMETRY, 7, built -> {
            for (int extent = 0; extent < GEOMETRY.extentCount(); extent++) {
                for (int i = 0; i < GEOMETRY.reservedBlocks(extent); i++) {
                    built.set(GEOMETRY.extentStart(extent) + i, 1);
                }
                built.setFreeBlocks(extent, GEOMETRY.extentBlocks() - GEOMETRY.reservedBlocks(extent));
            }
        });
    }

    @Test
    void aFileInUseIsSharedAndOneNobodyUsesForeignOrHalfBuiltIsRebuilt(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("store.live");
        UUID storeId = UUID.randomUUID();
        long block;
        try (SharedCounters first = attach(file, storeId)) {
            assertTrue(first.rebuilt());
            assertEquals(7, first.loadedAtGeneration());
            block = first.allocate(2048, 4096, 2048);
            first.increment(block, 65535);
            try (SharedCounters again = attach(file, storeId)) {
                assertFalse(again.rebuilt(), "a file in use is mapped as it is");
                assertEquals(2, again.count(block));
                assertEquals(2, again.attachments());
            }
            assertEquals("the shared counter file " + file + " is in use by this process for another store or geometry",
                    assertThrows(IllegalStateException.class, () -> attach(file, UUID.randomUUID())).getMessage());
        }
        try (SharedCounters alone = attach(file, storeId)) {
            assertTrue(alone.rebuilt(), "a file nobody is attached to may be stale: it is rebuilt from the store");
            assertEquals(0, alone.count(block));
        }
        // A builder that dies half-way leaves the state "building": the next attachment rebuilds.
        UUID third = UUID.randomUUID();
        assertThrows(IllegalStateException.class, () -> SharedCounters.attach(file, third, GEOMETRY, 1, built -> {
            built.set(5000, 3);
            throw new IllegalStateException("builder died");
        }));
        try (SharedCounters rebuilt = attach(file, third)) {
            assertTrue(rebuilt.rebuilt());
            assertEquals(0, rebuilt.count(5000));
        }
        Files.delete(file);
    }

    @Test
    void claimsHoldersSlotsGenerationsAndInterruptedCommits(@TempDir Path dir) {
        try (SharedCounters counters = attach(dir.resolve("store.live"), UUID.randomUUID())) {
            assertEquals(0, counters.extentHolder(2));
            assertTrue(counters.claimExtent(2, 5, io.cairn.format.ExtentRecord.Type.DATA));
            assertFalse(counters.claimExtent(2, 6, io.cairn.format.ExtentRecord.Type.DATA), "one claim wins");
            assertEquals(5, counters.extentHolder(2));
            assertEquals(io.cairn.format.ExtentRecord.Type.DATA, counters.extentType(2));
            assertEquals(-1, counters.durableSlot(2, 0), "a fresh file knows no durable slot");
            counters.setDurableSlot(2, 0, 1);
            assertEquals(1, counters.durableSlot(2, 0));
            assertEquals(7, counters.highestGeneration());
            counters.raiseHighestGeneration(12);
            counters.raiseHighestGeneration(9);
            assertEquals(12, counters.highestGeneration());

            for (int extent = 0; extent < GEOMETRY.extentCount(); extent++) {
                counters.takeDirty(extent); // what the builder set, as a first commit would take it
            }
            counters.commitFinished();
            assertFalse(counters.anyDirty());
            long block = counters.allocate(GEOMETRY.extentStart(2) + GEOMETRY.reservedBlocks(2), GEOMETRY.extentStart(3),
                    GEOMETRY.extentStart(2) + GEOMETRY.reservedBlocks(2));
            assertTrue(counters.anyDirty());
            BitSet taken = counters.takeDirty(2);
            assertEquals(1, taken.cardinality());
            assertFalse(counters.anyDirty());
            // The committing process dies before its superblock is durable: the next commit gets the bits back.
            counters.recoverInterruptedCommit();
            assertEquals(taken, counters.takeDirty(2));
            counters.commitFinished();
            counters.recoverInterruptedCommit();
            assertFalse(counters.anyDirty(), "a finished commit leaves nothing in flight");
            assertEquals(1, counters.count(block));
        }
    }

    @Test
    void aStoppedProcessIsToldApartFromARunningOne() throws Exception {
        assertFalse(SharedCounters.isStopped(ProcessHandle.current().pid()));
        Process sleeper = new ProcessBuilder("sleep", "60").start();
        try {
            assertFalse(SharedCounters.isStopped(sleeper.pid()), "sleeping is not stopped");
            new ProcessBuilder("kill", "-STOP", Long.toString(sleeper.pid())).start().waitFor();
            long deadline = System.nanoTime() + 5_000_000_000L;
            while (!SharedCounters.isStopped(sleeper.pid()) && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertTrue(SharedCounters.isStopped(sleeper.pid()));
        } finally {
            sleeper.destroyForcibly().waitFor();
        }
        assertFalse(SharedCounters.isStopped(sleeper.pid()), "a process that is gone is not stopped");
    }

    @Test
    void holdingDecrementsAndPointerBatchesWorkOnSharedCounters(@TempDir Path dir) {
        try (SharedCounters counters = attach(dir.resolve("store.live"), UUID.randomUUID())) {
            long first = GEOMETRY.extentStart(1) + GEOMETRY.reservedBlocks(1);
            long a = counters.allocate(first, GEOMETRY.extentStart(2), first);
            long b = counters.allocate(first, GEOMETRY.extentStart(2), first);
            counters.increment(b, 65535);
            long[] pointers = {a | (1L << 62), 0, b};
            assertEquals(3, counters.incrementPointers(pointers, 0, 3), "a hole is skipped");
            assertEquals(2, counters.count(a));
            assertEquals(3, counters.count(b));
            assertEquals(2, counters.incrementPointers(pointers, 0, 3), "stops at the saturated counter, unchanged");
            assertEquals(3, counters.count(a));
            assertEquals(3, counters.count(b));
            long[] held = new long[3];
            assertEquals(0, counters.decrementHoldingPointers(pointers, held));
            assertEquals(0, counters.decrementHoldingPointers(pointers, held));
            assertEquals(1, counters.count(a));
            assertEquals(1, counters.decrementHoldingPointers(new long[] {a}, held));
            assertEquals(a, held[0]);
            assertEquals(1, counters.count(a), "the last reference leaves the block held at 1, not free");
            assertEquals(0, counters.decrementHolding(a));
            assertEquals(0, counters.decrement(a));
        }
    }

    @Test
    void compareAndSetChangesOnlyFromTheExpectedValueLosesNoNeighbourAndKeepsTheFreeCount(@TempDir Path dir)
            throws Exception {
        try (SharedCounters counters = attach(dir.resolve("store.live"), UUID.randomUUID())) {
            long word = (GEOMETRY.extentStart(1) + GEOMETRY.reservedBlocks(1) + 3) & ~3L;
            long block = word;
            long neighbour = word + 1; // the same 64-bit word: a CAS of one lane must not lose the other's changes
            counters.set(block, 2);
            counters.set(neighbour, 1);
            long free = counters.freeBlocks(1);
            assertFalse(counters.compareAndSet(block, 3, 1), "not from another value");
            assertEquals(2, counters.count(block));
            int rounds = 5000;
            Thread other = Thread.ofPlatform().start(() -> {
                for (int i = 0; i < rounds; i++) {
                    counters.increment(neighbour, 65535);
                }
            });
            for (int i = 0; i < rounds; i++) {
                assertTrue(counters.compareAndSet(block, 2, 3));
                assertTrue(counters.compareAndSet(block, 3, 2));
            }
            other.join();
            assertEquals(1 + rounds, counters.count(neighbour));
            assertTrue(counters.compareAndSet(block, 2, 0));
            assertEquals(free + 1, counters.freeBlocks(1), "a counter set to 0 is a free block");
            assertTrue(counters.compareAndSet(block, 0, 1));
            assertEquals(free, counters.freeBlocks(1));
            assertTrue(counters.isDirty(1, GEOMETRY.counterBlockOf(block)));
        }
    }

    @Test
    void wrongUseIsRefusedWithTheBlockNamed(@TempDir Path dir) {
        try (SharedCounters counters = attach(dir.resolve("store.live"), UUID.randomUUID())) {
            long free = GEOMETRY.extentStart(1) + 100;
            assertEquals("increment of free block " + free,
                    assertThrows(IllegalStateException.class, () -> counters.increment(free, 65535)).getMessage());
            assertEquals("decrement of free block " + free,
                    assertThrows(IllegalStateException.class, () -> counters.decrement(free)).getMessage());
            assertThrows(IllegalArgumentException.class, () -> counters.count(GEOMETRY.storeBlocks()));
            counters.set(free, 3);
            assertThrows(RefcountSaturatedException.class, () -> counters.increment(free, 3));
            assertEquals(3, counters.count(free));
        }
    }

    @Test
    void threadsAllocatingFromOneExtentNeverGetTheSameBlock(@TempDir Path dir) throws Exception {
        try (SharedCounters counters = attach(dir.resolve("store.live"), UUID.randomUUID())) {
            long start = GEOMETRY.extentStart(1);
            long end = start + GEOMETRY.extentBlocks();
            int threads = 8;
            Set<Long> taken = ConcurrentHashMap.newKeySet();
            List<Long> duplicates = new ArrayList<>();
            CountDownLatch go = new CountDownLatch(1);
            List<Thread> workers = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int seed = t;
                workers.add(Thread.ofPlatform().start(() -> {
                    awaitQuietly(go);
                    long cursor = start + seed * 97L;
                    while (true) {
                        long block = counters.allocate(start, end, cursor);
                        if (block < 0) {
                            return;
                        }
                        if (!taken.add(block)) {
                            synchronized (duplicates) {
                                duplicates.add(block);
                            }
                        }
                    }
                }));
            }
            go.countDown();
            for (Thread worker : workers) {
                worker.join();
            }
            assertEquals(List.of(), duplicates);
            assertEquals(GEOMETRY.extentBlocks() - GEOMETRY.reservedBlocks(1), taken.size(), "every free block handed out once");
            assertEquals(0, counters.freeBlocks(1));
            assertEquals(-1, counters.allocate(start, end, start));
        }
    }

    /** Index of a block's counter block over the whole store: extent by extent. */
    private static int counterBlockIndex(long block) {
        return GEOMETRY.extentOf(block) * GEOMETRY.counterBlocksPerExtent()
                + GEOMETRY.counterBlockOf(block);
    }

    private static void awaitQuietly(CountDownLatch latch) {
        try {
            latch.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Model: a plain array of counters. Random operations on both; counters, free counts and dirty
     * counter blocks must agree after every step.
     */
    @Property(tries = 60)
    void behavesLikeAnArrayOfCounters(@ForAll @Size(min = 1, max = 400) List<@IntRange(min = 0, max = 99_999) Integer> ops,
                                      @ForAll @IntRange(min = 0, max = 3) int startLane) throws Exception {
        Path dir = Files.createTempDirectory("shared-counters");
        Path file = dir.resolve("store.live");
        int[] model = new int[(int) GEOMETRY.storeBlocks()];
        try (SharedCounters counters = attach(file, UUID.randomUUID())) {
            for (int extent = 0; extent < GEOMETRY.extentCount(); extent++) {
                for (int i = 0; i < GEOMETRY.reservedBlocks(extent); i++) {
                    model[(int) GEOMETRY.extentStart(extent) + i] = 1;
                }
                counters.takeDirty(extent);
            }
            BitSet dirtyModel = new BitSet();
            long rangeStart = GEOMETRY.extentStart(1) + startLane;
            long rangeEnd = rangeStart + 300; // small, so allocation runs out and wraps
            for (int op : ops) {
                long block = rangeStart + op % 300;
                switch (op % 5) {
                    case 0, 1 -> {
                        long got = counters.allocate(rangeStart, rangeEnd, block);
                        long expected = -1;
                        for (long b = block; b < rangeEnd && expected < 0; b++) {
                            expected = model[(int) b] == 0 ? b : -1;
                        }
                        for (long b = rangeStart; b < block && expected < 0; b++) {
                            expected = model[(int) b] == 0 ? b : -1;
                        }
                        assertEquals(expected, got, "first free block from " + block);
                        if (got >= 0) {
                            model[(int) got] = 1;
                            dirtyModel.set(counterBlockIndex(got));
                        }
                    }
                    case 2 -> {
                        if (model[(int) block] > 0) {
                            assertEquals(model[(int) block] + 1, counters.increment(block, 65535));
                            model[(int) block]++;
                            dirtyModel.set(counterBlockIndex(block));
                        }
                    }
                    case 3 -> {
                        if (model[(int) block] > 0) {
                            assertEquals(model[(int) block] - 1, counters.decrement(block));
                            model[(int) block]--;
                            dirtyModel.set(counterBlockIndex(block));
                        }
                    }
                    default -> {
                        int value = op % 7;
                        assertEquals(model[(int) block], counters.set(block, value));
                        if (model[(int) block] != value) {
                            dirtyModel.set(counterBlockIndex(block));
                        }
                        model[(int) block] = value;
                    }
                }
            }
            for (int b = 0; b < model.length; b++) {
                assertEquals(model[b], counters.count(b), "block " + b);
            }
            for (int extent = 0; extent < GEOMETRY.extentCount(); extent++) {
                long free = 0;
                for (long b = GEOMETRY.extentStart(extent); b < GEOMETRY.extentStart(extent) + GEOMETRY.extentBlocks(); b++) {
                    free += model[(int) b] == 0 ? 1 : 0;
                }
                assertEquals(free, counters.freeBlocks(extent), "free blocks of extent " + extent);
                BitSet taken = counters.takeDirty(extent);
                for (int i = 0; i < GEOMETRY.counterBlocksPerExtent(); i++) {
                    int global = extent * GEOMETRY.counterBlocksPerExtent() + i;
                    assertEquals(dirtyModel.get(global), taken.get(i), "dirty bit of counter block " + i
                            + " of extent " + extent);
                }
                assertTrue(counters.takeDirty(extent).isEmpty(), "taking clears the bits");
            }
        } finally {
            Files.deleteIfExists(file);
            Files.delete(dir);
        }
    }
}
