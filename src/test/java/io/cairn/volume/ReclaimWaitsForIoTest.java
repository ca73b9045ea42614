package io.cairn.volume;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.gc.CheckReport;
import io.cairn.gc.Checker;
import io.cairn.io.BlockDevice;
import io.cairn.io.ForwardingBlockDevice;
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
 * wait, the reader would get the bytes of whichever write reused the block.
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
        Store store = Store.format(device, STORE_BYTES, EXTENT_BLOCKS, StoreOptions.defaults());
        store.create("vm", DISK_BYTES);
        try (Volume volume = store.openVolume("vm")) {
            volume.write(0, pattern(0, 1), false);
            long snapshotId = store.snapshot("vm", null).id();
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

            // Writes go on meanwhile (the reclamation does not stop I/O) and take every free data block.
            long written = fillUntilFull(volume);
            assertTrue(written > 100, "the store took " + written + " fresh blocks while the read was held");
            long[] placed = store.resolve(volume, 1, (int) written);
            for (int i = 0; i < placed.length; i++) {
                assertNotEquals(old, placed[i], "block " + (i + 1) + " was written to a block a read still reads");
            }

            device.releaseHeldRead();
            reader.join();
            committer.join();
            assertNull(readProblem.get());
            assertNull(commitProblem.get());
            assertArrayEquals(pattern(0, 1).array(), readBack.array(), "the held read returns what it looked up");
            assertEquals(0, store.heldBlocks(), "the commit freed the held blocks once the read finished");

            // Once the read is over, the freed block is handed out again.
            volume.write((written + 1) * BLOCK, pattern(written + 1, 3), false);
            assertEquals(old, store.resolve(volume, written + 1, 1)[0]);
            store.commit();
            CheckReport report = Checker.check(store);
            assertTrue(report.clean(), report::summary);
        }
        store.close();
    }

    /** Writes fresh blocks 1, 2, ... until the store is full; returns how many were written. */
    private static long fillUntilFull(Volume volume) {
        long index = 1;
        try {
            for (; index < DISK_BYTES / BLOCK; index++) {
                volume.write(index * BLOCK, pattern(index, 3), false);
            }
        } catch (StorageException full) {
            assertEquals(StorageException.Code.NO_SPACE, full.code(), full::getMessage);
        }
        return index - 1;
    }

    private static ByteBuffer pattern(long block, int generation) {
        ByteBuffer buffer = ByteBuffer.allocate(BLOCK);
        for (int i = 0; i < BLOCK; i += 8) {
            buffer.putLong(i, block * 1_000_003L + generation * 7919L + i);
        }
        return buffer;
    }

    /** Holds the next read of one block inside the device call until released. */
    private static final class HoldingDevice extends ForwardingBlockDevice {
        private volatile long heldOffset = -1;
        private final CountDownLatch release = new CountDownLatch(1);
        private CountDownLatch entered;

        HoldingDevice(BlockDevice inner) {
            super(inner);
        }

        CountDownLatch holdNextReadOf(long block) {
            entered = new CountDownLatch(1);
            heldOffset = block * BLOCK;
            return entered;
        }

        void releaseHeldRead() {
            release.countDown();
        }

        @Override
        public void read(long offsetBytes, ByteBuffer buffer) {
            if (offsetBytes == heldOffset) {
                heldOffset = -1;
                entered.countDown();
                try {
                    release.await();
                } catch (InterruptedException interrupted) {
                    Thread.currentThread().interrupt();
                }
            }
            inner.read(offsetBytes, buffer);
        }
    }
}
