package io.cairn.space;

import io.cairn.tree.TreeSpace;

/**
 * Finds the leaf entries that differ between two radix trees of the same height by walking both at
 * once. Where both trees hold the same pointer, the subtree behind it is shared and therefore equal,
 * so it is skipped without being read: the cost is proportional to the number of changed entries
 * (times the height), not to the size of the disk.
 *
 * <p>Why equal pointers mean equal content, although a VDI may overwrite data in place: a write goes
 * in place only when the root, every node on the path and the data block all have a count of 1
 * ({@link TreeSpace#forEachMappedWithOwnership}). A node both trees reach through different parents has at least
 * two references, so nothing beneath it is ever overwritten in place while both trees exist.
 *
 * <p>Not thread-safe; use inside {@link io.cairn.volume.Store#inspect}, where nothing changes, or on the pinned
 * trees of a {@link io.cairn.volume.SpaceCheckpoint}.
 */
public final class ChangeWalk {

    /** Receives one changed leaf entry: its index and the block of both trees (0 = hole). */
    @FunctionalInterface
    public interface ChangeVisitor {
        void changed(long index, long olderBlock, long newerBlock);
    }

    private final TreeSpace.NodeSource nodes;
    private long nodesVisited;

    public ChangeWalk(TreeSpace trees) {
        this(trees.nodes());
    }

    /** A walk over trees read from {@code nodes} (a checkpoint's pinned trees: {@link TreeView}). */
    public ChangeWalk(TreeSpace.NodeSource nodes) {
        this.nodes = nodes;
    }

    /** Radix nodes read by this walk so far (both trees together). */
    public long nodesVisited() {
        return nodesVisited;
    }

    /**
     * Visits, in index order, every leaf entry in [fromIndex, toIndex) whose pointer differs between the
     * tree at {@code olderRoot} and the tree at {@code newerRoot} (either root may be 0: an empty tree).
     */
    public void walk(long olderRoot, long newerRoot, int height, long fromIndex, long toIndex, ChangeVisitor visitor) {
        nodesVisited += TreeSpace.forEachDifference(nodes, olderRoot, newerRoot, height, fromIndex, toIndex, visitor::changed);
    }
}
