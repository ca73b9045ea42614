package io.cairn.nbd;

/**
 * Thrown by {@link NbdExport#writeZeroes} when the caller asked for fast zeroing only and the export
 * could not zero the range faster than writing zeroes. Becomes NBD_ENOTSUP, which tells the client to
 * fall back to ordinary writes.
 */
public class FastZeroUnsupportedException extends RuntimeException {

    public FastZeroUnsupportedException(String message) {
        super(message);
    }
}
