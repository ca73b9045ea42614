package io.cairn.volume;

import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Tells when every volume I/O that was in flight at some instant has finished, without stopping any I/O
 * that starts later (the store uses it to decide when a block that lost its last reference may be handed
 * out again; {@link Store} design note 3); and, rarely, stops all volume I/O (the <em>gate</em>: inspections
 * see none in flight).
 *
 * <p>Design notes.
 * <ol>
 *   <li>An I/O registers in the current <em>epoch</em> ({@link #enter}) before it looks up or plans any
 *       block address, and deregisters ({@link #exit}) after its last device call. {@link #awaitInFlight}
 *       advances the epoch and waits until nobody is registered in the old one: every I/O registered before
 *       the call has then exited, and every I/O registering later sees the new epoch.</li>
 *   <li>Counts are kept per epoch parity and per stripe (threads spread over stripes, each stripe on its own
 *       cache line), so registering is one atomic add on a line few threads share. An I/O deregisters on the
 *       very slot it registered on (the token), so every slot stays at or above 0 and a sum of slots read
 *       one after another is above 0 while any I/O registered before the advance is still inside: that
 *       I/O's own slot is at least 1 the whole time.</li>
 *   <li>Two parities suffice because waits run one at a time and each waits for its old epoch to drain: at
 *       the next advance the parity it reuses holds no I/O of an older epoch. An I/O that read the epoch just
 *       before an advance and registered just after it sees, on reading the epoch again, that it changed, and
 *       registers again in the new one (the increment and the re-read are volatile, as are the advance and
 *       the waiter's reads, so one of the two sides always sees the other).</li>
 *   <li>The gate is the same registration read the other way: {@link #close} names its thread as the closer,
 *       then waits until no I/O is registered in either parity; {@link #enter} registers, then reads the
 *       closer, and backs out and waits for {@link #open} if another thread closed the gate (volatile on both
 *       sides again, so either the I/O sees the closer or the closer sees the I/O). It replaces a
 *       read-write lock whose shared side cost every I/O a CAS on one word that all cores write, and a
 *       thread-local hold count; here an I/O costs one atomic add on its stripe's line and volatile reads.
 *       Like that lock's exclusive side the gate is reentrant for its closer, and the closer may itself
 *       start I/O while it holds the gate closed.</li>
 * </ol>
 */
final class IoEpochs {

    private static final int STRIPES = 32;
    /** Slots per stripe: 8 longs = one 64-byte cache line, so stripes do not share lines. */
    private static final int SLOT_SPACING = 8;
    private static final long MAX_PARK_NANOS = 1_000_000;

    /**
     * Whether to count each thread's I/O in a thread-local, only so that {@link #insideIo} can catch a caller
     * that would wait for its own I/O: with assertions enabled (the tests), never in production.
     */
    private static final boolean TRACK_THREADS = IoEpochs.class.desiredAssertionStatus();
    private static final ThreadLocal<int[]> IO_DEPTH = ThreadLocal.withInitial(() -> new int[1]);

    private volatile long epoch;
    private final AtomicLongArray registered = new AtomicLongArray(2 * STRIPES * SLOT_SPACING);
    /** The thread holding the gate closed, or null; written under {@code gateLock}. */
    private volatile Thread closer;
    /** How many times the closer closed the gate without opening it yet; touched by the closer only. */
    private int closeHolds;
    private final ReentrantLock gateLock = new ReentrantLock();
    private final Condition gateOpened = gateLock.newCondition();

    /**
     * Registers an I/O of the calling thread in the current epoch, first waiting while another thread holds
     * the gate closed; pass the token to {@link #exit}. Not interruptible, like the lock it replaces.
     */
    int enter() {
        Thread self = Thread.currentThread();
        long hash = self.threadId() * 0x9E3779B97F4A7C15L;
        int stripe = (int) (hash >>> 59) & (STRIPES - 1);
        while (true) {
            long current = epoch;
            int slot = slot(current, stripe);
            registered.getAndIncrement(slot);
            Thread closing = closer;
            if (epoch == current && (closing == null || closing == self)) {
                if (TRACK_THREADS) {
                    IO_DEPTH.get()[0]++;
                }
                return slot;
            }
            // An advance came in between (register in the new epoch), or the gate is closed: back out first,
            // so that the closer's wait can end.
            registered.getAndDecrement(slot);
            if (closing != null && closing != self) {
                awaitOpen();
            }
        }
    }

    /** Ends the I/O that {@link #enter} returned {@code token} for. */
    void exit(int token) {
        registered.getAndDecrement(token);
        if (TRACK_THREADS) {
            IO_DEPTH.get()[0]--;
        }
    }

    /** Whether the calling thread is inside an I/O; always false unless assertions are enabled. */
    boolean insideIo() {
        return TRACK_THREADS && IO_DEPTH.get()[0] > 0;
    }

    /**
     * Closes the gate: returns once no I/O is in flight, and until {@link #open} no other thread's I/O starts.
     * The caller must not be inside an I/O itself (it would wait for itself). Reentrant.
     */
    void close() {
        Thread self = Thread.currentThread();
        if (closer == self) {
            closeHolds++;
            return;
        }
        gateLock.lock();
        try {
            while (closer != null) {
                gateOpened.awaitUninterruptibly();
            }
            closer = self;
            closeHolds = 1;
        } finally {
            gateLock.unlock();
        }
        long parkNanos = 1_000;
        for (int spins = 0; registeredIn(0) + registeredIn(1) != 0; spins++) {
            if (spins < 64) {
                Thread.onSpinWait();
            } else {
                LockSupport.parkNanos(parkNanos);
                parkNanos = Math.min(MAX_PARK_NANOS, parkNanos * 2);
            }
        }
    }

    /** Opens the gate the calling thread closed (once per {@link #close}). */
    void open() {
        if (closer != Thread.currentThread()) {
            throw new IllegalStateException("the I/O gate is not closed by this thread");
        }
        if (--closeHolds > 0) {
            return;
        }
        gateLock.lock();
        try {
            closer = null;
            gateOpened.signalAll();
        } finally {
            gateLock.unlock();
        }
    }

    /** Whether the calling thread holds the gate closed. */
    boolean closedByCurrentThread() {
        return closer == Thread.currentThread();
    }

    private void awaitOpen() {
        gateLock.lock();
        try {
            while (closer != null) {
                gateOpened.awaitUninterruptibly();
            }
        } finally {
            gateLock.unlock();
        }
    }

    /**
     * Returns once every I/O registered before this call has exited; I/O registering meanwhile does not
     * delay it. The caller must not itself be registered (it would wait for itself). Not interruptible:
     * a block must not be reused early because a thread was interrupted; the interrupt is kept.
     */
    synchronized void awaitInFlight() {
        long old = epoch;
        epoch = old + 1;
        int parity = (int) (old & 1);
        long parkNanos = 1_000;
        boolean interrupted = false;
        for (int spins = 0; registeredIn(parity) != 0; spins++) {
            if (spins < 64) {
                Thread.onSpinWait();
            } else {
                LockSupport.parkNanos(parkNanos);
                parkNanos = Math.min(MAX_PARK_NANOS, parkNanos * 2);
                interrupted |= Thread.interrupted(); // park returns at once while the flag is set
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /** I/O registered in epochs of {@code parity} now (for tests and statistics; exact only when quiet). */
    long registeredIn(int parity) {
        long sum = 0;
        for (int stripe = 0; stripe < STRIPES; stripe++) {
            sum += registered.get((parity * STRIPES + stripe) * SLOT_SPACING);
        }
        return sum;
    }

    private static int slot(long epoch, int stripe) {
        return ((int) (epoch & 1) * STRIPES + stripe) * SLOT_SPACING;
    }
}
