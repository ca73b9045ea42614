package io.cairn.volume;

import static io.cairn.volume.TestBlocks.pattern;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.gc.CheckReport;
import io.cairn.gc.Checker;
import io.cairn.io.BlockDevice;
import io.cairn.io.FaultInjectingBlockDevice;
import io.cairn.io.ForwardingBlockDevice;
import io.cairn.io.MemoryBlockDevice;
import io.cairn.io.SimulatedCrashException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Grouped commits (design note 5 of {@link Store}) keep the contract: a change is durable when a commit()
 * called after it returns, never earlier; callers queued behind a running commit share the next one; and a
 * snapshot that was taken but not yet committed is, after a power cut, either entirely there or absent.
 */
@Timeout(120)
class GroupCommitTest {

    private static final long STORE_BYTES = 64L << 20;
    private static final int EXTENT_BLOCKS = 256;
    private static final long DISK_BYTES = 1L << 20;
    private static final int BLOCK = 4096;

    /** A formatted store image with disk "vm", whose every block holds a known pattern (generation 1). */
    private static MemoryBlockDevice formattedWithDisk() {
        MemoryBlockDevice image = new MemoryBlockDevice();
        Store store = Store.format(image, STORE_BYTES, EXTENT_BLOCKS, StoreOptions.defaults());
        store.create("vm", DISK_BYTES);
        try (Volume volume = store.openVolume("vm")) {
            for (long block = 0; block < DISK_BYTES / BLOCK; block++) {
                volume.write(block * BLOCK, pattern(block, 1), false);
            }
        }
        store.commit(); // left open: close would close the device
        return image;
    }

    private static byte[] read(Store store, String export) {
        try (Volume volume = store.openVolume(export)) {
            ByteBuffer content = ByteBuffer.allocate((int) DISK_BYTES);
            volume.read(0, content);
            return content.array();
        }
    }

    private static void overwriteHalf(Store store, int generation) {
        try (Volume volume = store.openVolume("vm")) {
            for (long block = 0; block < DISK_BYTES / BLOCK; block += 2) {
                volume.write(block * BLOCK, pattern(block, generation), false);
            }
        }
    }

    /** Lets a test hold the next flush of a device until it says so. */
    private static final class GatedDevice extends ForwardingBlockDevice {
        volatile CountDownLatch entered;
        volatile CountDownLatch release;

        GatedDevice(BlockDevice inner) {
            super(inner);
        }

        /** The latch that lets the held flush go on. */
        CountDownLatch holdNextFlush() {
            entered = new CountDownLatch(1);
            release = new CountDownLatch(1);
            return release;
        }

        @Override
        public void flush() {
            CountDownLatch held = release;
            if (held != null) {
                release = null;
                entered.countDown();
                try {
                    held.await();
                } catch (InterruptedException interrupted) {
                    Thread.currentThread().interrupt();
                }
            }
            inner.flush();
        }
    }

    @Test
    void aCommitThatCapturedBeforeASnapshotDoesNotMakeItDurable() throws Exception {
        FaultInjectingBlockDevice faults = new FaultInjectingBlockDevice(formattedWithDisk());
        GatedDevice device = new GatedDevice(faults);
        Store store = Store.open(device, null, StoreOptions.defaults());
        overwriteHalf(store, 2);
        CountDownLatch gate = device.holdNextFlush();
        Thread first = Thread.ofPlatform().start(store::commit);
        assertTrue(device.entered.await(30, TimeUnit.SECONDS), "the first commit reached its flush");

        // The first commit has captured its transaction: this snapshot is not in it.
        SnapshotInfo snapshot = store.snapshot("vm", "late");
        byte[] expected = read(store, "vm@late");
        CountDownLatch secondDone = new CountDownLatch(1);
        Thread second = Thread.ofPlatform().start(() -> {
            store.commit();
            secondDone.countDown();
        });
        assertFalse(secondDone.await(300, TimeUnit.MILLISECONDS),
                "commit() returned while only a commit that captured before the snapshot was running");
        gate.countDown();
        first.join();
        assertTrue(secondDone.await(30, TimeUnit.SECONDS));
        second.join();

        // Power cut right after commit() returned: whatever was not flushed is lost, the snapshot is not.
        MemoryBlockDevice survivor = faults.crash(new Random(7));
        Store reopened = Store.open(survivor, null, StoreOptions.defaults());
        try {
            assertEquals(snapshot.id(), reopened.snapshotInfo("vm@late").id());
            assertArrayEquals(expected, read(reopened, "vm@late"));
            assertClean(reopened, "after the shared commit");
        } finally {
            reopened.close();
        }
    }

