package io.cairn.alloc;

import io.cairn.format.BlockHeader;
import io.cairn.format.ExtentRecord;
import io.cairn.format.Layout;
import io.cairn.format.Pointer;
import io.cairn.format.RefcountBlockCodec;
import io.cairn.format.StoreGeometry;
import io.cairn.io.BlockDevice;
import io.cairn.io.CorruptionException;
import io.cairn.io.StorageException;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;

/**
 * Reference counters and allocation for every block of the store (seed 000: shared on-disk
 * 16-bit counters; seed 003 §3.4.1: typed extents with their own allocation maps).
 *
 * <p>Design notes.
 * <ol>
 *   <li>A block's counter is the number of references to it: pointers in radix nodes, roots named by
 *       VDI and snapshot records, table pages named by table trees. 0 = free. The format's own blocks
 *       (superblock and counter slots) hold 1 forever.</li>
 *   <li>The counters are the allocation map: a block is free iff its counter is 0 and its extent is
 *       held for the block's kind (metadata or data). Free extents have no counters on disk; claiming
 *       one makes its counters dirty, and the next commit writes both of its slots.</li>
 *   <li>Counters in memory are never below the durable ones: callers apply increments at once and
 *       decrements only after the commit that removed the reference is durable (DESIGN §4).</li>
 *   <li>Each counter block has two slots; a commit writes the slot that is not durable. The slot
 *       that is durable is remembered per counter block. A slot found at open with a generation above
 *       the superblock's was written by a commit that never finished: its counter block is marked
 *       dirty so the next commit overwrites it before any later generation could make it look valid.</li>
 *   <li>A block that loses its last reference may still be read or written by volume I/O that looked its
 *       address up earlier. Such a block is <em>held</em> ({@link #decrementHolding}): its counter stays at
 *       1 with no reference behind it, so it is not free (not counted free, not allocatable) until the store
 *       knows that no such I/O is left and gives it back ({@link #freeHeld}). Every total and check here sees
 *       a held block as an allocated block with count 1; the store gives every held block back before any
 *       commit can capture the counters (io.cairn.volume.Store design note 3), so no counter written to the
 *       device is ever in that state.</li>
 *   <li>Not thread-safe: the store calls it under its metadata lock.</li>
 * </ol>
 */
public final class SpaceMap {

    /** What a block is allocated for; decides which extents it may come from. */
    public enum Purpose {
        METADATA, DATA
    }

    /**
     * A counter block for a commit to write: a copy of its counters, taken under the store's lock, encoded by
     * {@link #image()} afterwards without it; {@code counters} is null for the zeroed other slot of a counter
     * block never written before ({@code slot} -1).
     */
    public record CounterWrite(int extent, int counterBlock, int slot, long blockNumber, char[] counters, long generation) {

        /** The sealed block image to write at {@link #blockNumber}. */
        public ByteBuffer image() {
            return counters == null ? BlockHeader.newImage()
                    : RefcountBlockCodec.encode(counters, 0, blockNumber, generation, slot);
        }
    }

    private final StoreGeometry geometry;
    private final int maxRefcount;
    private final ExtentRecord[] extents;
    /** Counters per held extent; null for free extents. */
    private final char[][] counters;
    private final int[] freeBlocks;
    /** Free blocks per extent type (indexed by ordinal), and blocks that free extents could provide. */
    private final long[] freeByType = new long[ExtentRecord.Type.values().length];
    private long unclaimedBlocks;
    /** Per extent: counter blocks changed since the last commit captured them. */
    private final BitSet[] dirtyCounterBlocks;
    /** Per extent and counter block: the durable slot (0 or 1), or -1 if neither is. */
    private final byte[][] durableSlot;
    private final BitSet dirtyExtentRecords = new BitSet();
    private final int[] cursorExtent = new int[Purpose.values().length];
    private final int[] cursorOffset = new int[Purpose.values().length];
    private long highestGenerationSeen;
    /** Metadata blocks only a commit may use, so a store filled by writes can always commit. */
    private final long metadataReserveBlocks;
    private boolean commitAllocations;

