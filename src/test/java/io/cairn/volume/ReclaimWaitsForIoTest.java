package io.cairn.volume;

import static io.cairn.volume.TestBlocks.commitAndCheckClean;
import static io.cairn.volume.TestBlocks.pattern;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.io.BlockDevice;
import io.cairn.io.MemoryBlockDevice;
import io.cairn.io.StorageException;
import java.nio.ByteBuffer;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Reclamation does not stop volume I/O, yet a block that lost its last reference is not handed out again
 * while a read that looked it up earlier is still in flight (design note 3 of {@link Store}). Without the
 * wait, the reader would get the bytes of whichever write reused the block. A write that finds only such a
 * block waits for it rather than failing, and commits do not wait for a reclamation (design note 8).
 */
@Timeout(60)
class ReclaimWaitsForIoTest {

    private static final int BLOCK = 4096;
    private static final int EXTENT_BLOCKS = 256;
    private static final long STORE_BYTES = 8L << 20;
    private static final long DISK_BYTES = 8L << 20;

    @Test
    void aBlockFreedDuringAReadIsReusedOnlyAfterTheRead() throws Exception {
        HoldingDevice device = new HoldingDevice(new MemoryBlockDevice());
        Store store = storeWithDisk(device);
        try (Volume volume = store.openVolume("vm")) {
            long snapshotId = writeBlockZeroAndSnapshot(store, volume);
            store.commit();
            long old = store.resolve(volume, 0, 1)[0];

            // A read of block 0 looks up `old` and is held inside the device call.
            CountDownLatch readEntered = device.holdNextReadOf(old);
            ByteBuffer readBack = ByteBuffer.allocate(BLOCK);
            AtomicReference<Throwable> readProblem = new AtomicReference<>();
            Thread reader = Thread.ofPlatform().start(() -> {
                try {
                    volume.read(0, readBack);
                } catch (Throwable problem) {
                    readProblem.set(problem);
                }
            });
            assertTrue(readEntered.await(10, TimeUnit.SECONDS), "the read reached the device");

            // Overwrite block 0 (copy-on-write: the snapshot shares it), drop the snapshot, commit: `old` loses
            // its last reference while the read is still in flight.
            volume.write(0, pattern(0, 2), false);
            store.deleteSnapshot("vm@" + snapshotId);
            AtomicReference<Throwable> commitProblem = new AtomicReference<>();
            Thread committer = Thread.ofPlatform().start(() -> {
                try {
                    store.commit();
                } catch (Throwable problem) {
                    commitProblem.set(problem);
                }
            });
            while (store.heldBlocks() == 0 && committer.isAlive()) {
                Thread.sleep(1);
            }
            assertTrue(committer.isAlive(), "the commit waits for the read before freeing what it released");

            // Writes go on meanwhile (the reclamation does not stop I/O) and take every free data block; the one
            // that finds only the held block waits for the reclamation instead of failing.
            Filler filler = new Filler(volume);
            Thread writer = Thread.ofPlatform().start(filler);
            long stuckAt = filler.awaitStuck(writer);
            assertTrue(stuckAt > 100, "the store took " + stuckAt + " fresh blocks while the read was held");
            assertNull(filler.problem.get(), "a write failed while a reclamation was under way");
            long[] placed = store.resolve(volume, 1, (int) stuckAt);
            for (int i = 0; i < placed.length; i++) {
                assertNotEquals(old, placed[i], "block " + (i + 1) + " was written to a block a read still reads");
            }
            assertTrue(committer.isAlive(), "the commit's reclamation still waits for the read");

            device.release();
            reader.join();
            committer.join();
            writer.join();
            assertNull(readProblem.get());
            assertNull(commitProblem.get());
            assertArrayEquals(pattern(0, 1).array(), readBack.array(), "the held read returns what it looked up");
            assertEquals(0, store.heldBlocks(), "the commit freed the held blocks once the read finished");

            // The write that waited got the freed block; the next one found the store full, with nothing to wait for.
            long waited = stuckAt + 1;
            assertEquals(old, store.resolve(volume, waited, 1)[0], "the waiting write took the block freed for it");
            assertEquals(waited + 1, filler.failedAt, "only the write after it ran out of space");
            assertEquals(StorageException.Code.NO_SPACE, ((StorageException) filler.problem.get()).code());
            commitAndCheckClean(store);
        }
        store.close();
    }

