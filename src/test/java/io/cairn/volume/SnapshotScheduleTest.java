package io.cairn.volume;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.gc.Checker;
import io.cairn.io.MemoryBlockDevice;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(120)
class SnapshotScheduleTest {

    private static final long DISK_BYTES = 4L << 20;

    private static Store store() {
        Store store = Store.format(new MemoryBlockDevice(), 256L << 20, 256, StoreOptions.defaults());
        store.create("vm", DISK_BYTES);
        return store;
    }

    @Test
    void keepsTheNewestOfItsOwnSnapshotsWhileADiskIsWrittenAndCommitsThemInTheBackground() throws Exception {
        Store store = store();
        store.snapshot("vm", "by-hand");
        AtomicBoolean stop = new AtomicBoolean();
        Thread writer = Thread.ofPlatform().start(() -> {
            try (Volume volume = store.openVolume("vm")) {
                ByteBuffer block = ByteBuffer.allocate(4096);
                for (long i = 0; !stop.get(); i++) {
                    block.clear().putLong(0, i);
                    volume.write(i * 4096 % DISK_BYTES, block, false);
                }
            }
        });
        SnapshotSchedule schedule = SnapshotSchedule.start(store, "vm", Duration.ofMillis(2), 3);
        awaitTaken(schedule, 40);
        stop.set(true);
        writer.join();
        assertTrue(schedule.status().running(), schedule.status().toString());
        schedule.close();
        SnapshotSchedule.Status status = schedule.status();
        long[] retained = schedule.retained();
        assertEquals(3, retained.length);
        assertEquals(status.taken() - 3, status.deleted(), status.toString());
        List<Long> live = store.snapshots("vm").stream().map(SnapshotInfo::id).toList();
        assertEquals(4, live.size(), "the one taken by hand and the newest three: " + live);
        assertEquals("by-hand", store.snapshots("vm").getFirst().label());
        for (long id : retained) {
            assertTrue(live.contains(id), id + " in " + live);
        }
        // Every scheduled snapshot was followed to a commit (the last by close at the latest).
        store.commit();
        OperationLatencies.Report report = store.latencies().report();
        assertEquals(report.snapshotTaken().count(), report.snapshotDurable().count(), report.toString());
        assertFalse(Checker.check(store).damaged());
        store.close();
    }

    @Test
    void anExportedSnapshotIsKeptUntilItIsClosed() throws Exception {
        Store store = store();
        try (SnapshotSchedule schedule = SnapshotSchedule.start(store, "vm", Duration.ofMillis(2), 2)) {
            awaitTaken(schedule, 1);
            long newest;
            Volume opened;
            while (true) {
                long[] retained = schedule.retained();
                newest = retained[retained.length - 1];
                try {
                    opened = store.openVolume("vm@" + newest);
                    break;
                } catch (Store.NoSuchElementException deletedMeanwhile) {
                    // A snapshot every 2 ms, two kept: on a busy machine the schedule may delete the newest
                    // retained snapshot before it is opened here; the test is about what happens once it is open.
                }
            }
            long first = newest;
            byte[] before;
            try (Volume exported = opened) {
                long taken = schedule.status().taken();
                awaitTaken(schedule, taken + 10);
                assertTrue(store.snapshots("vm").stream().anyMatch(s -> s.id() == first), "exported, so kept");
                before = new byte[4096];
                exported.read(0, ByteBuffer.wrap(before));
            }
            long taken = schedule.status().taken();
            awaitTaken(schedule, taken + 5);
            assertFalse(store.snapshots("vm").stream().anyMatch(s -> s.id() == first), "deleted once closed");
            assertArrayEquals(new byte[4096], before);
            schedule.close();
            assertEquals(2, schedule.retained().length);
        }
        store.close();
    }

    @Test
    void stopsByItselfWhenTheDiskIsDeleted() throws Exception {
        Store store = store();
        try (SnapshotSchedule schedule = SnapshotSchedule.start(store, "vm", Duration.ofMillis(2), 2)) {
            awaitTaken(schedule, 3);
            store.deleteVdi("vm", true);
            await(() -> !schedule.status().running(), () -> "stops: " + schedule.status());
            SnapshotSchedule.Status status = schedule.status();
            assertTrue(status.stoppedBecause().contains("disk 'vm'"), status.stoppedBecause());
        }
        store.close();
    }

    @Test
    void refusesNonsense() {
        Store store = store();
        assertThrows(IllegalArgumentException.class, () -> SnapshotSchedule.start(store, "vm", Duration.ofNanos(999_999), 1));
        assertThrows(IllegalArgumentException.class, () -> SnapshotSchedule.start(store, "vm", Duration.ofMillis(10), 0));
        assertThrows(java.util.NoSuchElementException.class,
                () -> SnapshotSchedule.start(store, "nope", Duration.ofMillis(10), 1));
        store.close();
    }

    private static void awaitTaken(SnapshotSchedule schedule, long count) throws InterruptedException {
        await(() -> schedule.status().taken() >= count, () -> count + " taken: " + schedule.status());
    }

    private static void await(BooleanSupplier condition, Supplier<String> what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, what);
            Thread.sleep(2);
        }
    }
}
