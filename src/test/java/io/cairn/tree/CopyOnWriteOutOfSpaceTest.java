package io.cairn.tree;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.cairn.alloc.SpaceMap;
import io.cairn.format.Layout;
import io.cairn.format.Pointer;
import io.cairn.format.StoreGeometry;
import io.cairn.io.MemoryBlockDevice;
import io.cairn.io.StorageException;
import org.junit.jupiter.api.Test;

/**
 * Copy-on-write that finds no metadata block (NO_SPACE, e.g. a cluster node whose leased extents ran out while
 * ZooKeeper was away) must leave the tree and every counter as they were: the old node's release may be queued
 * only once its shadow exists, or the commit would release a node the tree still names.
 */
class CopyOnWriteOutOfSpaceTest {

    @Test
    void aSharedPathThatCannotBeCopiedChangesNothing() {
        StoreGeometry geometry = new StoreGeometry(4L * Layout.MIN_EXTENT_BLOCKS, Layout.MIN_EXTENT_BLOCKS);
        SpaceMap space = new SpaceMap(geometry, Layout.MAX_REFCOUNT);
        space.formatSystemExtent();
        MemoryBlockDevice device = new MemoryBlockDevice(geometry.storeBlocks() * Layout.BLOCK_BYTES);
        NodeCache cache = new NodeCache(device, 1 << 20);
        TreeSpace trees = new TreeSpace(device, space, cache, 1);
        RootRef ref = new RootRef(0, 2);
        long data = space.allocate(SpaceMap.Purpose.DATA);
        trees.exchange(ref, 0, Pointer.writable(data), LeafKind.DATA);
        long root = ref.root();
        long leaf = Pointer.blockOf(cache.get(root, 2).pointers[0]);
        trees.share(root, 2, LeafKind.DATA); // a snapshot: the whole path is shared now
        trees.closeTransaction();

        // Use up every metadata block a write may take (the reserve is kept for commits).
        while (true) {
            try {
                space.allocate(SpaceMap.Purpose.METADATA);
            } catch (StorageException full) {
                break;
            }
        }
        int releases = trees.pendingReleaseCount();
        int rootCount = space.count(root);
        int leafCount = space.count(leaf);
        int dataCount = space.count(data);

        StorageException full = assertThrows(StorageException.class,
                () -> trees.exchange(ref, 1, Pointer.writable(data), LeafKind.DATA));
        assertEquals(StorageException.Code.NO_SPACE, full.code());
        assertEquals(root, ref.root(), "the tree still starts at the shared root");
        assertEquals(releases, trees.pendingReleaseCount(), "no release queued for a node the tree still names");
        assertEquals(rootCount, space.count(root));
        assertEquals(leafCount, space.count(leaf), "the shared children gained no reference");
        assertEquals(dataCount, space.count(data));
    }
}
