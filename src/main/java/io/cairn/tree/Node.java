package io.cairn.tree;

import io.cairn.format.Layout;

/**
 * A radix node in memory: its block, its level (1 = leaf node, whose pointers name data blocks or
 * table pages), and its 512 pointers. A node whose generation is the open transaction's may be
 * changed in place; any other node is immutable and is shadowed before a change.
 */
public final class Node {

    final long block;
    final int level;
    final long[] pointers;
    /** Changes only when a shared store moves the open transaction to a later generation ({@link TreeSpace#retarget}). */
    long generation;
    /** Not yet written to the device: the cache must keep it. */
    volatile boolean dirty;

    Node(long block, int level, long[] pointers, long generation, boolean dirty) {
        if (pointers.length != Layout.POINTERS_PER_NODE) {
            throw new IllegalArgumentException("node needs 512 pointers");
        }
        this.block = block;
        this.level = level;
        this.pointers = pointers;
        this.generation = generation;
        this.dirty = dirty;
    }

    public long block() {
        return block;
    }

    public int level() {
        return level;
    }

    public long generation() {
        return generation;
    }

    public long pointer(int slot) {
        return pointers[slot];
    }

    /** A copy of the pointers (callers must not see the live array). */
    public long[] pointersCopy() {
        return pointers.clone();
    }

    boolean isEmpty() {
        for (long pointer : pointers) {
            if (pointer != 0) {
                return false;
            }
        }
        return true;
    }
}
