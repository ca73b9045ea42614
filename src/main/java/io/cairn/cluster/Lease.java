package io.cairn.cluster;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * The right of one node to write what a named lock guards, for as long as it is valid.
 *
 * <p>Design notes.
 * <ol>
 *   <li>A lease is HELD, then RELEASED (by its holder) or LOST (session expired, window closed, lock
 *       znode deleted); it never returns to HELD. A node that wants the lock again acquires a new lease,
 *       with a new token.</li>
 *   <li>The fencing token is strictly greater than the token of every earlier lease of the same lock
 *       name, whoever held it. The store writes it into the record the lease guards, so a record shows
 *       which lease last wrote it and a stale holder can be recognised.</li>
 *   <li>{@link #isValid()} is true only while the lease is HELD and its {@link ValidityEpoch} is within
 *       its window; it is cheap enough to call before every device write (volatile reads and
 *       {@link System#nanoTime()}).</li>
 *   <li>Lost-listeners run once, on the manager's thread that noticed the loss, after the lease has
 *       already become invalid; they must not block.</li>
 * </ol>
 */
public final class Lease implements AutoCloseable {

    enum State { HELD, RELEASED, LOST }

    private final String lockName;
    private final String node;
    private final long fencingToken;
    private final ValidityEpoch epoch;
    private final Consumer<Lease> releaser;
    private final AtomicReference<State> state = new AtomicReference<>(State.HELD);
    private volatile String lostReason;
    private final List<Consumer<Lease>> lostListeners = new CopyOnWriteArrayList<>();

    Lease(String lockName, String node, long fencingToken, ValidityEpoch epoch, Consumer<Lease> releaser) {
        this.lockName = lockName;
        this.node = node;
        this.fencingToken = fencingToken;
        this.epoch = epoch;
        this.releaser = releaser;
    }

    public String lockName() {
        return lockName;
    }

    /** The node holding this lease. */
    public String node() {
        return node;
    }

    public long fencingToken() {
        return fencingToken;
    }

    /** Whether this node may still write what the lock guards; see the design notes. */
    public boolean isValid() {
        return state.get() == State.HELD && epoch.isValid(System.nanoTime());
    }

    /** Throws {@link LeaseLostException} unless {@link #isValid()}; the write path calls it before each write. */
    public void checkValid() {
        if (!isValid()) {
            throw new LeaseLostException("lease on " + lockName + " (fencing token " + fencingToken + ") is no longer valid: "
                    + whyInvalid());
        }
    }

    /** True until the lease is released or lost (whether or not it is still within its window). */
    boolean isHeld() {
        return state.get() == State.HELD;
    }

    /** True once the lease was lost (not merely released). */
    public boolean isLost() {
        return state.get() == State.LOST;
    }

    /** Why the lease was lost, or null while it was not. */
    public String lostReason() {
        return lostReason;
    }

    /**
     * Runs {@code listener} once when the lease is lost; at once if it already was. Not run on
     * {@link #release()}.
     */
    public void onLost(Consumer<Lease> listener) {
        lostListeners.add(listener);
        if (state.get() == State.LOST && lostListeners.remove(listener)) {
            listener.accept(this);
        }
    }

    /** Gives the lock back; the lease is invalid from the moment this is called. Idempotent. */
    public void release() {
        if (state.compareAndSet(State.HELD, State.RELEASED)) {
            releaser.accept(this);
        }
    }

    @Override
    public void close() {
        release();
    }

    ValidityEpoch epoch() {
        return epoch;
    }

    /** Marks the lease lost and runs the listeners; false if it was already released or lost. */
    boolean markLost(String reason) {
        if (state.get() != State.HELD) {
            return false;
        }
        lostReason = reason;
        if (!state.compareAndSet(State.HELD, State.LOST)) {
            return false;
        }
        for (Consumer<Lease> listener : lostListeners) {
            if (lostListeners.remove(listener)) {
                listener.accept(this);
            }
        }
        return true;
    }

    private String whyInvalid() {
        return switch (state.get()) {
            case RELEASED -> "released";
            case LOST -> "lost: " + lostReason;
            case HELD -> epoch.endReason() != null ? epoch.endReason()
                    : "not confirmed by the coordinator within " + epoch.windowNanos() / 1_000_000 + " ms";
        };
    }

    @Override
    public String toString() {
        return "lease " + lockName + " of " + node + " (token " + fencingToken + ", " + state.get().name().toLowerCase() + ")";
    }
}
