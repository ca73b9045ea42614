package io.cairn.gc;

/**
 * One bit per block of the store, indexed by a {@code long} block number (a store may hold up to 2^48
 * blocks, beyond the reach of {@link java.util.BitSet}). Chunks of 2^20 bits are allocated on first
 * set, so a sparse marking of a large store costs little. Not thread-safe.
 */
final class BlockBitmap {

    private static final int CHUNK_SHIFT = 20;
    private static final long CHUNK_BITS = 1L << CHUNK_SHIFT;
    private static final int WORDS_PER_CHUNK = (int) (CHUNK_BITS / Long.SIZE);

    private final long sizeBits;
    private final long[][] chunks;
    private long cardinality;

    BlockBitmap(long sizeBits) {
        this.sizeBits = sizeBits;
        this.chunks = new long[Math.toIntExact((sizeBits + CHUNK_BITS - 1) >>> CHUNK_SHIFT)][];
    }

    boolean get(long bit) {
        long[] chunk = chunks[(int) (bit >>> CHUNK_SHIFT)];
        if (chunk == null) {
            return false;
        }
        int inChunk = (int) (bit & (CHUNK_BITS - 1));
        return (chunk[inChunk >>> 6] & (1L << inChunk)) != 0;
    }

    /** Sets {@code bit}; returns true if it was clear. */
    boolean set(long bit) {
        int chunkIndex = (int) (bit >>> CHUNK_SHIFT);
        long[] chunk = chunks[chunkIndex];
        if (chunk == null) {
            chunk = new long[WORDS_PER_CHUNK];
            chunks[chunkIndex] = chunk;
        }
        int inChunk = (int) (bit & (CHUNK_BITS - 1));
        long mask = 1L << inChunk;
        if ((chunk[inChunk >>> 6] & mask) != 0) {
            return false;
        }
        chunk[inChunk >>> 6] |= mask;
        cardinality++;
        return true;
    }

    /** The lowest set bit at or after {@code from}, or -1. */
    long nextSetBit(long from) {
        for (long bit = Math.max(0, from); bit < sizeBits; ) {
            int chunkIndex = (int) (bit >>> CHUNK_SHIFT);
            long[] chunk = chunks[chunkIndex];
            if (chunk == null) {
                bit = (long) (chunkIndex + 1) << CHUNK_SHIFT;
                continue;
            }
            int inChunk = (int) (bit & (CHUNK_BITS - 1));
            int wordIndex = inChunk >>> 6;
            long word = chunk[wordIndex] & (-1L << inChunk);
            while (true) {
                if (word != 0) {
                    long found = ((long) chunkIndex << CHUNK_SHIFT) + (long) wordIndex * Long.SIZE
                            + Long.numberOfTrailingZeros(word);
                    return found < sizeBits ? found : -1;
                }
                if (++wordIndex == WORDS_PER_CHUNK) {
                    break;
                }
                word = chunk[wordIndex];
            }
            bit = (long) (chunkIndex + 1) << CHUNK_SHIFT;
        }
        return -1;
    }

    long cardinality() {
        return cardinality;
    }
}
