package io.cairn.gc;

import io.cairn.io.MemoryBlockDevice;
import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.VdiInfo;
import io.cairn.volume.Volume;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The collector runs again and again while other threads write, snapshot, clone, delete and commit on
 * the same store; before each run a leak is made (a data block's counter raised, or a block allocated
 * and linked nowhere). Each run must find exactly the leaks made since the previous one — nothing the workers do
 * looks like a leak, and no leak escapes — and afterwards every disk and snapshot must read as the
 * workers' models say and the checker must find the store clean. Seed: {@code -Dcairn.gc.seed=N}.
 */
class GarbageCollectorOnlineTest {

    private static final int WORKERS = 3;
    private static final int OPERATIONS_PER_WORKER = 400;
    private static final long DISK_BYTES = 3L << 20;
    private static final int BLOCK = 4096;

    @Test
    void collectsInjectedLeaksWhileOthersWriteSnapshotCloneAndDelete() throws Exception {
        long seed = Long.getLong("cairn.gc.seed", System.nanoTime());
        String context = "seed " + seed + " (replay with -Dcairn.gc.seed=" + seed + ")";
        Store store = Store.format(new MemoryBlockDevice(), 128L << 20, 256, StoreOptions.defaults());
        AtomicLong operations = new AtomicLong();
        List<Worker> workers = new ArrayList<>();
        for (int w = 0; w < WORKERS; w++) {
            workers.add(new Worker(store, "w" + w, new Random(seed + w), operations));
        }
        int collections = 0;
        long operationsDuringScans = 0;
        Random random = new Random(seed - 1);
        try (ExecutorService pool = Executors.newFixedThreadPool(WORKERS)) {
            List<Future<?>> running = new ArrayList<>();
            for (Worker worker : workers) {
                running.add(pool.submit(() -> {
                    worker.run(OPERATIONS_PER_WORKER);
                    return null;
                }));
            }
            Future<?> stop = pool.submit(() -> {
                for (Future<?> future : running) {
                    future.get();
                }
                return null;
            });
            while (!stop.isDone() || collections < 3) {
                Map<Long, Integer> injected = new TreeMap<>();
                for (int i = random.nextInt(3); i >= 0; i--) {
                    StoreContent.Leak leak = StoreContent.inject(store, random, true);
                    injected.merge(leak.block(), leak.excess(), Integer::sum);
                }
                long[] before = new long[1];
                GcReport report = GarbageCollector.collect(store, () -> {
                    before[0] = operations.get();
                    sleep(2); // a slower scan, so that more of the workers' operations overlap it
                });
                operationsDuringScans += operations.get() - before[0];
                collections++;
                assertFalse(report.damaged(), () -> context + ": " + report.summary());
                Map<Long, Integer> found = new TreeMap<>();
                report.leaks().forEach(leak -> found.put(leak.block(), Math.toIntExact(leak.counter() - leak.trueCount())));
                assertEquals(injected, found, context + ", collection " + collections + ": " + report.summary());
            }
            stop.get(); // rethrows a worker's failure
        }
        assertTrue(collections >= 3, "collections: " + collections);
        assertTrue(operationsDuringScans > 0, "no operation overlapped a scan in " + collections + " collections");
        for (Worker worker : workers) {
            worker.verifyAll(context);
        }
        Set<String> disks = new TreeSet<>();
        workers.forEach(worker -> disks.addAll(worker.disks.keySet()));
        assertEquals(disks, new TreeSet<>(store.listVdis(false).stream().map(VdiInfo::name).toList()), context);
        CheckReport check = Checker.check(store);
        assertTrue(check.clean(), () -> context + ": " + check.summary());
        store.close();
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** One client: its own disks, snapshots and clones, each with a model of its content. */
    private static final class Worker {
        private final Store store;
        private final String prefix;
        private final Random random;
        private final AtomicLong operations;
        final Map<String, byte[]> disks = new LinkedHashMap<>();
        /** Live snapshots by reference, with the disk they belong to. */
        private final Map<String, byte[]> snapshots = new LinkedHashMap<>();
        private final Map<String, String> snapshotDisk = new TreeMap<>();
        private int created;

        Worker(Store store, String prefix, Random random, AtomicLong operations) {
            this.store = store;
            this.prefix = prefix;
            this.random = random;
            this.operations = operations;
        }

        void run(int count) {
            createDisk();
            for (int i = 0; i < count; i++) {
                int draw = random.nextInt(100);
                if (draw < 50) {
                    write();
                } else if (draw < 60) {
                    snapshot();
                } else if (draw < 68) {
                    cloneSnapshot();
                } else if (draw < 76) {
                    deleteSnapshot();
                } else if (draw < 81) {
                    deleteDisk();
                } else if (draw < 90) {
                    verify(pick(disks.keySet()), "during the run");
                } else {
                    store.commit();
                }
                operations.incrementAndGet();
            }
        }

        private void createDisk() {
            String name = prefix + "-" + created++;
            store.create(name, DISK_BYTES);
            disks.put(name, new byte[(int) DISK_BYTES]);
        }

        private void write() {
            String disk = pick(disks.keySet());
            int length = 1 + random.nextInt(3 * BLOCK);
            int offset = random.nextInt((int) DISK_BYTES - length);
            byte[] data = new byte[length];
            random.nextBytes(data);
            try (Volume volume = store.openVolume(disk)) {
                volume.write(offset, ByteBuffer.wrap(data), false);
            }
            System.arraycopy(data, 0, disks.get(disk), offset, length);
        }

        private void snapshot() {
            String disk = pick(disks.keySet());
            SnapshotInfo info = store.snapshot(disk, null);
            snapshots.put(info.reference(), disks.get(disk).clone());
            snapshotDisk.put(info.reference(), disk);
        }

        private void cloneSnapshot() {
            if (snapshots.isEmpty()) {
                return;
            }
            String source = pick(snapshots.keySet());
            String name = prefix + "-" + created++;
            store.clone(name, source);
            disks.put(name, snapshots.get(source).clone());
        }

        private void deleteSnapshot() {
            if (snapshots.isEmpty()) {
                return;
            }
            String reference = pick(snapshots.keySet());
            store.deleteSnapshot(reference);
            snapshots.remove(reference);
            snapshotDisk.remove(reference);
        }

        private void deleteDisk() {
            if (disks.size() < 2) {
                createDisk();
                return;
            }
            String disk = pick(disks.keySet());
            store.deleteVdi(disk, true);
            disks.remove(disk);
            snapshotDisk.entrySet().removeIf(entry -> {
                if (entry.getValue().equals(disk)) {
                    snapshots.remove(entry.getKey());
                    return true;
                }
                return false;
            });
        }

        private void verify(String export, String when) {
            byte[] expected = disks.containsKey(export) ? disks.get(export) : snapshots.get(export);
            byte[] actual = StoreContent.read(store, export, DISK_BYTES);
            if (!Arrays.equals(expected, actual)) {
                assertArrayEquals(expected, actual, export + " " + when);
            }
        }

        void verifyAll(String context) {
            for (String disk : disks.keySet()) {
                verify(disk, "at the end, " + context);
            }
            for (String snapshot : snapshots.keySet()) {
                verify(snapshot, "at the end, " + context);
            }
        }

        private String pick(java.util.Collection<String> names) {
            int index = random.nextInt(names.size());
            for (String name : names) {
                if (index-- == 0) {
                    return name;
                }
            }
            throw new IllegalStateException("empty");
        }
    }
}
