package io.cairn.alloc;

import io.cairn.format.CounterEncoding;
import io.cairn.format.Pointer;
import io.cairn.format.StoreGeometry;

import java.util.BitSet;

/**
 * The counters of a store served by one process: plain arrays per extent, allocated when the extent is
 * first held. Every counter change is atomic (note 3); everything else is called under the store's metadata lock.
 *
 * <p>Design notes.
 * <ol>
 *   <li>Extents are a power of two blocks long, so a block's extent and offset are a shift and a mask
 *       ({@link StoreGeometry#extentOf}), with no division on the per-counter paths.</li>
 *   <li>The dirty counter blocks of every extent are bits of one flat array, {@link #dirtyWordsPerExtent}
 *       words per extent: marking a counter block dirty is one load (and a store only if the bit was clear),
 *       with no per-extent object in between. A node copied by copy-on-write names up to 512 blocks
 *       scattered over the whole store, so its counter updates change extent at nearly every pointer: a
 *       pass that looked the extent up only when it changed paid that lookup, a BitSet call and their
 *       dependent loads per pointer anyway.</li>
 *   <li>Counter changes are atomic: each is a compare-and-set of its 16-bit counter, and a dirty bit is set by an
 *       atomic OR after the counter changed. The store's reclaimer removes the references of a freed leaf's
 *       children ({@link #decrementHoldingPointers}) without the metadata lock (io.cairn.volume.Store design note
 *       3), while lock holders change other counters or the same ones; neither loses the other's change. What
 *       stays under the metadata lock: a counter reaching or leaving 0 (allocation, freeing a held block,
 *       {@link #decrement} and {@link #set}), so the free totals ({@code freeBlocks}), which only those change,
 *       need no atomics; opening extents; taking dirty bits for a commit (atomic too, so a concurrent change
 *       either is in the copy the commit takes after it or leaves its bit set for the next commit); durable
 *       slots. The reclaimer's changes never reach 0 (a last reference leaves the block held at 1) and never
 *       start from 0 (a referenced block is not free), so they cannot race with any of those.</li>
 * </ol>
 */
final class LocalCounters implements CounterStore {

    private static final java.lang.invoke.VarHandle COUNTER = java.lang.invoke.MethodHandles.arrayElementVarHandle(char[].class);
    private static final java.lang.invoke.VarHandle WORD = java.lang.invoke.MethodHandles.arrayElementVarHandle(long[].class);

    private final StoreGeometry geometry;
    /** The store's counter encoding: which counter block holds an offset's counter. */
    private final CounterEncoding encoding;
    /** Counters per held extent; null for extents never held. */
    private final char[][] counters;
    private final long[] freeBlocks;
    /** Per extent, {@link #dirtyWordsPerExtent} words whose bits are its counter blocks changed since taken (note 2). */
    private final long[] dirtyWords;
    private final int dirtyWordsPerExtent;
    /** Per extent and counter block: the durable slot (0 or 1), or -1. */
    private final byte[][] durableSlots;

    LocalCounters(StoreGeometry geometry) {
        this.geometry = geometry;
        this.encoding = geometry.counterEncoding();
        int extents = geometry.extentCount();
        this.counters = new char[extents][];
        this.freeBlocks = new long[extents];
        this.dirtyWordsPerExtent = (geometry.counterBlocksPerExtent() + Long.SIZE - 1) / Long.SIZE;
        this.dirtyWords = new long[Math.multiplyExact(extents, dirtyWordsPerExtent)];
        this.durableSlots = new byte[extents][];
    }

