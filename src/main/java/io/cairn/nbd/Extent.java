package io.cairn.nbd;

/**
 * A run of bytes with one status, as reported by block status queries.
 *
 * <p>The meaning of {@code flags} belongs to the metadata context that produced the extent; for
 * {@code base:allocation} (what {@link NbdExport#blockStatus} returns) they are {@link #HOLE} and
 * {@link #ZERO}.
 *
 * @param lengthBytes length of the run, at least 1
 * @param flags       status bits of the run
 */
public record Extent(long lengthBytes, int flags) {

    /** base:allocation: the range is not allocated in the backing store. */
    public static final int HOLE = NbdConstants.STATE_HOLE;
    /** base:allocation: the range reads as zeroes. */
    public static final int ZERO = NbdConstants.STATE_ZERO;

    public Extent {
        if (lengthBytes <= 0) {
            throw new IllegalArgumentException("extent length must be positive: " + lengthBytes);
        }
    }

    /** Allocated bytes whose content is not known to be zero. */
    public static Extent data(long lengthBytes) {
        return new Extent(lengthBytes, 0);
    }

    /** Allocated bytes that read as zeroes. */
    public static Extent zero(long lengthBytes) {
        return new Extent(lengthBytes, ZERO);
    }

    /** Unallocated bytes; they read as zeroes. */
    public static Extent hole(long lengthBytes) {
        return new Extent(lengthBytes, HOLE | ZERO);
    }
}
