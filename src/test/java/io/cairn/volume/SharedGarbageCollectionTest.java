package io.cairn.volume;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.gc.CheckReport;
import io.cairn.gc.Checker;
import io.cairn.gc.GarbageCollector;
import io.cairn.gc.GcReport;
import io.cairn.io.FileBlockDevice;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The garbage collector and the checker on a store served by several nodes (docs/CLUSTER.md, "Garbage
 * collection"): node stores in one process over one file and one shared counter file, each with its own
 * collection barrier participant. A node "dies" by {@link Store#abandonAsIfCrashed}: what it had not committed
 * or applied is lost, and its allocations and increments stay in the shared counters as leaks.
 */
class SharedGarbageCollectionTest {

    private static final long STORE_BYTES = 512L << 20;
    private static final int EXTENT_BLOCKS = 2048;
    private static final long DISK_BYTES = 8L << 20;
    private static final int BLOCK = 4096;
    private static final int DISK_BLOCKS = (int) (DISK_BYTES / BLOCK);

    @TempDir
    Path dir;

    private Path storeFile() {
        return dir.resolve("store.cairn");
    }

    private Store node(int id) {
        return sharedNode(id, Duration.ofSeconds(10));
    }

    private void format() {
        Store.formatFile(storeFile(), STORE_BYTES, EXTENT_BLOCKS, StoreOptions.defaults()).close();
    }

    /** Formats the store and returns a fresh seed, printed so that a failure can be replayed. */
    private long formatAndSeed(String test) {
        format();
        long seed = new SplittableRandom().nextLong();
        System.out.println("SharedGarbageCollectionTest " + test + " seed " + seed);
        return seed;
    }

    /** Writes {@code count} random blocks into {@code model} and the disk; returns the blocks written. */
    private static List<Integer> writeBlocks(Volume volume, byte[] model, SplittableRandom random, int count) {
        List<Integer> written = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            int block = random.nextInt(DISK_BLOCKS);
            byte[] data = new byte[BLOCK];
            random.nextBytes(data);
            volume.write((long) block * BLOCK, ByteBuffer.wrap(data), false);
            System.arraycopy(data, 0, model, block * BLOCK, BLOCK);
            written.add(block);
        }
        return written;
    }

    private static Map<Long, Long> excessByBlock(List<CheckReport.Finding> leaks) {
        return leaks.stream().collect(Collectors.toMap(CheckReport.Finding::block, leak -> leak.counter() - leak.trueCount(),
                (x, y) -> x, TreeMap::new));
    }

    @Test
    void theLeaksOfACrashedNodeAreCollectedExactlyWhileTheOtherNodesWrite() throws Exception {
        long seed = formatAndSeed("crash");
        SplittableRandom random = new SplittableRandom(seed);
        byte[] modelA = new byte[(int) DISK_BYTES];
        byte[] modelB = new byte[(int) DISK_BYTES];
        byte[] modelC = new byte[(int) DISK_BYTES];
        try (Store a = node(1); Store b = node(2)) {
            Store c = node(3);
            a.create("a0", DISK_BYTES);
            a.hold("a0", 10, () -> true);
            b.create("b0", DISK_BYTES);
            b.hold("b0", 20, () -> true);
            c.create("c0", DISK_BYTES);
            c.hold("c0", 30, () -> true);
            Volume dying = c.openVolume("c0");
            writeBlocks(dying, modelC, random, 300);
            dying.flush();
            c.snapshot("c0", "before");
            assertEquals(0, Checker.check(a).leaks().size(), "no leak while every node lives");
            // After the snapshot every write copies: fresh blocks, and the copied nodes' children counted twice.
            // None of it is committed when the node dies (a checkpoint would make it commit: none runs meanwhile).
            byte[] lost = modelC.clone();
            writeBlocks(dying, lost, random, 200);
            c.abandonAsIfCrashed();

            // Node 1 takes the dead node's disk over: its durable state, with a takeover snapshot.
            a.hold("c0", 31, () -> true);
            CheckReport before = Checker.check(b);
            assertFalse(before.damaged(), before.toString());
            assertFalse(before.leaks().isEmpty(), "the dead node's uncommitted writes leak");
            Map<Long, Long> expected = excessByBlock(before.leaks());

            // Nodes 1 and 2 write while node 2 collects.
            AtomicBoolean stop = new AtomicBoolean();
            List<Throwable> problems = java.util.Collections.synchronizedList(new ArrayList<>());
            List<Thread> writers = new ArrayList<>();
            Object[][] work = {{a, "a0", modelA, seed + 1}, {b, "b0", modelB, seed + 2}};
            for (Object[] job : work) {
                writers.add(Thread.ofPlatform().start(() -> {
                    SplittableRandom own = new SplittableRandom((long) job[3]);
                    try (Volume volume = ((Store) job[0]).openVolume((String) job[1])) {
                        while (!stop.get()) {
                            writeBlocks(volume, (byte[]) job[2], own, 4);
                            if (own.nextInt(8) == 0) {
                                volume.flush();
                            }
                            if (own.nextInt(64) == 0) {
                                ((Store) job[0]).snapshot((String) job[1], null);
                            }
                        }
                        volume.flush();
                    } catch (Throwable problem) {
                        problems.add(problem);
                    }
                }));
            }
            Thread.sleep(100);
            GcReport report = GarbageCollector.collect(b);
            Thread.sleep(100);
            stop.set(true);
            for (Thread writer : writers) {
                writer.join();
            }
            assertEquals(List.of(), problems, "seed " + seed);
            assertFalse(report.damaged(), report.toString());
            assertEquals(expected, excessByBlock(report.leaks()), "the collector finds exactly the dead node's leaks (seed "
                    + seed + ")");
            assertEquals(expected.values().stream().mapToLong(Long::longValue).sum(), report.referencesRemoved());
            assertTrue(report.blocksFreed() > 0, report.toString());
            CheckReport after = Checker.check(a);
            assertTrue(after.clean(), "nothing left after the collection (seed " + seed + "): " + after);
            assertArrayEquals(modelA, ModelSupport.readAll(a, "a0"), "seed " + seed);
            assertArrayEquals(modelB, ModelSupport.readAll(b, "b0"), "seed " + seed);
            assertArrayEquals(modelC, ModelSupport.readAll(a, "c0"), "the dead node's disk as it last committed it");
        }
        try (Store alone = Store.openFile(storeFile(), StoreOptions.defaults())) {
            CheckReport report = Checker.check(alone);
            assertTrue(report.clean(), "seed " + seed + ": " + report);
            assertArrayEquals(modelA, ModelSupport.readAll(alone, "a0"), "seed " + seed);
            assertArrayEquals(modelB, ModelSupport.readAll(alone, "b0"), "seed " + seed);
            assertArrayEquals(modelC, ModelSupport.readAll(alone, "c0"), "seed " + seed);
        }
    }

    @Test
    void checkRepairIsRefusedOnASharedStoreAndSaysWhatToDo() {
        format();
        try (Store a = node(1); Store b = node(2)) {
            IllegalStateException refused = assertThrows(IllegalStateException.class, () -> Checker.repair(a));
            assertTrue(refused.getMessage().contains("run cairn gc on it instead"), refused.getMessage());
            assertTrue(Checker.check(b).clean());
        }
    }

    @Test
    void aSecondCollectionWhileOneRunsIsRefusedAndANodeThatDoesNotAnswerStopsTheCheckpoint() throws Exception {
        format();
        try (Store a = node(1); Store b = node(2)) {
            a.create("vm", DISK_BYTES);
            a.hold("vm", 1, () -> true);
            java.util.concurrent.CountDownLatch inCheckpoint = new java.util.concurrent.CountDownLatch(1);
            java.util.concurrent.CountDownLatch letGo = new java.util.concurrent.CountDownLatch(1);
            Thread first = Thread.ofPlatform().start(() -> a.collectionBarrier().withOthersFrozen(() -> {
                inCheckpoint.countDown();
                try {
                    letGo.await();
                } catch (InterruptedException interrupted) {
                    Thread.currentThread().interrupt();
                }
                return null;
            }, unused -> { }));
            inCheckpoint.await();
            IllegalStateException second = assertThrows(IllegalStateException.class, () -> GarbageCollector.collect(b));
            assertTrue(second.getMessage().contains("is running on this store"), second.getMessage());
            letGo.countDown();
            first.join();
            assertFalse(GarbageCollector.collect(b).damaged());

            // A node that holds its store and does not answer: the checkpoint waits for it, then gives up.
            try (Store slow = sharedNode(3, Duration.ofMillis(300))) {
                Thread holder = Thread.ofPlatform().start(() -> b.inspect(internals -> {
                    try {
                        Thread.sleep(1500);
                    } catch (InterruptedException interrupted) {
                        Thread.currentThread().interrupt();
                    }
                    return null;
                }));
                Thread.sleep(50);
                IllegalStateException late = assertThrows(IllegalStateException.class, () -> GarbageCollector.collect(slow));
                assertTrue(late.getMessage().contains("did not all stop") && late.getMessage().contains("node 2"),
                        late.getMessage());
                holder.join();
                assertTrue(Checker.check(slow).clean(), "nothing was left pinned");
            }
        }
    }

    /**
     * Three node stores write, flush, snapshot, delete snapshots and create and delete disks at random while a
     * fourth thread runs collections and checks through random nodes; one node dies at a random moment and
     * another takes its disk over. No collection or check ever finds damage, the disks hold what was written
     * (blocks the dead node wrote after its last commit may hold either version), and once a last collection
     * has run the store is clean, online and offline. The printed seed replays every node's sequence of
     * operations (the threads' interleaving is the scheduler's).
     */
    @Test
    void randomWorkOnThreeNodesWithCollectionsAndACrashStaysConsistent() throws Exception {
        long seed = formatAndSeed("random");
        SplittableRandom plan = new SplittableRandom(seed);
        int dying = 1 + plan.nextInt(3);
        int dieAtOp = 100 + plan.nextInt(300);
        Store[] nodes = {node(1), node(2), node(3)};
        byte[][] models = new byte[3][(int) DISK_BYTES];
        List<java.util.Set<Integer>> uncertain = List.of(new java.util.HashSet<>(), new java.util.HashSet<>(),
                new java.util.HashSet<>());
        for (int n = 0; n < 3; n++) {
            nodes[n].create("d" + (n + 1), DISK_BYTES);
            nodes[n].hold("d" + (n + 1), 10 + n, () -> true);
        }
        AtomicBoolean writersDone = new AtomicBoolean();
        List<Throwable> problems = java.util.Collections.synchronizedList(new ArrayList<>());
        List<Thread> threads = new ArrayList<>();
        for (int n = 0; n < 3; n++) {
            int which = n;
            threads.add(Thread.ofPlatform().name("node-" + (n + 1)).start(() -> {
                SplittableRandom random = new SplittableRandom(seed + 1 + which);
                Store store = nodes[which];
                String disk = "d" + (which + 1);
                List<String> snapshots = new ArrayList<>();
                try {
                    Volume volume = store.openVolume(disk);
                    for (int op = 0; op < 500; op++) {
                        if (which + 1 == dying && op == dieAtOp) {
                            store.abandonAsIfCrashed(); // whatever it had not committed is lost, and leaks
                            return;
                        }
                        int choice = random.nextInt(100);
                        if (choice < 70) {
                            uncertain.get(which).addAll(writeBlocks(volume, models[which], random, 1 + random.nextInt(6)));
                        } else if (choice < 82) {
                            volume.flush();
                            uncertain.get(which).clear();
                        } else if (choice < 90) {
                            snapshots.add(store.snapshot(disk, null).reference());
                            uncertain.get(which).clear(); // an admin change commits
                        } else if (choice < 96 && !snapshots.isEmpty()) {
                            store.deleteSnapshot(snapshots.remove(random.nextInt(snapshots.size())));
                            uncertain.get(which).clear();
                        } else {
                            String extra = disk + "-extra-" + op;
                            store.create(extra, DISK_BYTES);
                            store.hold(extra, 1, () -> true);
                            store.deleteVdi(extra, false);
                            uncertain.get(which).clear();
                        }
                    }
                    volume.flush();
                    uncertain.get(which).clear();
                    volume.close();
                } catch (Throwable problem) {
                    problems.add(new AssertionError("node " + (which + 1) + " (seed " + seed + ")", problem));
                }
            }));
        }
        List<String> collected = java.util.Collections.synchronizedList(new ArrayList<>());
        java.util.concurrent.atomic.AtomicLong blocksFreed = new java.util.concurrent.atomic.AtomicLong();
        Thread collector = Thread.ofPlatform().name("collector").start(() -> {
            SplittableRandom random = new SplittableRandom(seed + 4);
            try {
                while (!writersDone.get()) {
                    int by = random.nextInt(3);
                    if (by + 1 == dying) {
                        by = (by + 1) % 3; // the dying node may be gone at any moment
                    }
                    if (random.nextBoolean()) {
                        GcReport report = GarbageCollector.collect(nodes[by]);
                        assertFalse(report.damaged(), report.toString());
                        blocksFreed.addAndGet(report.blocksFreed());
                        collected.add("gc by " + (by + 1) + ": " + report.leaks().size() + " leak(s)");
                    } else {
                        CheckReport report = Checker.check(nodes[by]);
                        assertFalse(report.damaged(), report.toString());
                        collected.add("check by " + (by + 1) + ": " + report.leaks().size() + " leak(s)");
                    }
                    Thread.sleep(random.nextInt(30));
                }
            } catch (Throwable problem) {
                problems.add(new AssertionError("collector (seed " + seed + ")", problem));
            }
        });
        for (Thread thread : threads) {
            thread.join();
        }
        writersDone.set(true);
        collector.join();
        if (!problems.isEmpty()) {
            AssertionError error = new AssertionError("seed " + seed + ", runs: " + collected, problems.get(0));
            problems.stream().skip(1).forEach(error::addSuppressed);
            throw error;
        }
        int survivor = dying % 3; // index of the next node
        Store taker = nodes[survivor];
        taker.hold("d" + dying, 100, () -> true);
        GcReport last = GarbageCollector.collect(taker);
        assertFalse(last.damaged(), "seed " + seed + ": " + last);
        CheckReport online = Checker.check(taker);
        assertTrue(online.clean(), "seed " + seed + ", runs " + collected + ": " + online);
        for (int n = 0; n < 3; n++) {
            assertDisk(n + 1 == dying ? taker : nodes[n], n, models[n], uncertain.get(n), seed);
        }
        for (int n = 0; n < 3; n++) {
            if (n + 1 != dying) {
                nodes[n].close();
            }
        }
        try (Store alone = Store.openFile(storeFile(), StoreOptions.defaults())) {
            CheckReport offline = Checker.check(alone);
            assertTrue(offline.clean(), "seed " + seed + ": " + offline);
            for (int n = 0; n < 3; n++) {
                assertDisk(alone, n, models[n], uncertain.get(n), seed);
            }
        }
        System.out.println("SharedGarbageCollectionTest: node " + dying + " died at op " + dieAtOp + "; " + collected.size()
                + " collections and checks ran; they freed " + blocksFreed.get() + " block(s), the last one "
                + last.blocksFreed());
    }

    /**
     * A collector slower than the participants will wait for: they give up and say so, and the collector
     * finds that after its checkpoint, undoes it and fails; the next collection with a prompt collector works.
     */
    @Test
    void aCheckpointThatOutlastsTheParticipantsPatienceIsUndone() throws Exception {
        format();
        Duration wait = Duration.ofMillis(200); // participants wait at most three times this for the release
        try (Store a = sharedNode(1, wait); Store b = sharedNode(2, wait)) {
            a.create("vm", DISK_BYTES);
            a.hold("vm", 1, () -> true);
            AtomicBoolean undone = new AtomicBoolean();
            IllegalStateException broken = assertThrows(IllegalStateException.class,
                    () -> b.collectionBarrier().withOthersFrozen(() -> {
                        try {
                            Thread.sleep(1500);
                        } catch (InterruptedException interrupted) {
                            Thread.currentThread().interrupt();
                        }
                        return "checkpoint";
                    }, result -> undone.set("checkpoint".equals(result))));
            assertTrue(broken.getMessage().contains("stopped waiting before the checkpoint ended"), broken.getMessage());
            assertTrue(undone.get(), "the checkpoint was undone");
            try (Volume volume = a.openVolume("vm")) {
                volume.write(0, ByteBuffer.wrap(ModelSupport.randomBytes(5, BLOCK)), true);
            }
            assertFalse(GarbageCollector.collect(b).damaged());
            assertTrue(Checker.check(a).clean());
        }
    }

    private Store sharedNode(int id, Duration barrierWait) {
        return Store.openShared(FileBlockDevice.open(storeFile(), false), null, StoreOptions.defaults(), id,
                dir.resolve("store.live"), barrierWait);
    }

    /** Disk {@code n + 1} as {@code store} reads it equals {@code model}, except at blocks written but not committed. */
    private static void assertDisk(Store store, int n, byte[] model, java.util.Set<Integer> uncertain, long seed) {
        byte[] disk = ModelSupport.readAll(store, "d" + (n + 1));
        for (int block = 0; block < DISK_BLOCKS; block++) {
            if (!uncertain.contains(block)) {
                assertTrue(java.util.Arrays.equals(model, block * BLOCK, (block + 1) * BLOCK, disk, block * BLOCK,
                        (block + 1) * BLOCK), "disk d" + (n + 1) + " block " + block + " (seed " + seed + ")");
            }
        }
    }
}