    public SpaceMap(StoreGeometry geometry, int maxRefcount) {
        if (maxRefcount < 2 || maxRefcount > Layout.MAX_REFCOUNT) {
            throw new IllegalArgumentException("maximum reference count must be in [2, 65535], got " + maxRefcount);
        }
        this.geometry = geometry;
        this.maxRefcount = maxRefcount;
        int extentCount = geometry.extentCount();
        this.extents = new ExtentRecord[extentCount];
        java.util.Arrays.fill(extents, ExtentRecord.FREE);
        this.counters = new char[extentCount][];
        this.freeBlocks = new int[extentCount];
        this.dirtyCounterBlocks = new BitSet[extentCount];
        this.durableSlot = new byte[extentCount][];
        for (int extent = 0; extent < extentCount; extent++) {
            unclaimedBlocks += geometry.extentBlocks() - geometry.reservedBlocks(extent);
        }
        this.metadataReserveBlocks = Math.clamp(geometry.storeBlocks() / 256, 32, Math.min(4096, geometry.extentBlocks() / 2));
    }

    /**
     * While on, metadata allocations may use the reserve (the store turns it on while it prepares a
     * commit, whose table pages and nodes must always find room).
     */
    public void allowReserve(boolean on) {
        commitAllocations = on;
    }

    public long metadataReserveBlocks() {
        return metadataReserveBlocks;
    }

    public StoreGeometry geometry() {
        return geometry;
    }

    public int maxRefcount() {
        return maxRefcount;
    }

    // ---------------------------------------------------------------- setup

    /** For a new store: makes extent 0 the system extent with fresh counters. */
    public void formatSystemExtent() {
        claim(0, ExtentRecord.Type.SYSTEM);
    }

    /**
     * Loads the catalogue entry of {@code extent} and, if it is held, its counters from the slots
     * valid at {@code superblockGeneration}.
     */
    public void loadExtent(int extent, ExtentRecord record, BlockDevice device, long superblockGeneration) {
        extents[extent] = record;
        if (record.type() == ExtentRecord.Type.FREE) {
            return;
        }
        unclaimedBlocks -= geometry.extentBlocks() - geometry.reservedBlocks(extent);
        int counterBlocks = geometry.counterBlocksPerExtent();
        char[] extentCounters = new char[geometry.extentBlocks()];
        byte[] slots = new byte[counterBlocks];
        BitSet dirty = new BitSet(counterBlocks);
        ByteBuffer[] images = {BlockHeader.newImage(), BlockHeader.newImage()};
        for (int i = 0; i < counterBlocks; i++) {
            int best = -1;
            long bestGeneration = -1;
            long newestUnreadable = -1;
            long newestUnreadableBlock = -1;
            for (int slot = 0; slot < 2; slot++) {
                long block = geometry.counterSlotBlock(extent, i, slot);
                images[slot].clear();
                device.read(block * Layout.BLOCK_BYTES, images[slot]);
                if (!BlockHeader.isValid(images[slot], Layout.MAGIC_REFCOUNT, block)) {
                    long claimed = BlockHeader.generation(images[slot]);
                    if (claimed <= superblockGeneration && claimed > newestUnreadable) {
                        newestUnreadable = claimed;
                        newestUnreadableBlock = block;
                    }
                    continue;
                }
                long generation = BlockHeader.generation(images[slot]);
                highestGenerationSeen = Math.max(highestGenerationSeen, generation);
                if (generation > superblockGeneration) {
                    dirty.set(i); // left by an unfinished commit: overwrite it at the next commit
                } else if (generation > bestGeneration) {
                    best = slot;
                    bestGeneration = generation;
                }
            }
            if (best < 0) {
                throw new CorruptionException(geometry.counterSlotBlock(extent, i, 0),
                        "neither slot of counter block " + i + " of extent " + extent + " is valid");
            }
            if (newestUnreadable > bestGeneration) {
                // A commit only ever overwrites the slot that is not current, so a torn slot is older than
                // the current one (or newer than the superblock). One that claims to be the current
                // version but fails its check has decayed: falling back would silently lose counts.
                throw new CorruptionException(newestUnreadableBlock, "counter slot of generation " + newestUnreadable
                        + " (the current one) fails its check; the other slot is older");
            }
            RefcountBlockCodec.decodeInto(images[best], extentCounters, i * Layout.COUNTERS_PER_REFCOUNT_BLOCK);
            slots[i] = (byte) best;
        }
        counters[extent] = extentCounters;
        durableSlot[extent] = slots;
        dirtyCounterBlocks[extent] = dirty;
        int free = 0;
        for (char c : extentCounters) {
            if (c == 0) {
                free++;
            }
        }
        freeBlocks[extent] = free;
        freeByType[record.type().ordinal()] += free;
    }

