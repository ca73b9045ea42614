package io.cairn.alloc;

import io.cairn.format.Layout;
import io.cairn.format.Pointer;
import io.cairn.format.StoreGeometry;

import java.util.BitSet;

/**
 * The counters of a store served by one process: plain arrays per extent, allocated when the extent is
 * first held. Not thread-safe (the store calls it under its metadata lock).
 */
final class LocalCounters implements CounterStore {

    private final StoreGeometry geometry;
    /** Counters per held extent; null for extents never held. */
    private final char[][] counters;
    private final long[] freeBlocks;
    private final BitSet[] dirty;
    /** Per extent and counter block: the durable slot (0 or 1), or -1. */
    private final byte[][] durableSlots;

    LocalCounters(StoreGeometry geometry) {
        this.geometry = geometry;
        int extents = geometry.extentCount();
        this.counters = new char[extents][];
        this.freeBlocks = new long[extents];
        this.dirty = new BitSet[extents];
        this.durableSlots = new byte[extents][];
    }

    /** Gives {@code extent} counters (all 0), no durable slots and no dirty blocks, if it has none yet. */
    void open(int extent) {
        if (counters[extent] == null) {
            counters[extent] = new char[geometry.extentBlocks()];
            dirty[extent] = new BitSet(geometry.counterBlocksPerExtent());
            byte[] slots = new byte[geometry.counterBlocksPerExtent()];
            java.util.Arrays.fill(slots, (byte) -1);
            durableSlots[extent] = slots;
            freeBlocks[extent] = geometry.extentBlocks();
        }
    }

    @Override
    public StoreGeometry geometry() {
        return geometry;
    }

    /** Adopts the array as it is: no per-counter work at open. */
    @Override
    public int load(int extent, char[] extentCounters) {
        open(extent);
        counters[extent] = extentCounters;
        int free = 0;
        for (char count : extentCounters) {
            if (count == 0) {
                free++;
            }
        }
        freeBlocks[extent] = free;
        dirty[extent].clear();
        return free;
    }

    @Override
    public int count(long block) {
        char[] extentCounters = counters[geometry.extentOf(block)];
        return extentCounters == null ? 0 : extentCounters[geometry.offsetInExtent(block)];
    }

    @Override
    public int increment(long block, int maxRefcount) {
        int count = count(block);
        if (count == 0) {
            throw new IllegalStateException("increment of free block " + block);
        }
        if (count >= maxRefcount) {
            throw new RefcountSaturatedException(block, maxRefcount);
        }
        store(block, count + 1);
        return count + 1;
    }

    @Override
    public int decrement(long block) {
        int count = count(block);
        if (count == 0) {
            throw new IllegalStateException("decrement of free block " + block);
        }
        store(block, count - 1);
        if (count == 1) {
            freeBlocks[geometry.extentOf(block)]++;
        }
        return count - 1;
    }

    @Override
    public int decrementHolding(long block) {
        int count = count(block);
        if (count == 0) {
            throw new IllegalStateException("decrement of free block " + block);
        }
        if (count > 1) {
            store(block, count - 1);
        }
        return count - 1;
    }

    /** One pass: the extent and its dirty bits are looked up once per run of blocks in the same extent. */
    @Override
    public int incrementPointers(long[] pointers, int from, int maxRefcount) {
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

    /** One pass, as {@link #incrementPointers}. */
    @Override
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
                unreferenced[found++] = block; // held: the counter stays 1
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
                counters = LocalCounters.this.counters[extent];
                dirty = LocalCounters.this.dirty[extent];
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

    @Override
    public int set(long block, int count) {
        int old = count(block);
        if (old != count) {
            store(block, count);
            int extent = geometry.extentOf(block);
            if (old == 0) {
                freeBlocks[extent]--;
            } else if (count == 0) {
                freeBlocks[extent]++;
            }
        }
        return old;
    }

    @Override
    public boolean compareAndSet(long block, int expected, int updated) {
        if (count(block) != expected) {
            return false;
        }
        set(block, updated);
        return true;
    }

    private void store(long block, int count) {
        int extent = geometry.extentOf(block);
        char[] extentCounters = counters[extent];
        if (extentCounters == null) {
            throw new IllegalStateException("block " + block + " is in free extent " + extent);
        }
        int offset = geometry.offsetInExtent(block);
        extentCounters[offset] = (char) count;
        dirty[extent].set(offset / Layout.COUNTERS_PER_REFCOUNT_BLOCK);
    }

    @Override
    public long allocate(long fromBlock, long toBlock, long startBlock) {
        int extent = geometry.extentOf(fromBlock);
        char[] extentCounters = counters[extent];
        if (extentCounters == null || freeBlocks[extent] == 0) {
            return -1;
        }
        long base = geometry.extentStart(extent);
        int offset = findFree(extentCounters, (int) (startBlock - base), (int) (toBlock - base));
        if (offset < 0) {
            offset = findFree(extentCounters, (int) (fromBlock - base), (int) (startBlock - base));
        }
        if (offset < 0) {
            return -1;
        }
        extentCounters[offset] = 1;
        dirty[extent].set(offset / Layout.COUNTERS_PER_REFCOUNT_BLOCK);
        freeBlocks[extent]--;
        return base + offset;
    }

    private static int findFree(char[] extentCounters, int from, int to) {
        for (int i = from; i < to; i++) {
            if (extentCounters[i] == 0) {
                return i;
            }
        }
        return -1;
    }

    @Override
    public long freeBlocks(int extent) {
        return freeBlocks[extent];
    }

    @Override
    public void setFreeBlocks(int extent, long free) {
        freeBlocks[extent] = free;
    }

    @Override
    public BitSet takeDirty(int extent) {
        BitSet extentDirty = dirty[extent];
        if (extentDirty == null || extentDirty.isEmpty()) {
            return new BitSet();
        }
        BitSet taken = (BitSet) extentDirty.clone();
        extentDirty.clear();
        return taken;
    }

    @Override
    public void markDirty(int extent, int counterBlock) {
        dirty[extent].set(counterBlock);
    }

    @Override
    public boolean anyDirty() {
        for (BitSet extentDirty : dirty) {
            if (extentDirty != null && !extentDirty.isEmpty()) {
                return true;
            }
        }
        return false;
    }

    @Override
    public void copyInto(long firstBlock, int count, char[] target, int at) {
        char[] extentCounters = counters[geometry.extentOf(firstBlock)];
        if (extentCounters == null) {
            java.util.Arrays.fill(target, at, at + count, (char) 0);
        } else {
            System.arraycopy(extentCounters, geometry.offsetInExtent(firstBlock), target, at, count);
        }
    }

    @Override
    public int durableSlot(int extent, int counterBlock) {
        return durableSlots[extent][counterBlock];
    }

    @Override
    public void setDurableSlot(int extent, int counterBlock, int slot) {
        durableSlots[extent][counterBlock] = (byte) slot;
    }
}
