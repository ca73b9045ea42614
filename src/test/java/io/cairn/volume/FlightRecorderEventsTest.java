package io.cairn.volume;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.io.MemoryBlockDevice;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.locks.LockSupport;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordedFrame;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The flight-recorder events a server emits for diagnosis (OperationLatencies note 6, CombiningLock note 6): every
 * snapshot and clone taken with its lock wait, and holds of the metadata lock beyond the threshold with where they
 * were let go and how many combined changes they made.
 */
@Timeout(60)
class FlightRecorderEventsTest {

    @TempDir
    Path dir;

    @Test
    void snapshotsAndClonesTakenAreEventsWithTheirLockWait() throws Exception {
        List<RecordedEvent> events;
        try (Recording recording = new Recording()) {
            recording.enable("io.cairn.ChangeTaken");
            recording.start();
            try (Store store = Store.format(new MemoryBlockDevice(), 16L << 20, 256, StoreOptions.defaults())) {
                store.create("vm", 4L << 20);
                store.snapshot("vm", "base");
                store.clone("copy", "vm@base");
            }
            recording.stop();
            events = read(recording);
        }
        List<RecordedEvent> taken = events.stream()
                .filter(event -> event.getEventType().getName().equals("io.cairn.ChangeTaken")).toList();
        assertEquals(List.of("SNAPSHOT", "CLONE"), taken.stream().map(event -> event.getString("kind")).toList());
        for (RecordedEvent event : taken) {
            Duration total = event.getDuration("takenNanos");
            Duration lockWait = event.getDuration("lockWaitNanos");
            assertTrue(!lockWait.isNegative() && lockWait.compareTo(total) <= 0, "lock wait " + lockWait + " within " + total);
            assertTrue(total.compareTo(Duration.ofSeconds(10)) < 0, "taken " + total);
        }
    }

    @Test
    void aLongHoldIsAnEventNamingWhereItWasLetGoAndTheChangesItMade() throws Exception {
        CombiningLock lock = new CombiningLock();
        List<RecordedEvent> events;
        try (Recording recording = new Recording()) {
            recording.enable("io.cairn.MetadataLockHeld").withThreshold(Duration.ofMillis(20)).withStackTrace();
            recording.start();
            lock.lock(); // short: under the threshold
            lock.unlock();
            lock.lock();
            Thread caller = Thread.ofPlatform().start(() -> lock.combine(() -> "made"));
            long heldUntil = System.nanoTime() + 50_000_000;
            while (System.nanoTime() < heldUntil) {
                LockSupport.parkNanos(heldUntil - System.nanoTime());
            }
            while (caller.getState() != Thread.State.TIMED_WAITING) { // its change queued, the caller parked
                Thread.onSpinWait();
            }
            letGo(lock);
            caller.join();
            recording.stop();
            events = read(recording);
        }
        List<RecordedEvent> holds = events.stream()
                .filter(event -> event.getEventType().getName().equals("io.cairn.MetadataLockHeld")).toList();
        assertEquals(1, holds.size(), "only the hold beyond the threshold: " + holds);
        RecordedEvent hold = holds.getFirst();
        assertTrue(hold.getDuration().compareTo(Duration.ofMillis(50)) >= 0, "held " + hold.getDuration());
        assertEquals(1, hold.getInt("changesMade"));
        assertTrue(hold.getStackTrace().getFrames().stream().map(RecordedFrame::getMethod)
                        .anyMatch(method -> method.getName().equals("letGo")), "the release is in the stack trace");
    }

    private static void letGo(CombiningLock lock) {
        lock.unlock();
    }

    private List<RecordedEvent> read(Recording recording) throws Exception {
        Path file = Files.createTempFile(dir, "events", ".jfr");
        recording.dump(file);
        return RecordingFile.readAllEvents(file);
    }
}
