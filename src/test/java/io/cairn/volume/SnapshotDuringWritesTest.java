package io.cairn.volume;

import static io.cairn.volume.TestBlocks.commitAndCheckClean;
import static io.cairn.volume.TestBlocks.pattern;
import static io.cairn.volume.TestBlocks.read;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.io.BlockDevice;
import io.cairn.io.MemoryBlockDevice;
import java.nio.ByteBuffer;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A snapshot waits only for the writes that overwrite blocks in place (Store design note 9): a write that
 * copies may still be writing its data when the snapshot is taken, and the snapshot then does not hold it;
 * a write in place is waited for and held whole, and writes planned while the snapshot waits copy instead.
 */
@Timeout(60)
class SnapshotDuringWritesTest {

    private static final int BLOCK = 4096;
    private static final long STORE_BYTES = 64L << 20;
    private static final long DISK_BYTES = 16L << 20;

    @Test
    void aSnapshotDoesNotWaitForACopyingWrite() throws Exception {
        HoldingDevice device = new HoldingDevice(new MemoryBlockDevice());
        Store store = storeWithDisk(device);
        try (Volume volume = store.openVolume("vm")) {
            volume.write(0, pattern(0, 1), false);
            store.snapshot("vm", "before");
            store.commit();

            // Block 0 is shared with "before": this write copies, and is held while writing its fresh block.
            CountDownLatch entered = device.holdNextWrite();
            AtomicReference<Throwable> problem = new AtomicReference<>();
            Thread writer = Thread.ofPlatform().start(() -> {
                try {
                    volume.write(0, pattern(0, 2), false);
                } catch (Throwable failure) {
                    problem.set(failure);
                }
            });
            assertTrue(entered.await(10, TimeUnit.SECONDS), "the write reached the device");

            long id = store.snapshot("vm", "during").id(); // returns although the write is still held
            assertTrue(writer.isAlive(), "the write was still in flight when the snapshot was taken");
            device.release();
            writer.join();
            assertNull(problem.get());

            assertArrayEquals(pattern(0, 1).array(), read(store, "vm@" + id, 0), "the snapshot does not hold the unfinished write");
            ByteBuffer live = ByteBuffer.allocate(BLOCK);
            volume.read(0, live);
            assertArrayEquals(pattern(0, 2).array(), live.array());
            commitAndCheckClean(store);
        }
        store.close();
    }

    @Test
    void aSnapshotWaitsForAnInPlaceWriteWhileLaterWritesCopy() throws Exception {
        HoldingDevice device = new HoldingDevice(new MemoryBlockDevice());
        Store store = storeWithDisk(device);
        try (Volume volume = store.openVolume("vm")) {
            volume.write(0, pattern(0, 1), false);
            volume.write(BLOCK, pattern(1, 1), false);
            store.commit();
            long block0 = store.resolve(volume, 0, 1)[0];
            long block1 = store.resolve(volume, 1, 1)[0];

            // Nothing shares block 0: this write overwrites it in place, and is held on the device.
            CountDownLatch entered = device.holdNextWrite();
            Thread writer = Thread.ofPlatform().start(() -> volume.write(0, pattern(0, 2), false));
            assertTrue(entered.await(10, TimeUnit.SECONDS), "the write reached the device");
            assertEquals(block0, store.resolve(volume, 0, 1)[0], "the write is in place");

            AtomicReference<Long> snapshotId = new AtomicReference<>();
            Thread snapshotter = Thread.ofPlatform().start(() -> snapshotId.set(store.snapshot("vm", "during").id()));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            // Parked until a release of the metadata lock makes the snapshot (timed: it also retries itself).
            while (!parked(snapshotter) && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
            assertTrue(parked(snapshotter), () -> "the snapshot waits for the in-place write: " + snapshotter.getState());
            assertNull(snapshotId.get());

            // Meanwhile block 1, which nothing shares either, is written by copying: an in-place write now
            // would keep the snapshot waiting. It does not wait for the snapshot.
            volume.write(BLOCK, pattern(1, 2), false);
            assertNotEquals(block1, store.resolve(volume, 1, 1)[0], "a write planned while the snapshot waits copies");
            assertFalse(snapshotId.get() != null, "the snapshot still waits for the held write");

            device.release();
            writer.join();
            snapshotter.join();
            String during = "vm@" + snapshotId.get();
            assertArrayEquals(pattern(0, 2).array(), read(store, during, 0), "the snapshot holds the in-place write");
            assertArrayEquals(pattern(1, 2).array(), read(store, during, 1), "and the write that finished before it");

            // The snapshot stays as it was: later writes to the disk copy.
            volume.write(0, pattern(0, 3), false);
            assertArrayEquals(pattern(0, 2).array(), read(store, during, 0));
            commitAndCheckClean(store);
        }
        store.close();
    }

    private static boolean parked(Thread thread) {
        Thread.State state = thread.getState();
        return state == Thread.State.WAITING || state == Thread.State.TIMED_WAITING;
    }

    private static Store storeWithDisk(BlockDevice device) {
        Store store = Store.format(device, STORE_BYTES, 256, StoreOptions.defaults());
        store.create("vm", DISK_BYTES);
        return store;
    }
}
