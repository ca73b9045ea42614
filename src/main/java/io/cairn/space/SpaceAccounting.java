package io.cairn.space;

import io.cairn.format.Layout;
import io.cairn.format.Pointer;
import io.cairn.tree.TreeSpace;

import java.util.HashMap;
import java.util.Map;

/**
 * What a tree (a VDI's live root or a snapshot's root) references, and what it alone references.
 *
 * <p>Design notes.
 * <ol>
 *   <li>Mapped: every radix node and data block reachable from the root.</li>
 *   <li>Exclusive: the blocks that deleting this root alone frees. Deleting releases the root; a block
 *       whose count drops to 0 is freed and releases its children in turn (TreeSpace.applyReleases).
 *       So a block is freed iff the root, every node on its path and the block itself have a count of 1
 *       (the same rule as {@link TreeSpace#forEachMappedWithOwnership}). Counts are exact only with no removal
 *       pending, i.e. right after a commit.</li>
 *   <li>Shared nodes (count above 1) are never exclusive, and their subtree totals are the same from
 *       every root, so they are remembered: a report over many snapshots of one disk reads each
 *       distinct node once.</li>
 *   <li>Not thread-safe; use inside {@link io.cairn.volume.Store#inspect}, where nothing changes, or over a
 *       {@link io.cairn.volume.SpaceCheckpoint} (its counters were copied with no removal pending).</li>
 * </ol>
 */
public final class SpaceAccounting {

    /** Blocks a root references and blocks only it references, split into data and radix nodes. */
    public record Usage(long mappedDataBlocks, long mappedNodeBlocks, long exclusiveDataBlocks, long exclusiveNodeBlocks) {

        public long mappedBytes() {
            return (mappedDataBlocks + mappedNodeBlocks) * Layout.BLOCK_BYTES;
        }

        public long exclusiveBytes() {
            return (exclusiveDataBlocks + exclusiveNodeBlocks) * Layout.BLOCK_BYTES;
        }

        public long sharedBytes() {
            return mappedBytes() - exclusiveBytes();
        }
    }

    private final TreeView view;
    /** Subtree totals {data blocks, node blocks} of shared nodes already walked. */
    private final Map<Long, long[]> sharedSubtrees = new HashMap<>();
    private long nodesVisited;
    private long exclusiveData;
    private long exclusiveNodes;

    public SpaceAccounting(TreeSpace trees) {
        this(TreeView.live(trees));
    }

    /** Accounting over {@code view}: the store's own trees and counters, or a checkpoint's. */
    public SpaceAccounting(TreeView view) {
        this.view = view;
    }

    /** Radix nodes read so far, over every root measured. */
    public long nodesVisited() {
        return nodesVisited;
    }

    /** Usage of the tree at {@code root} (0 = an empty tree) of {@code height}. */
    public Usage usageOf(long root, int height) {
        exclusiveData = 0;
        exclusiveNodes = 0;
        if (root == 0) {
            return new Usage(0, 0, 0, 0);
        }
        long[] mapped = visit(root, height, true);
        return new Usage(mapped[0], mapped[1], exclusiveData, exclusiveNodes);
    }

    /** {data blocks, node blocks} of the subtree at {@code block}; counts exclusive blocks on the way. */
    private long[] visit(long block, int level, boolean exclusivePath) {
        int count = view.count(block);
        if (count > 1) {
            long[] known = sharedSubtrees.get(block);
            if (known != null) {
                return known;
            }
        }
        boolean exclusive = exclusivePath && count == 1;
        if (exclusive) {
            exclusiveNodes++;
        }
        long[] pointers = view.pointers(block, level);
        nodesVisited++;
        long data = 0;
        long nodes = 1;
        for (int slot = 0; slot < Layout.POINTERS_PER_NODE; slot++) {
            long pointer = pointers[slot];
            if (Pointer.isHole(pointer)) {
                continue;
            }
            long child = Pointer.blockOf(pointer);
            if (level == 1) {
                data++;
                if (exclusive && view.count(child) == 1) {
                    exclusiveData++;
                }
            } else {
                long[] below = visit(child, level - 1, exclusive);
                data += below[0];
                nodes += below[1];
            }
        }
        long[] totals = {data, nodes};
        if (count > 1) {
            sharedSubtrees.put(block, totals);
        }
        return totals;
    }
}