    /** Gives {@code extent} counters (all 0), no durable slots and no dirty blocks, if it has none yet. */
    void open(int extent) {
        if (counters[extent] == null) {
            counters[extent] = new char[geometry.extentBlocks()];
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
        java.util.Arrays.fill(dirtyWords, extent * dirtyWordsPerExtent, (extent + 1) * dirtyWordsPerExtent, 0L);
        return free;
    }

    @Override
    public int count(long block) {
        char[] extentCounters = counters[geometry.extentOf(block)];
        return extentCounters == null ? 0 : extentCounters[geometry.offsetInExtent(block)];
    }

    @Override
    public int increment(long block, int maxRefcount) {
        return add(block, 1, maxRefcount);
    }

    /** Under the metadata lock (note 3): may reach 0, which changes the free total. */
    @Override
    public int decrement(long block) {
        return add(block, -1, Integer.MAX_VALUE);
    }

    /** One reference more or fewer ({@code delta} 1 or -1), atomically (note 3); the new count. */
    private int add(long block, int delta, int maxRefcount) {
        int extent = geometry.extentOf(block);
        int offset = geometry.offsetInExtent(block);
        char[] extentCounters = heldCounters(block, extent);
        while (true) {
            int count = extentCounters[offset];
            if (count == 0) {
                throw new IllegalStateException((delta > 0 ? "increment" : "decrement") + " of free block " + block);
            }
            if (count >= maxRefcount) {
                throw new RefcountSaturatedException(block, maxRefcount);
            }
            if (COUNTER.compareAndSet(extentCounters, offset, (char) count, (char) (count + delta))) {
                markDirtyAt(extent, offset);
                if (count + delta == 0) {
                    freeBlocks[extent]++;
                }
                return count + delta;
            }
        }
    }

    @Override
    public int decrementHolding(long block) {
        int extent = geometry.extentOf(block);
        int offset = geometry.offsetInExtent(block);
        char[] extentCounters = counters[extent];
        int count = extentCounters == null ? 0 : extentCounters[offset];
        if (count == 0) {
            throw new IllegalStateException("decrement of free block " + block);
        }
        return count == 1 ? 0 : decrementAbove1(extentCounters, extent, offset);
    }

    /**
     * Takes a reference from a counter read above 1, atomically (note 3); a counter found at 1 by then stays 1
     * (held). Returns the references left.
     */
    private int decrementAbove1(char[] extentCounters, int extent, int offset) {
        while (true) {
            int count = extentCounters[offset];
            if (count <= 1) {
                return count - 1; // 0: the last reference; the block is held (a 0 here would be a free block)
            }
            if (COUNTER.compareAndSet(extentCounters, offset, (char) count, (char) (count - 1))) {
                markDirtyAt(extent, offset);
                return count - 1;
            }
        }
    }

    /** One pass, every pointer on its own (design notes 1 and 2). */
    @Override
    public int incrementPointers(long[] pointers, int from, int maxRefcount) {
        char[][] extents = counters;
        for (int i = from; i < pointers.length; i++) {
            long block = pointers[i] & Pointer.BLOCK_MASK;
            if (block == 0) {
                continue; // a hole
            }
            int extent = geometry.extentOf(block);
            int offset = geometry.offsetInExtent(block);
            char[] extentCounters = extents[extent];
            if (extentCounters == null) {
                throw new IllegalStateException("increment of free block " + block);
            }
            int count;
            do {
                count = extentCounters[offset];
                if (count == 0) {
                    throw new IllegalStateException("increment of free block " + block);
                }
                if (count >= maxRefcount) {
                    return i;
                }
            } while (!COUNTER.compareAndSet(extentCounters, offset, (char) count, (char) (count + 1)));
            markDirtyAt(extent, offset);
        }
        return pointers.length;
    }

    /** One pass, as {@link #incrementPointers}. */
    @Override
    public int decrementHoldingPointers(long[] pointers, long[] unreferenced) {
        char[][] extents = counters;
        int found = 0;
        for (long pointer : pointers) {
            long block = pointer & Pointer.BLOCK_MASK;
            if (block == 0) {
                continue; // a hole
            }
            int extent = geometry.extentOf(block);
            int offset = geometry.offsetInExtent(block);
            char[] extentCounters = extents[extent];
            int count = extentCounters == null ? 0 : extentCounters[offset];
            if (count == 0) {
                throw new IllegalStateException("decrement of free block " + block);
            }
            if (count == 1 || decrementAbove1(extentCounters, extent, offset) == 0) {
                unreferenced[found++] = block; // held: the counter stays 1
            }
        }
        return found;
    }

    /** Marks dirty the counter block holding the counter at {@code offset} of {@code extent} (design note 2). */
    private void markDirtyAt(int extent, int offset) {
        markDirty(extent, encoding.counterBlockOf(offset));
    }

    /** Under the metadata lock (note 3). */
    @Override
    public int set(long block, int count) {
        int extent = geometry.extentOf(block);
        int offset = geometry.offsetInExtent(block);
        int old = (char) COUNTER.getAndSet(heldCounters(block, extent), offset, (char) count);
        changed(extent, offset, old, count);
        return old;
    }

    /** After a counter went from {@code old} to {@code now} under the metadata lock: its dirty bit and free total. */
    private void changed(int extent, int offset, int old, int now) {
        if (old != now) {
            markDirtyAt(extent, offset);
            if (old == 0) {
                freeBlocks[extent]--;
            } else if (now == 0) {
                freeBlocks[extent]++;
            }
        }
    }

    /** Under the metadata lock (note 3). */
    @Override
    public boolean compareAndSet(long block, int expected, int updated) {
        int extent = geometry.extentOf(block);
        int offset = geometry.offsetInExtent(block);
        if (!COUNTER.compareAndSet(heldCounters(block, extent), offset, (char) expected, (char) updated)) {
            return false;
        }
        changed(extent, offset, expected, updated);
        return true;
    }

    private char[] heldCounters(long block, int extent) {
        char[] extentCounters = counters[extent];
        if (extentCounters == null) {
            throw new IllegalStateException("block " + block + " is in free extent " + extent);
        }
        return extentCounters;
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
        // A free counter changes only under the metadata lock (note 3), which the caller holds: no race to lose.
        COUNTER.setVolatile(extentCounters, offset, (char) 1);
        markDirtyAt(extent, offset);
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
        int first = extent * dirtyWordsPerExtent;
        long[] taken = new long[dirtyWordsPerExtent];
        for (int i = 0; i < taken.length; i++) {
            // Atomically (note 3): a bit set after this is a change the caller's copy may miss, left for the next commit.
            taken[i] = dirtyWords[first + i] == 0 ? 0 : (long) WORD.getAndSet(dirtyWords, first + i, 0L);
        }
        return BitSet.valueOf(taken);
    }

    /**
     * A load, and an atomic OR only if the bit was clear (note 3): a pass over a node's pointers marks the same few
     * words again and again. The load is volatile, so a bit a commit took meanwhile is seen as clear and set again.
     */
    @Override
    public void markDirty(int extent, int counterBlock) {
        int word = extent * dirtyWordsPerExtent + (counterBlock >>> 6);
        long bit = 1L << counterBlock; // the shift takes counterBlock modulo 64
        if (((long) WORD.getVolatile(dirtyWords, word) & bit) == 0) {
            WORD.getAndBitwiseOr(dirtyWords, word, bit);
        }
    }

    @Override
    public boolean anyDirty() {
        for (long bits : dirtyWords) {
            if (bits != 0) {
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