    /** Highest generation stamped on any counter slot read at open. */
    public long highestGenerationSeen() {
        return highestGenerationSeen;
    }

    // ---------------------------------------------------------------- counters

    public int count(long block) {
        char[] extentCounters = counters[geometry.extentOf(block)];
        return extentCounters == null ? 0 : extentCounters[geometry.offsetInExtent(block)];
    }

    /**
     * Adds a reference to an allocated block.
     *
     * @throws RefcountSaturatedException if the counter is at its maximum (the caller copies instead)
     */
    public void increment(long block) {
        int count = count(block);
        if (count == 0) {
            throw new IllegalStateException("increment of free block " + block);
        }
        if (count >= maxRefcount) {
            throw new RefcountSaturatedException(block, maxRefcount);
        }
        set(block, count + 1);
    }

    /** Removes a reference; returns the new count (0 = the block is free again). */
    public int decrement(long block) {
        int count = count(block);
        if (count == 0) {
            throw new IllegalStateException("decrement of free block " + block);
        }
        set(block, count - 1);
        if (count == 1) {
            adjustFree(geometry.extentOf(block), 1);
        }
        return count - 1;
    }

    /**
     * Removes a reference like {@link #decrement}, but a block losing its last one stays allocated with
     * its counter at 1 (design note 6). Returns the references left; 0 means the caller now holds the
     * block and must give it back with {@link #freeHeld}.
     */
    public int decrementHolding(long block) {
        int count = count(block);
        if (count == 0) {
            throw new IllegalStateException("decrement of free block " + block);
        }
        if (count > 1) {
            set(block, count - 1);
        }
        return count - 1;
    }

    /**
     * Adds a reference to the block of every pointer in {@code pointers[from..]} that is not a hole, as
     * {@link #increment} would one by one (a node copied for copy-on-write shares all its children, up to 512):
     * the extent and the dirty counter block are looked up once per run of blocks in the same extent. Stops at
     * the first block whose counter is saturated, without changing it, and returns its index (the caller
     * copies that block instead and goes on after it); returns {@code pointers.length} when all are done.
     *
     * @throws IllegalStateException at a free block (the blocks before it keep their new references)
     */
    public int incrementPointers(long[] pointers, int from) {
        CounterRun run = new CounterRun();
        for (int i = from; i < pointers.length; i++) {
            long block = pointers[i] & Pointer.BLOCK_MASK;
            if (block == 0) {
                continue; // a hole
            }
            int offset = run.seat(block);
            int count = run.counters == null ? 0 : run.counters[offset];
            if (count == 0) {
                throw new IllegalStateException("increment of free block " + block);
            }
            if (count >= maxRefcount) {
                return i;
            }
            run.set(offset, count + 1);
        }
        return pointers.length;
    }

    /**
     * Removes a reference from the block of every pointer in {@code pointers} that is not a hole, as
     * {@link #decrementHolding} would one by one (a freed node releases all its children). Blocks that lose
     * their last reference stay held (counter 1) and are written to {@code unreferenced}, which must have room
     * for {@code pointers.length}; returns how many were written there.
     *
     * @throws IllegalStateException at a free block (the blocks before it keep their new counts)
     */
    public int decrementHoldingPointers(long[] pointers, long[] unreferenced) {
        CounterRun run = new CounterRun();
        int found = 0;
        for (long pointer : pointers) {
            long block = pointer & Pointer.BLOCK_MASK;
            if (block == 0) {
                continue; // a hole
            }
            int offset = run.seat(block);
            int count = run.counters == null ? 0 : run.counters[offset];
            if (count == 0) {
                throw new IllegalStateException("decrement of free block " + block);
            }
            if (count == 1) {
                unreferenced[found++] = block; // held: the counter stays 1 (design note 6)
            } else {
                run.set(offset, count - 1);
            }
        }
        return found;
    }

    /**
     * The counters of the extent the last block visited lies in, for updates of many blocks in one pass: the
     * extent is looked up only when a block leaves it, and a counter block is marked dirty once per run.
     */
    private final class CounterRun {
        private long start = -1;
        private char[] counters;
        private BitSet dirty;
        private int lastCounterBlock = -1;

