package io.cairn.volume;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;
import jdk.jfr.Category;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.Threshold;

/**
 * The store's metadata lock, which can also make a short change on behalf of a thread that should not queue
 * for it (flat combining): {@link #combine} queues the change, and whichever thread lets go of the lock next
 * makes it, under the lock, just before letting go.
 *
 * <p>Why: under a stream of writes, most of a connection's request threads may be parked on this lock. A
 * snapshot that queued behind them waited for each one to be woken and run in turn, and on a loaded machine a
 * wake-up can cost a scheduler slice: measured at the server, the whole p99 of <em>snapshot taken</em> was
 * its wait for this lock (7.9 of 7.9 ms). A combined change is made within the current holder's hold, by a
 * thread that is already running.
 *
 * <p>Design notes.
 * <ol>
 *   <li>A change runs under the lock, once it is ready, exactly once: at the outermost release (hold count 1)
 *       of whichever thread holds the lock after the change was queued, or by its own caller if that finds the
 *       lock free. Changes queued while others are being made wait for the next release, so one release makes
 *       a bounded number of them.</li>
 *   <li>A change may answer {@link #NOT_READY} (a snapshot whose disk still has in-place writes in flight): it
 *       stays queued and is tried again at the next release. It must itself make sure that it becomes ready and
 *       that a release follows (the snapshot makes new writes copy, and the last in-place write takes the lock
 *       when it finishes).</li>
 *   <li>No lost wake-up: the caller queues its change, counts it in {@link #arrivals}, then tries the lock. If
 *       that fails, a holder lets go after the count, and a releaser compares the count with what it read before
 *       it looked at the queue: a change that arrived after the look (and found the lock held) makes the releaser
 *       take the lock again at once and make it. Before this second look, such a change waited for its caller's
 *       timed retry, which on a loaded machine woke 1-4 ms later: most of the snapshot and clone waits of that size
 *       with no long hold anywhere near them (bench/lib/change_tail.py). A release inside a {@link
 *       java.util.concurrent.locks.Condition#await} does not make changes, so the caller also wakes up every
 *       {@link #RETRY_NANOS} and tries the lock again.</li>
 *   <li>A change must not block (it may run on a thread other threads wait for, e.g. a writer whose in-place
 *       write a snapshot waits for) and must be short (it delays the thread that happens to make it).</li>
 *   <li>What a change throws reaches its caller, never the thread that made it.</li>
 *   <li>Each outermost hold taken by {@link #lock} or {@link #tryLock()} is a flight-recorder event ({@link
 *       HeldEvent}) when a recording enables it and the hold lasts beyond its threshold: its stack trace is the
 *       release, so it names the work that kept others (and the changes queued) waiting. The time a {@link
 *       java.util.concurrent.locks.Condition#await} spends with the lock let go counts as held. When no recording
 *       runs this costs a check per hold.</li>
 * </ol>
 */
final class CombiningLock extends ReentrantLock {

    /** What a change answers when it cannot be made yet (design note 2). */
    static final Object NOT_READY = new Object();
    /** How often a caller tries the lock itself while its change waits (design note 3). */
    private static final long RETRY_NANOS = 1_000_000;

    private final long retryNanos;
    private final ConcurrentLinkedQueue<Change> queued = new ConcurrentLinkedQueue<>();
    /** Changes ever queued by {@link #combine} (not counting retries of changes not ready): design note 3. */
    private final AtomicLong arrivals = new AtomicLong();
    /** The current outermost hold's event when a recording wants it (design note 6); only its holder touches it. */
    private HeldEvent hold;

    /** A hold of the metadata lock that lasted beyond the threshold, for the flight recorder. */
    @Name("io.cairn.MetadataLockHeld")
    @Label("Metadata lock held")
    @Category("Cairn")
    @Description("An outermost hold of the store's metadata lock; the stack trace is where it was let go")
    @Threshold("200 us")
    static final class HeldEvent extends Event {
        @Label("Changes made")
        @Description("Combined changes this hold made at its release, its own caller's included")
        int changesMade;
    }

    CombiningLock() {
        this(RETRY_NANOS);
    }

    /** With another interval for the callers' own retries (tests: none in practice, to show no change relies on them). */
    CombiningLock(long retryNanos) {
        this.retryNanos = retryNanos;
    }

    /** A queued change; {@code result} and {@code failure} are written before {@code done}. */
    private static final class Change {
        final Supplier<Object> attempt;
        final Thread caller;
        Object result;
        Throwable failure;
        volatile boolean done;

        Change(Supplier<Object> attempt, Thread caller) {
            this.attempt = attempt;
            this.caller = caller;
        }
    }

    /**
     * Makes a change under this lock, on whichever thread releases it next, and returns its result. {@code
     * attempt} runs under the lock and returns the result or {@link #NOT_READY}; it must not block. The caller
     * must not hold the lock.
     */
    @SuppressWarnings("unchecked")
    <T> T combine(Supplier<Object> attempt) {
        if (isHeldByCurrentThread()) {
            throw new IllegalStateException("a change combined by the thread that holds the lock would wait for itself");
        }
        Change change = new Change(attempt, Thread.currentThread());
        queued.add(change);
        arrivals.incrementAndGet(); // after the add: a releaser that sees the count finds the change queued
        while (!change.done) {
            if (tryLock()) {
                unlock(); // makes what is queued, this change included if it is ready
            }
            if (!change.done) {
                LockSupport.parkNanos(this, retryNanos);
            }
        }
        if (change.failure instanceof RuntimeException problem) {
            throw problem;
        }
        if (change.failure instanceof Error error) {
            throw error;
        }
        return (T) change.result;
    }

    @Override
    public void lock() {
        super.lock();
        startHold();
    }

    @Override
    public boolean tryLock() {
        if (!super.tryLock()) {
            return false;
        }
        startHold();
        return true;
    }

    private void startHold() {
        if (getHoldCount() == 1) {
            HeldEvent event = new HeldEvent();
            if (event.isEnabled()) {
                event.begin();
                hold = event;
            }
        }
    }

    @Override
    public void unlock() {
        if (getHoldCount() != 1) {
            super.unlock();
            return;
        }
        while (true) {
            long arrived = arrivals.get(); // before the look at the queue: every change counted is in it
            int made = queued.isEmpty() ? 0 : makeQueued();
            HeldEvent event = hold;
            if (event != null) {
                hold = null;
                event.changesMade = made;
                event.commit();
            }
            super.unlock();
            // Design note 3: a change that arrived since the look may have found the lock held by this thread.
            if (arrivals.get() == arrived || !super.tryLock()) {
                return; // none, or another holder's release makes it
            }
            startHold();
        }
    }

    /** Under the lock, at its outermost release: makes every change queued so far that is ready; returns how many. */
    private int makeQueued() {
        List<Change> batch = new ArrayList<>();
        Change change;
        while ((change = queued.poll()) != null) {
            batch.add(change);
        }
        int made = 0;
        for (Change next : batch) {
            Object result;
            try {
                result = next.attempt.get();
            } catch (Throwable problem) {
                next.failure = problem;
                finish(next);
                made++;
                continue;
            }
            if (result == NOT_READY) {
                queued.add(next);
            } else {
                next.result = result;
                finish(next);
                made++;
            }
        }
        return made;
    }

    private static void finish(Change change) {
        change.done = true;
        if (change.caller != Thread.currentThread()) {
            LockSupport.unpark(change.caller);
        }
    }
}
