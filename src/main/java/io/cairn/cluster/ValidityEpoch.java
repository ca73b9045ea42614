package io.cairn.cluster;

/**
 * How long the leases acquired in one period of confirmed contact with the coordinator stay valid.
 *
 * <p>Design notes.
 * <ol>
 *   <li>An epoch belongs to one ZooKeeper session (or, embedded, to the process). Every request the
 *       server answered in that session {@link #confirm confirms} the epoch up to (the request's send
 *       time + the validity window), on the monotonic clock.</li>
 *   <li>Once the window has closed — now past {@code validUntilNanos} with no confirmation in time —
 *       the epoch is over for good: a late answer does not reopen it. So a lease never flips from
 *       invalid back to valid; a node that paused past its window (SIGSTOP, a long GC pause) finds
 *       every lease of the epoch invalid the moment it runs again, before it can write.</li>
 *   <li>{@link #isValid} is two volatile reads and {@link System#nanoTime()}: no lock, no system call
 *       beyond the vDSO clock read, no ZooKeeper round trip. The write path calls it before every
 *       device write.</li>
 * </ol>
 *
 * <p>Threading: {@link #isValid} from any thread; {@link #confirm} and {@link #end} from any thread,
 * serialized by this object's monitor.
 */
final class ValidityEpoch {

    /** The session this epoch belongs to (0 for the embedded manager). */
    final long sessionId;
    /** False for the embedded manager, whose leases never expire. */
    private final boolean expires;
    private final long windowNanos;
    /** Meaningful once {@link #confirmed}; compared by subtraction (nanoTime may wrap). */
    private volatile long validUntilNanos;
    private volatile boolean confirmed;
    /** Why the epoch ended, or null while it lasts. */
    private volatile String endReason;

    private ValidityEpoch(long sessionId, boolean expires, long windowNanos) {
        this.sessionId = sessionId;
        this.expires = expires;
        this.windowNanos = windowNanos;
        this.confirmed = !expires;
    }

    /** An epoch of a ZooKeeper session, not valid until its first {@link #confirm}. */
    static ValidityEpoch forSession(long sessionId, long windowNanos) {
        return new ValidityEpoch(sessionId, true, windowNanos);
    }

    /** An epoch that lasts until {@link #end}: single-process locking, where nobody else can take over. */
    static ValidityEpoch unlimited() {
        return new ValidityEpoch(0, false, 0);
    }

    boolean isValid(long nowNanos) {
        if (endReason != null || !confirmed) {
            return false;
        }
        return !expires || nowNanos - validUntilNanos < 0;
    }

    /** True once the window of a confirmed epoch has closed, though nobody has ended it yet. */
    boolean lapsed(long nowNanos) {
        return expires && confirmed && endReason == null && nowNanos - validUntilNanos >= 0;
    }

    long windowNanos() {
        return windowNanos;
    }

    /** How much longer the epoch stays valid without a new confirmation; 0 once it is not valid. */
    long remainingNanos(long nowNanos) {
        if (!isValid(nowNanos)) {
            return 0;
        }
        return expires ? validUntilNanos - nowNanos : Long.MAX_VALUE;
    }

    /**
     * The server answered a request sent at {@code sentNanos} in this epoch's session: the epoch is
     * valid until {@code sentNanos} + window. False (and the epoch ends) if the window had already
     * closed; a lapsed epoch is never reopened (note 2).
     */
    synchronized boolean confirm(long sentNanos) {
        if (endReason != null) {
            return false;
        }
        if (!expires) {
            return true;
        }
        long now = System.nanoTime();
        if (confirmed && now - validUntilNanos >= 0) {
            endReason = "not confirmed by ZooKeeper within " + windowNanos / 1_000_000 + " ms";
            return false;
        }
        long until = sentNanos + windowNanos;
        if (!confirmed || until - validUntilNanos > 0) {
            validUntilNanos = until;
        }
        confirmed = true;
        return now - validUntilNanos < 0;
    }

    /** Ends the epoch (first reason wins); its leases are invalid from now on. */
    synchronized void end(String reason) {
        if (endReason == null) {
            endReason = reason;
        }
    }

    /** Why the epoch ended, or null. */
    String endReason() {
        return endReason;
    }
}