        /** Moves to the extent of {@code block} if needed; returns the block's offset in it. */
        int seat(long block) {
            long offset = block - start;
            if (start < 0 || offset < 0 || offset >= geometry.extentBlocks()) {
                int extent = geometry.extentOf(block);
                start = geometry.extentStart(extent);
                offset = block - start;
                counters = SpaceMap.this.counters[extent];
                dirty = dirtyCounterBlocks[extent];
                lastCounterBlock = -1;
            }
            return (int) offset;
        }

        void set(int offset, int count) {
            counters[offset] = (char) count;
            int counterBlock = offset / Layout.COUNTERS_PER_REFCOUNT_BLOCK;
            if (counterBlock != lastCounterBlock) {
                dirty.set(counterBlock);
                lastCounterBlock = counterBlock;
            }
        }
    }

    /** Frees a block held by {@link #decrementHolding}: its counter goes from 1 to 0. */
    public void freeHeld(long block) {
        if (count(block) != 1) {
            throw new IllegalStateException("block " + block + " is not held: its counter is " + count(block));
        }
        set(block, 0);
        adjustFree(geometry.extentOf(block), 1);
    }

    /**
     * A copy of the counters of {@code extent}, indexed by offset in the extent, or null if the extent
     * is free (the checkpoint of the allocation maps that the garbage collector scans against).
     */
    public char[] copyCounters(int extent) {
        char[] extentCounters = counters[extent];
        return extentCounters == null ? null : extentCounters.clone();
    }

    /** Overwrites a counter (the checker's repair and the garbage collector use this). */
    public void repairCount(long block, int count) {
        int old = count(block);
        if (old == count) {
            return;
        }
        set(block, count);
        int extent = geometry.extentOf(block);
        if (old == 0) {
            adjustFree(extent, -1);
        } else if (count == 0) {
            adjustFree(extent, 1);
        }
    }

    private void set(long block, int count) {
        int extent = geometry.extentOf(block);
        int offset = geometry.offsetInExtent(block);
        char[] extentCounters = counters[extent];
        if (extentCounters == null) {
            throw new IllegalStateException("block " + block + " is in free extent " + extent);
        }
        extentCounters[offset] = (char) count;
        dirtyCounterBlocks[extent].set(offset / Layout.COUNTERS_PER_REFCOUNT_BLOCK);
    }

    // ---------------------------------------------------------------- allocation

    /**
     * Allocates a free block for {@code purpose}, with a count of 1. Next-fit from the last
     * allocation, so sequential writes land on sequential blocks.
     *
     * @throws StorageException NO_SPACE if no extent of that purpose has a free block and none is left to claim
     */
    public long allocate(Purpose purpose) {
        if (purpose == Purpose.METADATA && !commitAllocations
                && allocatableBlocks(Purpose.METADATA) <= metadataReserveBlocks) {
            throw new StorageException(StorageException.Code.NO_SPACE, "the store is full: only the "
                    + metadataReserveBlocks + " metadata blocks kept for commits are left");
        }
        int p = purpose.ordinal();
        int extentCount = extents.length;
        for (int step = 0; step <= extentCount; step++) {
            int extent = (cursorExtent[p] + step) % extentCount;
            if (!serves(extent, purpose) || freeBlocks[extent] == 0) {
                continue;
            }
            int start = step == 0 ? cursorOffset[p] : 0;
            int offset = findFree(counters[extent], start);
            if (offset < 0 && start > 0) {
                offset = findFree(counters[extent], 0);
            }
            if (offset >= 0) {
                return take(extent, offset, p);
            }
        }
        int claimed = claimFreeExtent(purpose);
        if (claimed < 0) {
            throw new StorageException(StorageException.Code.NO_SPACE, "no free " + purpose.name().toLowerCase()
                    + " block left in the store (" + geometry.storeBlocks() + " blocks)");
        }
        return take(claimed, findFree(counters[claimed], 0), p);
    }

    private long take(int extent, int offset, int purposeIndex) {
        counters[extent][offset] = 1;
        dirtyCounterBlocks[extent].set(offset / Layout.COUNTERS_PER_REFCOUNT_BLOCK);
        adjustFree(extent, -1);
        cursorExtent[purposeIndex] = extent;
        cursorOffset[purposeIndex] = offset + 1;
        return geometry.extentStart(extent) + offset;
    }

