package io.cairn.cluster;

/**
 * A lock is held by another node and did not become free within the wait the caller allowed.
 * Carries the holder, so a caller can name it or forward the request to it.
 */
public final class LockHeldException extends IllegalStateException {

    private final LockHolder holder;

    public LockHeldException(LockHolder holder) {
        super("lock " + holder.lockName() + " is held by node " + holder.node()
                + " (fencing token " + holder.fencingToken() + ")");
        this.holder = holder;
    }

    public LockHolder holder() {
        return holder;
    }
}
