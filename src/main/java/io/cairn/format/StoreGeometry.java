package io.cairn.format;

/**
 * Where things are in a store of a given size and extent size.
 *
 * <pre>
 * extent e covers blocks [e * extentBlocks, (e + 1) * extentBlocks)
 * extent 0:  blocks 0, 1         superblock slots A, B
 *            then 2 * R blocks   counter blocks of extent 0, slots 0 and 1 interleaved
 * extent e>0: 2 * R blocks        counter blocks of extent e, slots 0 and 1 interleaved
 * R = ceil(extentBlocks / C) counter blocks per extent, C = counters per block: 2032 (2-byte counters)
 *     or 4064 (1-byte counters), as the store's {@link CounterEncoding} says
 * counter block i, slot s of extent e is at: extentStart(e) + (e == 0 ? 2 : 0) + 2 * i + s
 * </pre>
 * The blocks an extent reserves for the format carry a reference count of 1 forever.
 */
public record StoreGeometry(long storeBlocks, int extentBlocks, CounterEncoding counterEncoding) {

    /** The geometry of a store formatted by this code ({@link CounterEncoding#FOR_NEW_STORES}). */
    public StoreGeometry(long storeBlocks, int extentBlocks) {
        this(storeBlocks, extentBlocks, CounterEncoding.FOR_NEW_STORES);
    }

    public StoreGeometry {
        java.util.Objects.requireNonNull(counterEncoding, "counterEncoding");
        if (extentBlocks < Layout.MIN_EXTENT_BLOCKS || Integer.bitCount(extentBlocks) != 1) {
            throw new IllegalArgumentException("extent size must be a power of two of at least "
                    + Layout.MIN_EXTENT_BLOCKS + " blocks, got " + extentBlocks);
        }
        if (storeBlocks < 2L * extentBlocks || storeBlocks % extentBlocks != 0) {
            throw new IllegalArgumentException("store size must be a whole number of at least two extents of "
                    + extentBlocks + " blocks, got " + storeBlocks + " blocks");
        }
    }

    public static StoreGeometry of(Superblock superblock) {
        return new StoreGeometry(superblock.storeBlocks(), superblock.extentBlocks(), superblock.counterEncoding());
    }

    public int extentCount() {
        return (int) (storeBlocks / extentBlocks);
    }

    public int counterBlocksPerExtent() {
        return Math.ceilDiv(extentBlocks, counterEncoding.countersPerBlock());
    }

    /** The counter block of its extent that holds the counter of {@code block}. */
    public int counterBlockOf(long block) {
        return counterEncoding.counterBlockOf(offsetInExtent(block));
    }

    /** The first block, as an offset in its extent, whose counter counter block {@code counterBlock} holds. */
    public int firstCoveredOffset(int counterBlock) {
        return counterBlock * counterEncoding.countersPerBlock();
    }

    public long extentStart(int extent) {
        return (long) extent * extentBlocks;
    }

    /** A shift, not a division: every counter update asks, and a 64-bit division costs tens of cycles. */
    public int extentOf(long block) {
        return (int) (block >>> Integer.numberOfTrailingZeros(extentBlocks));
    }

    public int offsetInExtent(long block) {
        return (int) (block & (extentBlocks - 1));
    }

    /** Blocks at the start of {@code extent} that belong to the format (superblocks, counter slots). */
    public int reservedBlocks(int extent) {
        return (extent == 0 ? Layout.SUPERBLOCK_BLOCKS : 0) + 2 * counterBlocksPerExtent();
    }

    public long counterSlotBlock(int extent, int counterBlock, int slot) {
        return extentStart(extent) + (extent == 0 ? Layout.SUPERBLOCK_BLOCKS : 0) + 2L * counterBlock + slot;
    }

    public boolean contains(long block) {
        return block > 0 && block < storeBlocks;
    }
}