    private void adjustFree(int extent, int delta) {
        freeBlocks[extent] += delta;
        freeByType[extents[extent].type().ordinal()] += delta;
    }

    private static int findFree(char[] extentCounters, int from) {
        for (int i = from; i < extentCounters.length; i++) {
            if (extentCounters[i] == 0) {
                return i;
            }
        }
        return -1;
    }

    private boolean serves(int extent, Purpose purpose) {
        ExtentRecord.Type type = extents[extent].type();
        return switch (purpose) {
            case METADATA -> type.holdsMetadata();
            case DATA -> type == ExtentRecord.Type.DATA;
        };
    }

    private int claimFreeExtent(Purpose purpose) {
        if (purpose == Purpose.DATA
                && allocatableBlocks(Purpose.METADATA) - geometry.extentBlocks() < metadataReserveBlocks
                && allocatableBlocks(Purpose.METADATA) - unclaimedBlocks < metadataReserveBlocks) {
            return -1; // the last free extents stay available to metadata
        }
        for (int extent = 0; extent < extents.length; extent++) {
            if (extents[extent].type() == ExtentRecord.Type.FREE) {
                claim(extent, purpose == Purpose.DATA ? ExtentRecord.Type.DATA : ExtentRecord.Type.METADATA);
                return extent;
            }
        }
        return -1;
    }

    private void claim(int extent, ExtentRecord.Type type) {
        extents[extent] = new ExtentRecord(type, 0, 0);
        dirtyExtentRecords.set(extent);
        char[] extentCounters = new char[geometry.extentBlocks()];
        int reserved = geometry.reservedBlocks(extent);
        for (int i = 0; i < reserved; i++) {
            extentCounters[i] = 1;
        }
        counters[extent] = extentCounters;
        freeBlocks[extent] = extentCounters.length - reserved;
        unclaimedBlocks -= extentCounters.length - reserved;
        freeByType[type.ordinal()] += extentCounters.length - reserved;
        int counterBlocks = geometry.counterBlocksPerExtent();
        BitSet dirty = new BitSet(counterBlocks);
        dirty.set(0, counterBlocks);
        dirtyCounterBlocks[extent] = dirty;
        byte[] slots = new byte[counterBlocks];
        java.util.Arrays.fill(slots, (byte) -1);
        durableSlot[extent] = slots;
    }

    // ---------------------------------------------------------------- catalogue

    public int extentCount() {
        return extents.length;
    }

    public ExtentRecord extent(int extent) {
        return extents[extent];
    }

    public boolean hasDirtyExtentRecords() {
        return !dirtyExtentRecords.isEmpty();
    }

    public boolean hasDirtyCounters() {
        for (BitSet dirty : dirtyCounterBlocks) {
            if (dirty != null && !dirty.isEmpty()) {
                return true;
            }
        }
        return false;
    }

    /** Extent catalogue entries changed since the last call; clears the set. */
    public BitSet takeDirtyExtentRecords() {
        BitSet dirty = (BitSet) dirtyExtentRecords.clone();
        dirtyExtentRecords.clear();
        return dirty;
    }

    public void setExtentHolder(int extent, int holder, long fencingToken) {
        ExtentRecord old = extents[extent];
        extents[extent] = new ExtentRecord(old.type(), holder, fencingToken);
        dirtyExtentRecords.set(extent);
    }

    // ---------------------------------------------------------------- commit

    /**
     * Captures every dirty counter block (a copy of its counters, encoded later) stamped {@code generation},
     * for the slot that is not durable. A counter block never written before (fresh extent) also gets its other slot
     * zeroed so no stale image can ever be taken for it.
     */
    public List<CounterWrite> captureDirty(long generation) {
        List<CounterWrite> writes = new ArrayList<>();
        for (int extent = 0; extent < extents.length; extent++) {
            BitSet dirty = dirtyCounterBlocks[extent];
            if (dirty == null || dirty.isEmpty()) {
                continue;
            }
            for (int i = dirty.nextSetBit(0); i >= 0; i = dirty.nextSetBit(i + 1)) {
                int durable = durableSlot[extent][i];
                int slot = durable == 0 ? 1 : 0;
                long block = geometry.counterSlotBlock(extent, i, slot);
                int first = i * Layout.COUNTERS_PER_REFCOUNT_BLOCK;
                char[] copy = java.util.Arrays.copyOfRange(counters[extent], first,
                        Math.min(first + Layout.COUNTERS_PER_REFCOUNT_BLOCK, counters[extent].length));
                writes.add(new CounterWrite(extent, i, slot, block, copy, generation));
                if (durable < 0) {
                    long other = geometry.counterSlotBlock(extent, i, 1 - slot);
                    writes.add(new CounterWrite(extent, i, -1, other, null, generation));
                }
            }
            dirty.clear();
        }
        return writes;
    }

