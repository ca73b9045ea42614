package io.cairn.io;

/**
 * An I/O error from the blockstore, with an error code that tells callers (and NBD clients) what kind.
 */
public class StorageException extends RuntimeException {

    /** What went wrong, coarse enough to map onto protocol errors. */
    public enum Code {
        /** The operating system reported an I/O error. */
        IO,
        /** No free space is left in the blockstore. */
        NO_SPACE,
        /** The store is open read-only, or the export refuses writes. */
        READ_ONLY,
        /** Another process holds the store. */
        LOCKED,
        /** Metadata failed a check; see {@link CorruptionException}. */
        CORRUPT,
        /** The store or device was closed. */
        CLOSED
    }

    private final Code code;

    public StorageException(Code code, String message) {
        super(message);
        this.code = code;
    }

    public StorageException(Code code, String message, Throwable cause) {
        super(message, cause);
        this.code = code;
    }

    public Code code() {
        return code;
    }
}
