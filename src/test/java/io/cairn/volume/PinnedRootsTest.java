package io.cairn.volume;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.tree.NodeCache;
import java.util.Locale;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/**
 * The store pins in the node cache only the roots of disks that are open (Store#repin): a process that creates or
 * writes many disks keeps no more of their roots than the cache's capacity, while a root written in the open
 * transaction stays in memory until its commit (it is dirty) and an open disk's root stays while it is open.
 */
class PinnedRootsTest {

    /** The cache's smallest capacity, so that a few hundred disks overflow it. */
    private static final int CAPACITY_NODES = 64;
    private static final int DISKS = 10 * CAPACITY_NODES;
    private static final int BATCH = CAPACITY_NODES / 2;

    private final SimpleMemoryDevice device = new SimpleMemoryDevice();
    private final StoreOptions options = StoreOptions.defaults().withNodeCacheBytes(CAPACITY_NODES * TestBlocks.BLOCK);

    private static String disk(int number) {
        return String.format(Locale.ROOT, "disk-%04d", number);
    }

    private static <T> T cache(Store store, Function<NodeCache, T> question) {
        return store.inspect(internals -> question.apply(internals.trees().cache()));
    }

    private static boolean cached(Store store, long block) {
        return cache(store, c -> c.contains(block));
    }

    private static long root(Store store, String disk) {
        long id = store.vdi(disk).id();
        return store.inspect(internals -> internals.vdiRoots().get(id).root());
    }

    /** Writes block {@code number % 256} of disk {@code number} with a pattern only that disk has. */
    private static void writeOnce(Store store, int number) {
        try (Volume volume = store.openVolume(disk(number))) {
            volume.write((number % 256L) * TestBlocks.BLOCK, TestBlocks.pattern(number % 256L, number), false);
        }
    }

    @Test
    void creatingAndWritingManyDisksKeepsTheCacheWithinItsCapacity() {
        try (Store store = Store.format(device, 64L << 20, 256, options)) {
            for (int i = 0; i < DISKS; i++) {
                store.create(disk(i), 1L << 20);
                writeOnce(store, i);
                if ((i + 1) % BATCH == 0) {
                    store.commit();
                    // A miss after the commit evicts what the written batch held above the capacity.
                    TestBlocks.read(store, disk(0), 0);
                    int cached = cache(store, NodeCache::sizeNodes);
                    assertTrue(cached <= CAPACITY_NODES, "after " + (i + 1) + " disks the cache holds " + cached
                            + " nodes; roots of closed disks must not stay beyond the capacity of " + CAPACITY_NODES);
                    assertEquals(0, (int) cache(store, NodeCache::pinnedBlocks), "no disk is open, so no root is pinned");
                }
            }
            TestBlocks.commitAndCheckClean(store);
        }
        try (Store store = Store.open(device, null, options)) {
            for (int i = 0; i < DISKS; i++) {
                assertArrayEquals(TestBlocks.pattern(i % 256L, i).array(), TestBlocks.read(store, disk(i), i % 256L), disk(i));
            }
            assertTrue(cache(store, NodeCache::sizeNodes) <= CAPACITY_NODES);
        }
    }

    @Test
    void rootsWrittenInTheOpenTransactionStayUntilTheCommitHasWrittenThem() {
        try (Store store = Store.format(device, 64L << 20, 256, options)) {
            store.create("old", 1L << 20);
            store.commit();
            // Three times the capacity of disks created and written without a commit: every root is dirty, and
            // each creation and each close (the root's pin goes) ran an eviction with them in the way.
            for (int i = 0; i < 3 * CAPACITY_NODES; i++) {
                store.create(disk(i), 1L << 20);
                writeOnce(store, i);
            }
            TestBlocks.read(store, "old", 0);
            for (int i = 0; i < 3 * CAPACITY_NODES; i++) {
                long root = root(store, disk(i));
                assertTrue(cached(store, root), "the uncommitted root of " + disk(i) + " was evicted");
            }
            TestBlocks.commitAndCheckClean(store);
            TestBlocks.read(store, "old", 0);
            assertTrue(cache(store, NodeCache::sizeNodes) <= CAPACITY_NODES, "written roots are evicted like any node");
        }
        try (Store store = Store.open(device, null, options)) {
            for (int i = 0; i < 3 * CAPACITY_NODES; i++) {
                assertArrayEquals(TestBlocks.pattern(i % 256L, i).array(), TestBlocks.read(store, disk(i), i % 256L), disk(i));
            }
        }
    }

    @Test
    void anOpenDisksRootStaysPinnedAndFollowsItsWrites() {
        try (Store store = Store.format(device, 64L << 20, 256, options)) {
            store.create("kept", 1L << 20);
            for (int i = 0; i < 2 * CAPACITY_NODES; i++) {
                store.create(disk(i), 1L << 20);
            }
            store.commit();
            long firstRoot = root(store, "kept");
            try (Volume kept = store.openVolume("kept")) {
                kept.read(0, java.nio.ByteBuffer.allocate(TestBlocks.BLOCK));
                assertEquals(1, (int) cache(store, NodeCache::pinnedBlocks));
                flood(store);
                assertTrue(cached(store, firstRoot), "the open disk's root was evicted");
                // A write after the commit moves the root (a durable node is not changed in place); the commit
                // moves the pin with it.
                kept.write(0, TestBlocks.pattern(0, 1), false);
                store.commit();
                long movedRoot = root(store, "kept");
                assertNotEquals(firstRoot, movedRoot);
                assertEquals(1, (int) cache(store, NodeCache::pinnedBlocks));
                flood(store);
                assertTrue(cached(store, movedRoot), "the open disk's new root was evicted");
                // Written again and closed before the commit: the pin goes with the close.
                kept.write(TestBlocks.BLOCK, TestBlocks.pattern(1, 1), false);
            }
            assertEquals(0, (int) cache(store, NodeCache::pinnedBlocks), "a closed disk keeps no pin");
            store.commit();
            assertEquals(0, (int) cache(store, NodeCache::pinnedBlocks));
            long lastRoot = root(store, "kept");
            flood(store);
            assertFalse(cached(store, lastRoot), "a closed disk's root is evicted like any node");
            TestBlocks.commitAndCheckClean(store);
            assertArrayEquals(TestBlocks.pattern(1, 1).array(), TestBlocks.read(store, "kept", 1));
        }
    }

    /** Reads the roots of twice the cache's capacity of other disks, each a miss that evicts the oldest. */
    private static void flood(Store store) {
        for (int i = 0; i < 2 * CAPACITY_NODES; i++) {
            TestBlocks.read(store, disk(i), 0);
        }
    }
}
