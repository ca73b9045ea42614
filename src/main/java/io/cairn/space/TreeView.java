package io.cairn.space;

import io.cairn.tree.TreeSpace;
import io.cairn.volume.SpaceCheckpoint;

import java.util.function.LongToIntFunction;

/**
 * What a space report reads: radix nodes and reference counters. Either the store's own, valid inside its
 * exclusive hold ({@link io.cairn.volume.Store#inspect}; a store served alone), or those of a
 * {@link SpaceCheckpoint} (a store served by several nodes: pinned trees read from the device, counters copied
 * at the checkpoint), valid while the nodes go on serving.
 */
public interface TreeView extends TreeSpace.NodeSource {

    /** The reference counter of {@code block} (0 = free). */
    int count(long block);

    static TreeView live(TreeSpace trees) {
        return new Reading(trees.nodes(), trees.space()::count);
    }

    static TreeView of(SpaceCheckpoint<?> checkpoint) {
        return new Reading(checkpoint.nodes(), checkpoint::count);
    }

    /** Nodes from one place, counters from another. */
    record Reading(TreeSpace.NodeSource nodes, LongToIntFunction counts) implements TreeView {
        @Override
        public long[] pointers(long block, int level) {
            return nodes.pointers(block, level);
        }

        @Override
        public int count(long block) {
            return counts.applyAsInt(block);
        }
    }
}