    @Test
    void commitsGoOnWhileAReclamationWaitsForIo() throws Exception {
        HoldingDevice device = new HoldingDevice(new MemoryBlockDevice());
        Store store = storeWithDisk(device);
        try (Volume volume = store.openVolume("vm")) {
            long snapshotId = writeBlockZeroAndSnapshot(store, volume);
            store.snapshot("vm", "base");
            store.commit();
            long old = store.resolve(volume, 0, 1)[0];
            CountDownLatch readEntered = device.holdNextReadOf(old);
            Thread reader = Thread.ofPlatform().start(() -> volume.read(0, ByteBuffer.allocate(BLOCK)));
            assertTrue(readEntered.await(10, TimeUnit.SECONDS), "the read reached the device");
            volume.write(0, pattern(0, 2), false);
            store.deleteSnapshot("vm@" + snapshotId);
            Thread committer = Thread.ofPlatform().start(store::commit);
            while (store.heldBlocks() == 0) {
                Thread.sleep(1);
            }

            // The reclamation waits for the read; a clone made now still becomes durable (the background commit
            // does not queue behind the reclamation). A clone, not a snapshot: a snapshot waits for the held read.
            store.latencies().reset();
            store.clone("copy", "vm@base");
            store.commitSoon();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (store.latencies().report().cloneDurable().count() == 0 && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
            assertEquals(1, store.latencies().report().cloneDurable().count(),
                    "the clone became durable while the reclamation waited");
            assertTrue(store.heldBlocks() > 0 && committer.isAlive(), "the reclamation was still waiting");

            device.release();
            reader.join();
            committer.join();
            // The background commit of the clone may be reclaiming too, holding blocks until the I/O it waits
            // for has finished: held blocks are freed, soon.
            long freedBy = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (store.heldBlocks() > 0 && System.nanoTime() < freedBy) {
                Thread.sleep(1);
            }
            assertEquals(0, store.heldBlocks());
            commitAndCheckClean(store);
        }
        store.close();
    }

    /** A store on {@code device} with one disk, "vm", that fills it. */
    private static Store storeWithDisk(BlockDevice device) {
        Store store = Store.format(device, STORE_BYTES, EXTENT_BLOCKS, StoreOptions.defaults());
        store.create("vm", DISK_BYTES);
        return store;
    }

    /** Writes block 0 and takes a snapshot that shares it; returns the snapshot's id. */
    private static long writeBlockZeroAndSnapshot(Store store, Volume volume) {
        volume.write(0, pattern(0, 1), false);
        return store.snapshot("vm", null).id();
    }

    /** Writes fresh blocks 1, 2, ... until a write fails; remembers which one and why. */
    private static final class Filler implements Runnable {
        private final Volume volume;
        private final AtomicReference<Throwable> problem = new AtomicReference<>();
        private volatile long written;
        private volatile long failedAt = -1;

        Filler(Volume volume) {
            this.volume = volume;
        }

        @Override
        public void run() {
            for (long index = 1; index < DISK_BYTES / BLOCK; index++) {
                try {
                    volume.write(index * BLOCK, pattern(index, 3), false);
                    written = index;
                } catch (Throwable failure) {
                    failedAt = index;
                    problem.set(failure);
                    return;
                }
            }
        }

        /** Returns how many blocks were written once the writer has made no progress for a while and waits. */
        long awaitStuck(Thread writer) throws InterruptedException {
            long last = -1;
            long since = System.nanoTime();
            while (true) {
                Thread.sleep(5);
                long now = written;
                if (now != last || failedAt >= 0) {
                    last = now;
                    since = System.nanoTime();
                    assertTrue(failedAt < 0, () -> "the writer failed at block " + failedAt + ": " + problem.get());
                } else if (System.nanoTime() - since > TimeUnit.MILLISECONDS.toNanos(200)
                        && writer.getState() == Thread.State.WAITING) {
                    return now;
                }
            }
        }
    }
}
