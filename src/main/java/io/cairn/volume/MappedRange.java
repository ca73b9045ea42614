package io.cairn.volume;

/**
 * A run of a volume's address space in one allocation state.
 *
 * @param state what the run is: a hole, blocks shared with snapshots or clones, or blocks this
 *              volume alone owns
 */
public record MappedRange(long offsetBytes, long lengthBytes, State state) {

    public enum State {
        /** Not mapped: reads as zeros; a write allocates. */
        HOLE,
        /** Mapped, but shared with a snapshot or clone: a write copies, so it allocates. */
        SHARED,
        /** Mapped to blocks only this volume sees: a write overwrites in place and never needs space. */
        OWNED
    }

    public boolean mapped() {
        return state != State.HOLE;
    }
}
