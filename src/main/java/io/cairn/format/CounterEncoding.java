package io.cairn.format;

/**
 * How a store writes its reference counters on disk (docs/FORMAT.md sections 7 and 10): the width of one
 * counter in a counter block, and with it how many counters a block holds and the largest count.
 *
 * <ul>
 *   <li>{@link #WIDE}: 2-byte counters, 2032 per block, at most 65535. Every store without incompatible
 *       feature bit 0.</li>
 *   <li>{@link #NARROW}: 1-byte counters, 4064 per block, at most 255. Incompatible feature bit 0; what new
 *       stores get. Half the counter blocks: with 256 MiB extents the metadata of a filled store drops from
 *       0.306% to 0.247% of its data (docs/BENCHMARKS.md).</li>
 * </ul>
 *
 * <p>Counters in memory are 16 bits wide whatever the encoding; the encoding's {@link #maxCount} is what
 * the store lets a counter reach (a reference beyond it copies the block instead of sharing it), so every
 * counter in memory always fits the encoding. The counters per block are {@code 127 << shift} (4064 bytes
 * after the header are 127 × 32), so the counter block of an offset is a shift and a division by the
 * constant 127, which compiles to a multiplication on the per-counter paths.
 */
public enum CounterEncoding {

    WIDE(2, 4, 0xFFFF, 0),
    NARROW(1, 5, 0xFF, Superblock.FEATURE_NARROW_COUNTERS);

    /** The encoding a store formatted by this code gets. */
    public static final CounterEncoding FOR_NEW_STORES = NARROW;

    private static final int COUNTER_BLOCK_FACTOR = 127;

    private final int counterBytes;
    private final int shift;
    private final int maxCount;
    private final long incompatibleFeature;

    CounterEncoding(int counterBytes, int shift, int maxCount, long incompatibleFeature) {
        this.counterBytes = counterBytes;
        this.shift = shift;
        this.maxCount = maxCount;
        this.incompatibleFeature = incompatibleFeature;
        if ((COUNTER_BLOCK_FACTOR << shift) * counterBytes != Layout.BLOCK_BYTES - Layout.HEADER_BYTES) {
            throw new AssertionError(name() + ": counters do not fill the block after the header");
        }
    }

    /** The encoding the superblock's incompatible feature flags name. */
    public static CounterEncoding of(long incompatibleFeatures) {
        return (incompatibleFeatures & Superblock.FEATURE_NARROW_COUNTERS) != 0 ? NARROW : WIDE;
    }

    /** Bytes of one counter on disk. */
    public int counterBytes() {
        return counterBytes;
    }

    /** Counters after the header of one counter block: 2032 or 4064. */
    public int countersPerBlock() {
        return COUNTER_BLOCK_FACTOR << shift;
    }

    /** The counter block (within its extent) that holds the counter of the block at {@code offsetInExtent}. */
    public int counterBlockOf(int offsetInExtent) {
        return (offsetInExtent >>> shift) / COUNTER_BLOCK_FACTOR;
    }

    /** The largest count a counter holds: 65535 or 255. */
    public int maxCount() {
        return maxCount;
    }

    /** The incompatible feature bit that marks this encoding in the superblock (0 for the original one). */
    public long incompatibleFeature() {
        return incompatibleFeature;
    }
}
