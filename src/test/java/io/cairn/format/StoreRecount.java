package io.cairn.format;

import io.cairn.tree.Node;
import io.cairn.tree.RootRef;
import io.cairn.tree.TreeSpace;
import io.cairn.volume.Store;

import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Recounts every reference in a store through the engine's own view of it and compares the result
 * with the on-disk counters (the format's first invariant: a block's counter is the number of
 * references to it). References are: a root named by a VDI record, a snapshot record or the
 * superblock's table roots; every non-hole pointer of a radix node; and a snapshot record's sketch blob
 * (its first page) and each blob page's next page. A node's pointers count
 * once per node, however many parents share it.
 */
public final class StoreRecount {

    private StoreRecount() {
    }

    /** Block → references, for every block referenced at least once (format blocks excluded). */
    public static Map<Long, Integer> references(Store store) {
        return store.inspect(internals -> {
            Map<Long, Integer> references = new TreeMap<>();
            Set<Long> visitedNodes = new HashSet<>();
            TreeSpace trees = internals.trees();
            for (RootRef root : internals.vdiRoots().values()) {
                countTree(trees, root, references, visitedNodes);
            }
            for (RootRef root : internals.snapshotRoots().values()) {
                countTree(trees, root, references, visitedNodes);
            }
            for (RootRef root : internals.tableRoots()) {
                countTree(trees, root, references, visitedNodes);
            }
            for (Map.Entry<Long, Long> blob : internals.sketchBlobs().entrySet()) {
                countSketchBlob(internals, blob.getKey(), blob.getValue(), references);
            }
            return references;
        });
    }

    /** Block → counter, for every allocated block outside the format's reserved blocks. */
    public static Map<Long, Integer> counters(Store store) {
        return store.inspect(internals -> {
            Map<Long, Integer> counters = new TreeMap<>();
            internals.space().forEachAllocated((block, count, type) -> counters.put(block, count));
            return counters;
        });
    }

    /** A snapshot record references its blob's first page, and each page the next. */
    private static void countSketchBlob(Store.Internals internals, long snapshotId, long firstPage,
                                        Map<Long, Integer> references) {
        long block = firstPage;
        for (int index = 0; block != 0; index++) {
            references.merge(block, 1, Integer::sum);
            java.nio.ByteBuffer image = BlockHeader.newImage();
            internals.device().read(block * Layout.BLOCK_BYTES, image);
            block = SketchBlobCodec.decodePage(image, block, snapshotId, index).nextPage();
        }
    }

    private static void countTree(TreeSpace trees, RootRef root, Map<Long, Integer> references, Set<Long> visited) {
        if (root.root() == 0) {
            return;
        }
        references.merge(root.root(), 1, Integer::sum);
        countNode(trees, root.root(), root.height(), references, visited);
    }

    private static void countNode(TreeSpace trees, long block, int level, Map<Long, Integer> references, Set<Long> visited) {
        if (!visited.add(block)) {
            return;
        }
        Node node = trees.node(block, level);
        for (int slot = 0; slot < Layout.POINTERS_PER_NODE; slot++) {
            long pointer = node.pointer(slot);
            if (Pointer.isHole(pointer)) {
                continue;
            }
            long target = Pointer.blockOf(pointer);
            references.merge(target, 1, Integer::sum);
            if (level > 1) {
                countNode(trees, target, level - 1, references, visited);
            }
        }
    }
}
