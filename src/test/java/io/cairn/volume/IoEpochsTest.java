package io.cairn.volume;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@link IoEpochs}: a wait covers exactly the I/O registered before it. */
@Timeout(30)
class IoEpochsTest {

    @Test
    void waitsForIoRegisteredBeforeButNotForIoRegisteredAfter() throws Exception {
        IoEpochs epochs = new IoEpochs();
        int before = epochs.enter();
        CountDownLatch done = new CountDownLatch(1);
        Thread waiter = Thread.ofPlatform().start(() -> {
            epochs.awaitInFlight();
            done.countDown();
        });
        while (waiter.getState() != Thread.State.TIMED_WAITING) {
            Thread.onSpinWait(); // parked in the wait: the epoch has advanced
        }
        // Registrations after the wait began (from other threads, so on other stripes too) do not delay it.
        int[] after = new int[8];
        Thread[] late = new Thread[after.length];
        for (int i = 0; i < late.length; i++) {
            int index = i;
            late[i] = Thread.ofPlatform().start(() -> after[index] = epochs.enter());
        }
        for (Thread thread : late) {
            thread.join();
        }
        assertFalse(done.await(200, TimeUnit.MILLISECONDS), "the wait ended while an earlier I/O was in flight");
        epochs.exit(before);
        assertTrue(done.await(10, TimeUnit.SECONDS), "the wait ended once the earlier I/O exited");
        waiter.join();
        for (int token : after) {
            epochs.exit(token);
        }
        assertEquals(0, epochs.registeredIn(0) + epochs.registeredIn(1));
    }

    @Test
    void manyThreadsEnteringAndLeavingNeverLeaveACountBehind() throws Exception {
        IoEpochs epochs = new IoEpochs();
        Thread[] workers = new Thread[4];
        for (int w = 0; w < workers.length; w++) {
            workers[w] = Thread.ofPlatform().start(() -> {
                for (int i = 0; i < 20_000; i++) {
                    epochs.exit(epochs.enter());
                }
            });
        }
        for (int i = 0; i < 200; i++) {
            epochs.awaitInFlight(); // advances race with registrations; each returns
        }
        for (Thread worker : workers) {
            worker.join();
        }
        assertEquals(0, epochs.registeredIn(0) + epochs.registeredIn(1));
    }
}
