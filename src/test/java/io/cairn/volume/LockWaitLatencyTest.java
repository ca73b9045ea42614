package io.cairn.volume;

import static io.cairn.volume.TestBlocks.pattern;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.io.MemoryBlockDevice;
import java.nio.ByteBuffer;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The store splits a snapshot's or clone's latency into the wait for the metadata lock and the rest
 * ({@link OperationLatencies}): a snapshot that finds the lock held by another thread's node-cache miss
 * reports that wait as lock wait, and one that finds it free reports next to none.
 */
@Timeout(60)
class LockWaitLatencyTest {

    private static final long STORE_BYTES = 16L << 20;
    private static final int EXTENT_BLOCKS = 256;
    private static final long DISK_BYTES = 4L << 20;
    private static final long HELD_MILLIS = 200;

    @Test
    void aSnapshotThatWaitsBehindANodeReadUnderTheLockCountsTheWaitAsLockWait() throws Exception {
        MemoryBlockDevice image = new MemoryBlockDevice();
        long otherId;
        MemoryBlockDevice saved;
        try (Store store = Store.format(image, STORE_BYTES, EXTENT_BLOCKS, StoreOptions.defaults())) {
            store.create("vm", DISK_BYTES);
            otherId = store.create("other", DISK_BYTES).id();
            try (Volume other = store.openVolume("other")) {
                other.write(0, pattern(0, 1), false);
            }
            store.commit();
            saved = image.copy();
        }

        HoldingDevice device = new HoldingDevice(saved);
        try (Store store = Store.open(device, null, StoreOptions.defaults())) {
            store.snapshot("vm", null); // uncontended: the lock is free
            long otherRoot = store.inspect(internals -> internals.vdiRoots().get(otherId).root());
            // Reading "other" misses the node cache at its root and reads it from the device under the lock.
            CountDownLatch readEntered = device.holdNextReadOf(otherRoot);
            AtomicReference<Throwable> problem = new AtomicReference<>();
            Thread reader = Thread.ofPlatform().start(() -> {
                try (Volume other = store.openVolume("other")) {
                    other.read(0, ByteBuffer.allocate(4096));
                } catch (Throwable failure) {
                    problem.set(failure);
                }
            });
            assertTrue(readEntered.await(10, TimeUnit.SECONDS), "the node read reached the device");
            Thread snapshotter = Thread.ofPlatform().start(() -> {
                try {
                    store.snapshot("vm", null);
                } catch (Throwable failure) {
                    problem.set(failure);
                }
            });
            Thread.sleep(HELD_MILLIS);
            device.release();
            reader.join();
            snapshotter.join();
            assertEquals(null, problem.get());

            OperationLatencies.Report report = store.latencies().report();
            assertEquals(2, report.snapshotTaken().count());
            assertEquals(2, report.snapshotLockWait().count());
            long heldNanos = TimeUnit.MILLISECONDS.toNanos(HELD_MILLIS);
            assertTrue(report.snapshotLockWait().maxNanos() >= heldNanos * 9 / 10,
                    () -> "lock wait " + report.snapshotLockWait());
            assertTrue(report.snapshotTaken().maxNanos() >= report.snapshotLockWait().maxNanos(), report::toString);
            // The uncontended one waited next to nothing: the median of two is the smaller.
            assertTrue(report.snapshotLockWait().p50Nanos() < heldNanos / 4, () -> "lock wait " + report.snapshotLockWait());

            store.clone("copy", "vm@" + store.snapshots("vm").getFirst().id());
            OperationLatencies.Report withClone = store.latencies().report();
            assertEquals(1, withClone.cloneLockWait().count());
            assertTrue(withClone.cloneLockWait().maxNanos() <= withClone.cloneTaken().maxNanos(), withClone::toString);
        }
    }
}
