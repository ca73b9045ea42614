package io.cairn.volume;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@link IoEpochs}: a wait covers exactly the I/O registered before it; a closed gate has no I/O in flight. */
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

    @Test
    void closingTheGateWaitsForIoInFlightAndHoldsBackNewIoOfOtherThreads() throws Exception {
        IoEpochs epochs = new IoEpochs();
        int inFlight = epochs.enter();
        CountDownLatch closed = new CountDownLatch(1);
        CountDownLatch mayOpen = new CountDownLatch(1);
        Thread closer = Thread.ofPlatform().start(() -> {
            epochs.close();
            closed.countDown();
            // The closer may start I/O itself, and close again (reentrant), while it holds the gate.
            epochs.exit(epochs.enter());
            epochs.close();
            epochs.open();
            awaitQuietly(mayOpen);
            epochs.open();
        });
        assertFalse(closed.await(200, TimeUnit.MILLISECONDS), "the gate closed while an I/O was in flight");
        epochs.exit(inFlight);
        assertTrue(closed.await(10, TimeUnit.SECONDS), "the gate closed once the I/O exited");

        CountDownLatch entered = new CountDownLatch(1);
        Thread late = Thread.ofPlatform().start(() -> {
            epochs.exit(epochs.enter());
            entered.countDown();
        });
        assertFalse(entered.await(200, TimeUnit.MILLISECONDS), "an I/O started while the gate was closed");
        mayOpen.countDown();
        assertTrue(entered.await(10, TimeUnit.SECONDS), "the I/O started once the gate opened");
        closer.join();
        late.join();
        assertEquals(0, epochs.registeredIn(0) + epochs.registeredIn(1));
        assertFalse(epochs.closedByCurrentThread());
        assertThrows(IllegalStateException.class, epochs::open, "opening a gate this thread did not close");
    }

    @Test
    void whileTheGateIsClosedNoIoIsInsideEvenUnderContention() throws Exception {
        IoEpochs epochs = new IoEpochs();
        AtomicInteger inside = new AtomicInteger();
        AtomicReference<String> problem = new AtomicReference<>();
        AtomicBoolean done = new AtomicBoolean();
        Thread[] workers = new Thread[6];
        for (int w = 0; w < workers.length; w++) {
            workers[w] = Thread.ofPlatform().start(() -> {
                while (!done.get()) { // until the closer's last round
                    int token = epochs.enter();
                    inside.incrementAndGet();
                    Thread.onSpinWait();
                    inside.decrementAndGet();
                    epochs.exit(token);
                }
            });
        }
        Thread advancer = Thread.ofPlatform().start(() -> {
            for (int i = 0; i < 200; i++) {
                epochs.awaitInFlight(); // epoch advances race with the gate and the registrations
            }
        });
        for (int round = 0; round < 300; round++) {
            epochs.close();
            for (int look = 0; look < 2_000; look++) { // the gate stays closed a while: nobody may get in
                int seen = inside.get();
                if (seen != 0) {
                    problem.compareAndSet(null, seen + " I/O inside while the gate was closed (round " + round + ")");
                }
            }
            epochs.open();
        }
        done.set(true);
        for (Thread worker : workers) {
            worker.join();
        }
        advancer.join();
        assertEquals(null, problem.get());
        assertEquals(0, epochs.registeredIn(0) + epochs.registeredIn(1));
    }

    private static void awaitQuietly(CountDownLatch latch) {
        try {
            latch.await();
        } catch (InterruptedException interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
