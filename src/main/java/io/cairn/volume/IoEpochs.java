package io.cairn.volume;

import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.LockSupport;

/**
 * Tells when every volume I/O that was in flight at some instant has finished, without stopping any I/O
 * that starts later (the store uses it to decide when a block that lost its last reference may be handed
 * out again; {@link Store} design note 3).
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
 * </ol>
 */
final class IoEpochs {

    private static final int STRIPES = 32;
    /** Slots per stripe: 8 longs = one 64-byte cache line, so stripes do not share lines. */
    private static final int SLOT_SPACING = 8;
    private static final long MAX_PARK_NANOS = 1_000_000;

    private volatile long epoch;
    private final AtomicLongArray registered = new AtomicLongArray(2 * STRIPES * SLOT_SPACING);

    /** Registers an I/O of the calling thread in the current epoch; pass the token to {@link #exit}. */
    int enter() {
        long hash = Thread.currentThread().threadId() * 0x9E3779B97F4A7C15L;
        int stripe = (int) (hash >>> 59) & (STRIPES - 1);
        while (true) {
            long current = epoch;
            int slot = slot(current, stripe);
            registered.getAndIncrement(slot);
            if (epoch == current) {
                return slot;
            }
            registered.getAndDecrement(slot); // an advance came in between: register in the new epoch
        }
    }

    /** Ends the I/O that {@link #enter} returned {@code token} for. */
    void exit(int token) {
        registered.getAndDecrement(token);
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
