package io.cairn.cluster;

/**
 * The coordinator (ZooKeeper) could not be reached within the bounded wait, so an operation that
 * needs it was not carried out. Retrying once it is back succeeds; leases already held stay usable
 * only while {@link Lease#isValid()} says so.
 */
public final class CoordinatorUnavailableException extends RuntimeException {

    public CoordinatorUnavailableException(String message) {
        super(message);
    }

    public CoordinatorUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
