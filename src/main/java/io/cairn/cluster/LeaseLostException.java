package io.cairn.cluster;

/**
 * Thrown by {@link Lease#checkValid()} when the lease no longer entitles this node to write: it was
 * released, lost with the ZooKeeper session, or could not be confirmed within its validity window.
 * A write path that gets it must not issue the write.
 */
public final class LeaseLostException extends IllegalStateException {

    public LeaseLostException(String message) {
        super(message);
    }
}
