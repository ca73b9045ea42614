package io.cairn.volume;

import io.cairn.io.MemoryBlockDevice;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executors;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLongArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Many threads on one store at once, as NBD connections with requests in flight: writers, readers,
 * snapshots and commits interleave freely; afterwards every snapshot holds, for each writer, a version
 * that writer had finished or was writing while the snapshot was taken, and nothing was lost.
 */
class ConcurrencyTest {

    private static final int BLOCK = 4096;
    private static final int WRITERS = 6;
    private static final int WRITES_PER_WRITER = 1500;
    private static final int MIN_SNAPSHOTS = 50;

    /** A snapshot and, per writer, the versions it may legally hold. */
    record Taken(String reference, long[] lowest, long[] highest) {
    }

    @Test
    void snapshotsSeeAConsistentVersionOfEveryWriter() throws Exception {
        // Room for a snapshot after every write, each keeping its versions (a data block, a root and a leaf).
        Store store = Store.format(new MemoryBlockDevice(), 256L << 20, 256, StoreOptions.defaults());
        store.create("disk", 4L << 20);
        AtomicLongArray completed = new AtomicLongArray(WRITERS);
        AtomicLongArray started = new AtomicLongArray(WRITERS);
        AtomicBoolean done = new AtomicBoolean();
        ConcurrentLinkedQueue<Taken> taken = new ConcurrentLinkedQueue<>();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> writers = new ArrayList<>();
            for (int w = 0; w < WRITERS; w++) {
                int writer = w;
                writers.add(pool.submit(() -> {
                    try (Volume volume = store.openVolume("disk")) {
                        // At least WRITES_PER_WRITER writes, and on until enough snapshots were taken among them.
                        for (long version = 1; version <= WRITES_PER_WRITER || taken.size() < MIN_SNAPSHOTS; version++) {
                            started.set(writer, version);
                            // Each writer owns block `writer`; the version is stamped in every long of it.
                            volume.write((long) writer * BLOCK, stamped(version), false);
                            completed.set(writer, version);
                            Thread.yield(); // as a client between requests (see the reader)
                        }
                    }
                    return null;
                }));
            }
            Future<?> snapshotter = pool.submit(() -> {
                int n = 0;
                long writesAtLastSnapshot = -1;
                while (!done.get()) {
                    // At most one snapshot per completed write: snapshots no longer wait for the writes in flight,
                    // and unpaced they would outnumber the writes and keep every version (the small store fills).
                    long writes = 0;
                    for (int w = 0; w < WRITERS; w++) {
                        writes += completed.get(w);
                    }
                    if (writes == writesAtLastSnapshot) {
                        Thread.yield();
                        continue;
                    }
                    writesAtLastSnapshot = writes;
                    long[] lowest = new long[WRITERS];
                    for (int w = 0; w < WRITERS; w++) {
                        lowest[w] = completed.get(w);
                    }
                    SnapshotInfo info = store.snapshot("disk", null);
                    long[] highest = new long[WRITERS];
                    for (int w = 0; w < WRITERS; w++) {
                        highest[w] = started.get(w);
                    }
                    taken.add(new Taken(info.reference(), lowest, highest));
                    if (++n % 7 == 0) {
                        store.commit();
                    }
                }
                return null;
            });
            Future<?> reader = pool.submit(() -> {
                try (Volume volume = store.openVolume("disk")) {
                    ByteBuffer buffer = ByteBuffer.allocate(WRITERS * BLOCK);
                    while (!done.get()) {
                        buffer.clear();
                        volume.read(0, buffer);
                        for (int w = 0; w < WRITERS; w++) {
                            assertUniform(buffer, w * BLOCK, "live read of writer " + w);
                        }
                        // A client waits for the network between requests. Virtual threads looping without a pause
                        // on two carriers would instead keep the carriers from the threads they wake (a writer the
                        // snapshot waits for, a writer woken by the metadata lock): nothing else ever parks them.
                        Thread.yield();
                    }
                }
                return null;
            });
            try {
                for (Future<?> writer : writers) {
                    writer.get();
                }
            } finally {
                done.set(true); // also when a writer failed: the reader and the snapshotter stop, the failure shows
            }
            snapshotter.get();
            reader.get();
        }
        assertTrue(taken.size() >= MIN_SNAPSHOTS, "snapshots were taken while writing: " + taken.size());
        for (Taken snapshot : taken) {
            try (Volume volume = store.openVolume(snapshot.reference())) {
                ByteBuffer buffer = ByteBuffer.allocate(WRITERS * BLOCK);
                volume.read(0, buffer);
                for (int w = 0; w < WRITERS; w++) {
                    long version = assertUniform(buffer, w * BLOCK, snapshot.reference() + " writer " + w);
                    long low = snapshot.lowest()[w];
                    long high = snapshot.highest()[w];
                    assertTrue(version >= low && version <= high, snapshot.reference() + " writer " + w + " holds version "
                            + version + " outside [" + low + ", " + high + "]");
                }
            }
        }
        store.commit();
        try (Volume volume = store.openVolume("disk")) {
            ByteBuffer buffer = ByteBuffer.allocate(WRITERS * BLOCK);
            volume.read(0, buffer);
            for (int w = 0; w < WRITERS; w++) {
                assertEquals(completed.get(w), assertUniform(buffer, w * BLOCK, "final writer " + w));
            }
        }
        store.close();
    }

    @Test
    void writersOfDifferentSectorsOfOneBlockNeverLoseEachOther() throws Exception {
        Store store = Store.format(new MemoryBlockDevice(), 64L << 20, 256, StoreOptions.defaults());
        store.create("disk", 1L << 20);
        int sectorsPerBlock = BLOCK / 512;
        int rounds = 300;
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> writers = new ArrayList<>();
            for (int s = 0; s < sectorsPerBlock; s++) {
                int sector = s;
                writers.add(pool.submit(() -> {
                    try (Volume volume = store.openVolume("disk")) {
                        Random random = new Random(sector);
                        for (int round = 0; round < rounds; round++) {
                            // Snapshots in between force copy-on-write of the shared block: the racy case.
                            if (sector == 0 && round % 10 == 0) {
                                store.snapshot("disk", null);
                            }
                            for (int block = 0; block < 4; block++) {
                                ByteBuffer data = ByteBuffer.allocate(512);
                                data.putInt(0, sector).putInt(4, round).putInt(8, random.nextInt());
                                volume.write((long) block * BLOCK + sector * 512L, data, false);
                            }
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> writer : writers) {
                writer.get();
            }
        }
        try (Volume volume = store.openVolume("disk")) {
            for (int block = 0; block < 4; block++) {
                ByteBuffer buffer = ByteBuffer.allocate(BLOCK);
                volume.read((long) block * BLOCK, buffer);
                for (int sector = 0; sector < sectorsPerBlock; sector++) {
                    assertEquals(sector, buffer.getInt(sector * 512), "block " + block + " sector " + sector + " owner");
                    assertEquals(rounds - 1, buffer.getInt(sector * 512 + 4), "block " + block + " sector " + sector
                            + " lost its last write");
                }
            }
        }
        store.close();
    }

    private static ByteBuffer stamped(long version) {
        ByteBuffer buffer = ByteBuffer.allocate(BLOCK);
        while (buffer.hasRemaining()) {
            buffer.putLong(version);
        }
        return buffer.flip();
    }

    /** Asserts the block holds one version stamped throughout (no torn mix) and returns it. */
    private static long assertUniform(ByteBuffer buffer, int offset, String what) {
        long version = buffer.getLong(offset);
        for (int i = 8; i < BLOCK; i += 8) {
            if (buffer.getLong(offset + i) != version) {
                throw new AssertionError(what + ": block mixes versions " + version + " and " + buffer.getLong(offset + i));
            }
        }
        return version;
    }
}