    @Test
    void callersQueuedBehindACommitShareTheNextOne() throws Exception {
        GatedDevice device = new GatedDevice(formattedWithDisk());
        Store store = Store.open(device, null, StoreOptions.defaults());
        overwriteHalf(store, 2);
        long commitsBefore = store.latencies().report().commits().count();
        CountDownLatch gate = device.holdNextFlush();
        Thread first = Thread.ofPlatform().start(store::commit);
        assertTrue(device.entered.await(30, TimeUnit.SECONDS));

        int callers = 8;
        List<Thread> threads = new ArrayList<>();
        CountDownLatch snapshotsTaken = new CountDownLatch(callers);
        for (int i = 0; i < callers; i++) {
            String label = "s" + i;
            threads.add(Thread.ofPlatform().start(() -> {
                store.snapshot("vm", label);
                snapshotsTaken.countDown();
                store.commit();
            }));
        }
        assertTrue(snapshotsTaken.await(30, TimeUnit.SECONDS));
        Thread.sleep(200); // let every caller queue behind the running commit
        gate.countDown();
        first.join();
        for (Thread thread : threads) {
            thread.join();
        }
        long commits = store.latencies().report().commits().count() - commitsBefore;
        // One running and one shared by all eight; a third only if a caller was late to queue.
        assertTrue(commits >= 2 && commits <= 3, "commits for 1 + " + callers + " callers: " + commits);
        OperationLatencies.Report report = store.latencies().report();
        assertEquals(callers, report.snapshotTaken().count());
        assertEquals(callers, report.snapshotDurable().count(), "every snapshot was seen becoming durable");
        assertTrue(report.snapshotDurable().maxNanos() >= TimeUnit.MILLISECONDS.toNanos(200),
                "durable latency includes the wait for the running commit: " + report.snapshotDurable());
        store.close();
    }

    /**
     * Power cut at every device write of the commit that follows a snapshot: the store opens without repair,
     * the checker finds nothing, and the snapshot is either absent or reads exactly as taken.
     */
    @Test
    void aSnapshotTakenButNotYetDurableIsAllOrNothingAfterAPowerCut() {
        MemoryBlockDevice formatted = formattedWithDisk();
        FaultInjectingBlockDevice counting = new FaultInjectingBlockDevice(formatted.copy());
        Store store = Store.open(counting, null, StoreOptions.defaults());
        overwriteHalf(store, 2);
        long before = counting.writeCount();
        store.snapshot("vm", "taken");
        byte[] expected = read(store, "vm@taken");
        store.commitSoon();
        overwriteHalf(store, 3);
        store.commit();
        long total = counting.writeCount();
        assertTrue(total > before + 3, "the commit wrote something: " + (total - before));

        int present = 0;
        int absent = 0;
        for (long point = before + 1; point <= total; point++) {
            FaultInjectingBlockDevice device = new FaultInjectingBlockDevice(formatted.copy());
            device.crashAtWrite(point);
            Store crashing = Store.open(device, null, StoreOptions.defaults());
            try {
                overwriteHalf(crashing, 2);
                crashing.snapshot("vm", "taken");
                crashing.commitSoon(); // the background commit may be the one the power cut hits
                overwriteHalf(crashing, 3);
                crashing.commit();
            } catch (SimulatedCrashException expectedCrash) {
                // the power went out
            } catch (RuntimeException afterCrash) {
                // a thread that ran into the dead device after the cut
            }
            waitForBackgroundCommits(device);
            MemoryBlockDevice survivor = device.crash(new Random(point));
            Store reopened = Store.open(survivor, null, StoreOptions.defaults());
            try {
                String where = "power cut at write " + point;
                assertTrue(reopened.damage().isEmpty(), where + ": " + reopened.damage());
                boolean has = reopened.snapshots("vm").stream().anyMatch(s -> s.label().equals("taken"));
                if (has) {
                    assertArrayEquals(expected, read(reopened, "vm@taken"), where + ": the snapshot reads as taken");
                    present++;
                } else {
                    absent++;
                }
                assertClean(reopened, where);
            } finally {
                reopened.close();
            }
        }
        assertTrue(present > 0 && absent > 0, "cuts before and after the commit point: " + present + " present, "
                + absent + " absent");
    }

    /** The crashed store's background committer may still be running into the dead device; give it a moment. */
    private static void waitForBackgroundCommits(FaultInjectingBlockDevice device) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        long writes = -1;
        while (System.nanoTime() < deadline && device.writeCount() != writes) {
            writes = device.writeCount();
            try {
                Thread.sleep(20);
            } catch (InterruptedException interrupted) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private static void assertClean(Store store, String where) {
        CheckReport report = Checker.check(store);
        assertFalse(report.damaged(), () -> where + ": checker found damage: " + report.summary());
    }
}
