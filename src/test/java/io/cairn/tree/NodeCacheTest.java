package io.cairn.tree;

import io.cairn.format.Layout;
import io.cairn.io.MemoryBlockDevice;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Eviction order and what is never evicted; the cache's smallest capacity is 64 nodes. */
class NodeCacheTest {

    private static final int CAPACITY = 64;

    private final MemoryBlockDevice device = new MemoryBlockDevice();
    private final NodeCache cache = new NodeCache(device, (long) CAPACITY * Layout.BLOCK_BYTES);

    private static Node node(long block, boolean dirty) {
        return new Node(block, 1, new long[Layout.POINTERS_PER_NODE], 1, dirty);
    }

    /** A reclamation takes the node of a block it frees: the cached image, pinned or not, or one read and left uncached. */
    @Test
    void takingANodeRemovesItOrReadsItWithoutCachingIt() {
        Node cached = node(1, false);
        cache.put(cached);
        cache.pin(2);
        Node pinned = node(2, false);
        cache.put(pinned);
        long[] pointers = new long[Layout.POINTERS_PER_NODE];
        pointers[7] = io.cairn.format.Pointer.writable(4242);
        java.nio.ByteBuffer image = java.nio.ByteBuffer.allocate(Layout.BLOCK_BYTES);
        io.cairn.format.NodeCodec.encodeInto(pointers, 3, 5, 1, image);
        device.write(3L * Layout.BLOCK_BYTES, image.clear());

        assertSame(cached, cache.take(1, 1));
        assertFalse(cache.contains(1));
        assertSame(pinned, cache.take(2, 1));
        assertFalse(cache.contains(2));
        Node read = cache.take(3, 1);
        assertEquals(5, read.generation);
        assertEquals(pointers[7], read.pointers[7]);
        assertFalse(cache.contains(3), "a node whose block is being freed is not cached");
        assertEquals(2, cache.hits());
        assertEquals(1, cache.misses());

        cache.put(node(4, false));
        assertThrows(io.cairn.io.CorruptionException.class, () -> cache.take(4, 2));
    }

    @Test
    void evictsTheLeastRecentlyUsedCleanNode() {
        for (long block = 1; block <= CAPACITY; block++) {
            cache.put(node(block, false));
        }
        cache.get(1, 1); // now the most recently used
        cache.put(node(1000, false));
        assertTrue(cache.contains(1));
        assertFalse(cache.contains(2), "block 2 was the least recently used");
        assertTrue(cache.contains(1000));
        assertEquals(CAPACITY, cache.sizeNodes());
    }

    @Test
    void forgettingCleanNodesKeepsTheDirtyOnesAndThePins() {
        cache.put(node(1, false));
        cache.put(node(2, true));
        cache.pin(3);
        cache.put(node(3, false));
        cache.pin(4);
        cache.put(node(4, true));
        cache.forgetClean();
        assertFalse(cache.contains(1));
        assertTrue(cache.contains(2), "a dirty node exists nowhere else");
        assertFalse(cache.contains(3), "a clean pinned root is read again when needed");
        assertTrue(cache.contains(4));
        cache.put(node(3, false));
        assertTrue(cache.contains(3));
        assertEquals(2, cache.pinnedResidentNodes(), "the pin outlives the forgotten image");
    }

    @Test
    void pinnedRootsBeyondTheCapacityLeaveRoomForOtherNodes() {
        for (long block = 1; block <= 3L * CAPACITY; block++) {
            cache.pin(block);
            cache.put(node(block, false));
        }
        for (long block = 10_000; block < 10_000 + CAPACITY; block++) {
            cache.put(node(block, false));
        }
        for (long block = 10_000; block < 10_000 + CAPACITY; block++) {
            assertTrue(cache.contains(block), "unpinned node " + block + " was evicted although only pinned roots are over the capacity");
        }
        for (long block = 1; block <= 3L * CAPACITY; block++) {
            assertTrue(cache.contains(block), "pinned root " + block + " was evicted");
        }
        assertEquals(3 * CAPACITY, cache.pinnedResidentNodes());
        cache.put(node(20_000, false));
        assertFalse(cache.contains(10_000), "the capacity still bounds the unpinned nodes");
    }

    @Test
    void anUnpinnedRootBecomesEvictableAgain() {
        cache.put(node(1, false));
        cache.pin(1);
        cache.pin(1);
        for (long block = 100; block < 100 + 2 * CAPACITY; block++) {
            cache.put(node(block, false));
        }
        cache.unpin(1);
        assertTrue(cache.contains(1), "still pinned once");
        cache.unpin(1);
        for (long block = 1000; block < 1000 + CAPACITY; block++) {
            cache.put(node(block, false));
        }
        assertFalse(cache.contains(1));
        assertEquals(0, cache.pinnedResidentNodes());
    }

    @Test
    void dirtyNodesStayUntilWrittenThenGo() {
        Node[] dirty = new Node[2 * CAPACITY + 5];
        for (int i = 0; i < dirty.length; i++) {
            dirty[i] = node(i + 1, true);
            cache.put(dirty[i]);
        }
        for (Node node : dirty) {
            assertTrue(cache.contains(node.block), "dirty node " + node.block + " was evicted");
        }
        for (Node node : dirty) {
            node.dirty = false;
        }
        cache.put(node(5000, false));
        assertEquals(CAPACITY, cache.sizeNodes(), "written nodes are evicted down to the capacity again");
        assertTrue(cache.contains(5000));
    }

    @Test
    void cleanNodesBehindManyDirtyOnesAreStillEvicted() {
        cache.put(node(1, false));
        for (long block = 2; block <= CAPACITY; block++) {
            cache.put(node(block, true));
        }
        cache.get(1, 1); // the clean node is the most recent: every older node is dirty
        cache.put(node(1000, true));
        cache.put(node(1001, true));
        // Each insertion steps over at most 64 dirty nodes, moving them to the recent end; the clean
        // node is reached within a few insertions.
        for (long block = 1002; block < 1010; block++) {
            cache.put(node(block, true));
        }
        assertFalse(cache.contains(1));
    }
}
