package io.cairn.volume;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The design notes of {@link CombiningLock}: who makes a combined change, when, and exactly once. */
@Timeout(60)
class CombiningLockTest {

    private final CombiningLock lock = new CombiningLock();

    @Test
    void aChangeFindingTheLockFreeIsMadeByItsCallerUnderTheLock() {
        Thread caller = Thread.currentThread();
        Object result = lock.combine(() -> {
            assertTrue(lock.isHeldByCurrentThread());
            assertSame(caller, Thread.currentThread());
            return "made";
        });
        assertEquals("made", result);
        assertFalse(lock.isLocked());
    }

    @Test
    void aChangeQueuedWhileTheLockIsHeldIsMadeByTheHolderAsItLetsGo() throws Exception {
        lock.lock();
        AtomicReference<Thread> madeBy = new AtomicReference<>();
        AtomicReference<Object> result = new AtomicReference<>();
        Thread caller = Thread.ofPlatform().start(() -> result.set(lock.combine(() -> {
            madeBy.set(Thread.currentThread());
            return 42;
        })));
        awaitParked(caller);
        assertEquals(null, madeBy.get(), "not made while the lock is held");
        lock.lock(); // a nested hold: its release is not the outermost one
        lock.unlock();
        assertEquals(null, madeBy.get(), "not made at an inner release");
        lock.unlock();
        assertSame(Thread.currentThread(), madeBy.get(), "made by the releasing holder");
        caller.join();
        assertEquals(42, result.get());
    }

    @Test
    void whatAChangeThrowsReachesItsCallerNotTheThreadThatMadeIt() throws Exception {
        lock.lock();
        AtomicReference<Throwable> seen = new AtomicReference<>();
        Thread caller = Thread.ofPlatform().start(() -> {
            try {
                lock.combine(() -> {
                    throw new IllegalArgumentException("bad change");
                });
            } catch (Throwable problem) {
                seen.set(problem);
            }
        });
        awaitParked(caller);
        lock.unlock(); // makes the change; must not throw here
        caller.join();
        assertTrue(seen.get() instanceof IllegalArgumentException, String.valueOf(seen.get()));
        assertEquals("bad change", seen.get().getMessage());
        assertFalse(lock.isLocked());
    }

    @Test
    void aChangeThatIsNotReadyWaitsForALaterReleaseAndTheCallerRetriesOnItsOwn() throws Exception {
        AtomicBoolean ready = new AtomicBoolean();
        AtomicInteger attempts = new AtomicInteger();
        AtomicReference<Object> result = new AtomicReference<>();
        Thread caller = Thread.ofPlatform().start(() -> result.set(lock.combine(() -> {
            attempts.incrementAndGet();
            return ready.get() ? "ready" : CombiningLock.NOT_READY;
        })));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (attempts.get() < 3 && System.nanoTime() < deadline) {
            Thread.sleep(1); // nobody else takes the lock: the caller's own retries attempt it again
        }
        assertTrue(attempts.get() >= 3, "attempted again: " + attempts.get());
        assertEquals(null, result.get());
        ready.set(true);
        caller.join();
        assertEquals("ready", result.get());
    }

    @Test
    void theHolderMayNotCombineAChangeItWouldWaitFor() {
        lock.lock();
        try {
            assertThrows(IllegalStateException.class, () -> lock.combine(() -> "never"));
        } finally {
            lock.unlock();
        }
    }

    @Test
    void underContentionEveryChangeIsMadeExactlyOnceUnderTheLock() throws Exception {
        int holders = 4;
        int combiners = 4;
        int changesEach = 2_000;
        AtomicBoolean stop = new AtomicBoolean();
        int[] guarded = new int[1]; // changed only under the lock: lost updates would show
        AtomicInteger heldIncrements = new AtomicInteger();
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < holders; i++) {
            threads.add(Thread.ofPlatform().start(() -> {
                int mine = 0;
                while (!stop.get()) {
                    lock.lock();
                    try {
                        guarded[0]++;
                        mine++;
                    } finally {
                        lock.unlock();
                    }
                }
                heldIncrements.addAndGet(mine);
            }));
        }
        AtomicInteger made = new AtomicInteger();
        AtomicInteger heldWhileMade = new AtomicInteger();
        CountDownLatch combinersDone = new CountDownLatch(combiners);
        List<Thread> callers = new ArrayList<>();
        for (int i = 0; i < combiners; i++) {
            callers.add(Thread.ofPlatform().start(() -> {
                for (int change = 0; change < changesEach; change++) {
                    int expected = change;
                    int[] runs = new int[1];
                    Object result = lock.combine(() -> {
                        runs[0]++;
                        if (lock.isHeldByCurrentThread() && lock.getHoldCount() == 1) {
                            heldWhileMade.incrementAndGet();
                        }
                        guarded[0]++;
                        made.incrementAndGet();
                        return expected;
                    });
                    assertEquals(expected, result);
                    assertEquals(1, runs[0], "made exactly once");
                }
                combinersDone.countDown();
            }));
        }
        assertTrue(combinersDone.await(50, TimeUnit.SECONDS), "every combined change returned");
        stop.set(true);
        for (Thread thread : threads) {
            thread.join();
        }
        for (Thread caller : callers) {
            caller.join();
        }
        assertEquals(combiners * changesEach, made.get());
        assertEquals(combiners * changesEach, heldWhileMade.get(), "every change was made under the lock");
        lock.lock();
        try {
            assertEquals(heldIncrements.get() + made.get(), guarded[0], "no update under the lock was lost");
        } finally {
            lock.unlock();
        }
    }

    /**
     * Design note 3 without the callers' timed retry: a change queued at any instant of a holder's release, the
     * instant between its look at the queue and letting go included, is made by that release, never left for a
     * retry. Each round the holder lets go after a random spin while a caller queues a change.
     */
    @Test
    void aChangeQueuedAsTheHolderLetsGoIsMadeByThatReleaseNotByATimedRetry() throws Exception {
        CombiningLock noRetry = new CombiningLock(TimeUnit.HOURS.toNanos(1));
        int rounds = 50_000;
        long seed = System.nanoTime();
        System.out.println("CombiningLockTest: jitter seed " + seed);
        java.util.Random random = new java.util.Random(seed);
        java.util.concurrent.atomic.AtomicLong started = new java.util.concurrent.atomic.AtomicLong(-1);
        java.util.concurrent.atomic.AtomicLong finished = new java.util.concurrent.atomic.AtomicLong(-1);
        Thread caller = Thread.ofPlatform().daemon().start(() -> {
            for (long round = 0; round < rounds; round++) {
                while (started.get() < round) {
                    Thread.onSpinWait();
                }
                long made = noRetry.combine(() -> started.get());
                finished.set(made);
            }
        });
        for (long round = 0; round < rounds; round++) {
            noRetry.lock();
            started.set(round);
            for (int spin = random.nextInt(400); spin > 0; spin--) {
                Thread.onSpinWait();
            }
            noRetry.unlock();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (finished.get() < round) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("round " + round + ": the change queued during the release was not made"
                            + " (seed " + seed + ")");
                }
                Thread.onSpinWait();
            }
        }
        caller.join();
    }

    private static void awaitParked(Thread thread) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() < deadline) {
            Thread.State state = thread.getState();
            if (state == Thread.State.WAITING || state == Thread.State.TIMED_WAITING) {
                return;
            }
            Thread.sleep(1);
        }
        throw new AssertionError("the caller never parked: " + thread.getState());
    }
}