    /** The superblock naming the generation of {@code writes} is durable: their slots are now the current ones. */
    public void markDurable(List<CounterWrite> writes) {
        for (CounterWrite write : writes) {
            if (write.slot() >= 0) {
                durableSlot[write.extent()][write.counterBlock()] = (byte) write.slot();
            }
        }
    }

    // ---------------------------------------------------------------- statistics

    public long freeBlocks(ExtentRecord.Type type) {
        long free = 0;
        for (int extent = 0; extent < extents.length; extent++) {
            if (extents[extent].type() == type) {
                free += freeBlocks[extent];
            }
        }
        return free;
    }

    public long blocksInExtents(ExtentRecord.Type type) {
        long blocks = 0;
        for (ExtentRecord record : extents) {
            if (record.type() == type) {
                blocks += geometry.extentBlocks();
            }
        }
        return blocks;
    }

    /** Blocks that could still be allocated for data: free data blocks plus every free extent. */
    public long allocatableBlocks(Purpose purpose) {
        return unclaimedBlocks + switch (purpose) {
            case METADATA -> freeByType[ExtentRecord.Type.METADATA.ordinal()] + freeByType[ExtentRecord.Type.SYSTEM.ordinal()];
            case DATA -> freeByType[ExtentRecord.Type.DATA.ordinal()];
        };
    }

    /** Visits every block with a non-zero counter that is not reserved by the format. */
    public void forEachAllocated(BlockVisitor visitor) {
        for (int extent = 0; extent < extents.length; extent++) {
            char[] extentCounters = counters[extent];
            if (extentCounters == null) {
                continue;
            }
            int reserved = geometry.reservedBlocks(extent);
            for (int offset = reserved; offset < extentCounters.length; offset++) {
                if (extentCounters[offset] != 0) {
                    visitor.visit(geometry.extentStart(extent) + offset, extentCounters[offset], extents[extent].type());
                }
            }
        }
    }

    @FunctionalInterface
    public interface BlockVisitor {
        void visit(long block, int count, ExtentRecord.Type extentType);
    }

    /**
     * Recomputes the running totals from the counters and compares (STYLE 5: the checker calls this,
     * so every storage test that ends with a check verifies them).
     *
     * @throws IllegalStateException naming the first total that disagrees
     */
    public void checkInvariants() {
        long[] byType = new long[freeByType.length];
        long unclaimed = 0;
        for (int extent = 0; extent < extents.length; extent++) {
            ExtentRecord.Type type = extents[extent].type();
            if (type == ExtentRecord.Type.FREE) {
                unclaimed += geometry.extentBlocks() - geometry.reservedBlocks(extent);
                continue;
            }
            char[] extentCounters = counters[extent];
            if (extentCounters == null) {
                continue; // damaged at open: nothing to count
            }
            int free = 0;
            for (char count : extentCounters) {
                if (count == 0) {
                    free++;
                }
            }
            if (free != freeBlocks[extent]) {
                throw new IllegalStateException("extent " + extent + " has " + free + " free blocks, the total says "
                        + freeBlocks[extent]);
            }
            byType[type.ordinal()] += free;
        }
        if (unclaimed != unclaimedBlocks || !java.util.Arrays.equals(byType, freeByType)) {
            throw new IllegalStateException("free totals disagree: unclaimed " + unclaimed + " vs " + unclaimedBlocks
                    + ", by type " + java.util.Arrays.toString(byType) + " vs " + java.util.Arrays.toString(freeByType));
        }
    }

    public boolean isReserved(long block) {
        return geometry.offsetInExtent(block) < geometry.reservedBlocks(geometry.extentOf(block));
    }
}
