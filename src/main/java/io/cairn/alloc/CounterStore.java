package io.cairn.alloc;

import java.util.BitSet;

/**
 * Where {@link SpaceMap} keeps the live counters, the free count of each extent, the counter blocks
 * changed since a commit took them, and each counter block's durable slot: in this process
 * ({@link LocalCounters}) or in memory shared by the processes serving one store ({@link SharedCounters}).
 * Implementations keep the free count and dirty bits in step with every change they make.
 */
interface CounterStore {

    int count(long block);

    /** Adds a reference; the new count. Throws {@link RefcountSaturatedException} at {@code maxRefcount}. */
    int increment(long block, int maxRefcount);

    /** Removes a reference; the new count. */
    int decrement(long block);

    /** Sets a counter outright; the old value. */
    int set(long block, int count);

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
