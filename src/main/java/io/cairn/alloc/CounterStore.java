package io.cairn.alloc;

import io.cairn.format.Pointer;

import java.util.BitSet;

/**
 * Where {@link SpaceMap} keeps the live counters, the free count of each extent, the counter blocks
 * changed since a commit took them, and each counter block's durable slot: in this process
 * ({@link LocalCounters}) or in memory shared by the processes serving one store ({@link SharedCounters}).
 * Implementations keep the free count and dirty bits in step with every change they make, and make every
 * counter change atomically: two counter passes run without the store's metadata lock (SpaceMap design note 6).
 */
interface CounterStore {

    int count(long block);

    /** Adds a reference; the new count. Throws {@link RefcountSaturatedException} at {@code maxRefcount}. */
    int increment(long block, int maxRefcount);

    /** Removes a reference; the new count. */
    int decrement(long block);

    /** Removes a reference unless it is the last: a counter at 1 stays 1 (the block is then held); the references left. */
    int decrementHolding(long block);

    /**
     * {@link #increment} for the block of every pointer in {@code pointers[from..]} that is not a hole; stops
     * at the first saturated counter, unchanged, and returns its index ({@code pointers.length} when all are done).
     */
    default int incrementPointers(long[] pointers, int from, int maxRefcount) {
        for (int i = from; i < pointers.length; i++) {
            long block = pointers[i] & Pointer.BLOCK_MASK;
            if (block == 0) {
                continue; // a hole
            }
            try {
                increment(block, maxRefcount);
            } catch (RefcountSaturatedException saturated) {
                return i;
            }
        }
        return pointers.length;
    }

    /**
     * {@link #decrementHolding} for the block of every pointer in {@code pointers} that is not a hole; the
     * blocks now held go to {@code unreferenced}; returns how many.
     */
    default int decrementHoldingPointers(long[] pointers, long[] unreferenced) {
        int found = 0;
        for (long pointer : pointers) {
            long block = pointer & Pointer.BLOCK_MASK;
            if (block != 0 && decrementHolding(block) == 0) {
                unreferenced[found++] = block;
            }
        }
        return found;
    }

    /** Sets a counter outright; the old value. */
    int set(long block, int count);

    /**
     * Sets a counter to {@code updated} only if it is {@code expected} now, in one atomic step (the garbage
     * collector lowers counters that other processes change at the same time); false if it was not.
     */
    boolean compareAndSet(long block, int expected, int updated);

    /**
     * Sets every counter of {@code extent} to {@code extentCounters} (as read from its durable slots, indexed by
     * offset in the extent), with the matching free count and no dirty counter block; returns the free count.
     */
    default int load(int extent, char[] extentCounters) {
        long start = geometry().extentStart(extent);
        int free = 0;
        for (int offset = 0; offset < extentCounters.length; offset++) {
            if (extentCounters[offset] == 0) {
                free++;
            } else {
                set(start + offset, extentCounters[offset]);
            }
        }
        setFreeBlocks(extent, free);
        takeDirty(extent);
        return free;
    }

    io.cairn.format.StoreGeometry geometry();

    /** Takes a free block in [fromBlock, toBlock) scanning from startBlock and wrapping; -1 if none. */
    long allocate(long fromBlock, long toBlock, long startBlock);

    long freeBlocks(int extent);

    void setFreeBlocks(int extent, long free);

    /** Clears and returns the counter blocks of {@code extent} changed since the last call. */
    BitSet takeDirty(int extent);

    void markDirty(int extent, int counterBlock);

    /** Whether any counter block is dirty. */
    boolean anyDirty();

    void copyInto(long firstBlock, int count, char[] target, int at);

    /** 0 or 1, or -1 if neither slot of the counter block is durable. */
    int durableSlot(int extent, int counterBlock);

    void setDurableSlot(int extent, int counterBlock, int slot);
}
