package io.cairn.alloc;

/** A reference counter is at its maximum; the caller must copy the block instead of sharing it. */
public final class RefcountSaturatedException extends RuntimeException {
    private final long block;

    public RefcountSaturatedException(long block, int maximum) {
        super("reference counter of block " + block + " is at its maximum " + maximum, null, false, false);
        this.block = block;
    }

    public long block() {
        return block;
    }
}
