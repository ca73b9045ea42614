package io.cairn.space;

import io.cairn.format.Layout;
import io.cairn.format.Pointer;
import io.cairn.tree.Node;
import io.cairn.tree.RootRef;
import io.cairn.tree.TreeSpace;
import io.cairn.volume.Store;

import java.util.Map;
import java.util.Set;

/**
 * Exact counterpart of {@link SketchedSpace}: walks the trees. held = distinct data blocks reachable from
 * the selected snapshots; freed = those of them that no other live snapshot and no live disk reaches.
 * Each distinct radix node is read once per side, however many trees share it, so the cost is the
 * distinct metadata of the store, not snapshots × disk size. Memory: two bits per store block per side.
 */
public final class ExactSpace {

    private ExactSpace() {
    }

    /** Exact counts in data blocks. */
    public record Counts(long heldBlocks, long freedBlocks) {
    }

    public static Counts count(Store store, Set<Long> selectedSnapshots) {
        return store.inspect(internals -> {
            long blocks = internals.space().geometry().storeBlocks();
            Bitmap held = new Bitmap(blocks);
            Bitmap heldNodes = new Bitmap(blocks);
            Bitmap others = new Bitmap(blocks);
            Bitmap otherNodes = new Bitmap(blocks);
            TreeSpace trees = internals.trees();
            for (Map.Entry<Long, RootRef> snapshot : internals.snapshotRoots().entrySet()) {
                if (selectedSnapshots.contains(snapshot.getKey())) {
                    walk(trees, snapshot.getValue().root(), snapshot.getValue().height(), held, heldNodes);
                } else {
                    walk(trees, snapshot.getValue().root(), snapshot.getValue().height(), others, otherNodes);
                }
            }
            for (RootRef disk : internals.vdiRoots().values()) {
                walk(trees, disk.root(), disk.height(), others, otherNodes);
            }
            return new Counts(held.cardinality(), held.cardinalityWithout(others));
        });
    }

    private static void walk(TreeSpace trees, long block, int level, Bitmap data, Bitmap visitedNodes) {
        if (block == 0 || !visitedNodes.set(block)) {
            return;
        }
        Node node = trees.node(block, level);
        for (int slot = 0; slot < Layout.POINTERS_PER_NODE; slot++) {
            long pointer = node.pointer(slot);
            if (Pointer.isHole(pointer)) {
                continue;
            }
            if (level == 1) {
                data.set(Pointer.blockOf(pointer));
            } else {
                walk(trees, Pointer.blockOf(pointer), level - 1, data, visitedNodes);
            }
        }
    }

    /** One bit per block. */
    private static final class Bitmap {
        private final long[] words;

        Bitmap(long blocks) {
            words = new long[Math.toIntExact((blocks + 63) / 64)];
        }

        /** Sets the bit; true if it was clear. */
        boolean set(long block) {
            int word = (int) (block >>> 6);
            long bit = 1L << block;
            boolean wasClear = (words[word] & bit) == 0;
            words[word] |= bit;
            return wasClear;
        }

        long cardinality() {
            long count = 0;
            for (long word : words) {
                count += Long.bitCount(word);
            }
            return count;
        }

        long cardinalityWithout(Bitmap other) {
            long count = 0;
            for (int i = 0; i < words.length; i++) {
                count += Long.bitCount(words[i] & ~other.words[i]);
            }
            return count;
        }
    }
}
