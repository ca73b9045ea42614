package io.cairn.tree;

import io.cairn.format.BlockHeader;
import io.cairn.format.Layout;
import io.cairn.format.NodeCodec;
import io.cairn.io.BlockDevice;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Radix nodes in memory (seed 003 §3.4.4): metadata only, least recently used evicted first,
 * dirty nodes and pinned roots never evicted. The store pins the roots of the disks that are open
 * (Store#repin); every other root is an ordinary node. Not thread-safe: used under the store's
 * metadata lock.
 *
 * <p>Invariants.
 * <ol>
 *   <li>A cached node is in exactly one of two maps: {@code pinnedNodes} if its block is pinned,
 *       else {@code nodes} (in access order, the eviction candidates). Pinned roots therefore neither
 *       count against the capacity nor stand in the way of eviction: a store with more open VDIs than
 *       the cache has room for (their roots pinned, one node each) still caches {@code capacity} other
 *       nodes, and finding one to evict never walks past the roots. An unpinned node goes back to
 *       {@code nodes}, at the recent end, and is evicted like any other.</li>
 *   <li>The capacity bounds the unpinned nodes except while dirty nodes hold them in (a transaction
 *       may dirty more nodes than fit); eviction skips a dirty node by moving it to the recent end, and
 *       skips at most {@link #MAX_SKIPPED} per call, so one call costs O(evicted + MAX_SKIPPED) whatever
 *       is cached. The overshoot is given back by later calls once the nodes are written.</li>
 * </ol>
 */
public final class NodeCache {

    /** Dirty nodes one eviction may step over before giving up until the next insertion. */
    static final int MAX_SKIPPED = 64;

    private final BlockDevice device;
    private final int capacityNodes;
    private final LinkedHashMap<Long, Node> nodes = new LinkedHashMap<>(1024, 0.75f, true);
    private final Map<Long, Node> pinnedNodes = new HashMap<>();
    private final Map<Long, Integer> pins = new HashMap<>();
    private long hits;
    private long misses;

    public NodeCache(BlockDevice device, long capacityBytes) {
        this.device = device;
        this.capacityNodes = (int) Math.max(64, Math.min(Integer.MAX_VALUE, capacityBytes / Layout.BLOCK_BYTES));
    }

    /** The node at {@code block}, read and verified on a miss. */
    public Node get(long block, int level) {
        Node node = nodes.get(block);
        if (node == null) {
            node = pinnedNodes.get(block);
        }
        if (node != null) {
            return hit(node, level);
        }
        node = read(block, level);
        put(node);
        return node;
    }

    /**
     * The node at {@code block}, no longer cached: its block is being freed. One hash lookup instead of a
     * {@link #get} (which moves the node to the recent end, touching its neighbours) and a {@link #forget}
     * per node a reclamation frees; read and verified on a miss, and then not cached.
     */
    Node take(long block, int level) {
        Node node = nodes.remove(block);
        if (node == null) {
            node = pinnedNodes.remove(block);
        }
        return node != null ? hit(node, level) : read(block, level);
    }

    /**
     * The node at {@code block} if it is cached, no longer cached (its block is being freed); null if it is not
     * cached: the caller reads it with {@link #readUncached}, without the store's lock if it likes.
     */
    Node takeCached(long block, int level) {
        Node node = nodes.remove(block);
        if (node == null) {
            node = pinnedNodes.remove(block);
        }
        return node != null ? hit(node, level) : null;
    }

    /**
     * Reads and verifies the node at {@code block} without caching it or touching the cache: safe without the
     * store's metadata lock, for a block nothing can overwrite meanwhile (a freed node's block is held).
     */
    Node readUncached(long block, int level) {
        return decodeFrom(device, block, level);
    }

    private Node hit(Node node, int level) {
        hits++;
        if (node.level != level) {
            throw new io.cairn.io.CorruptionException(node.block, "radix node has level " + node.level
                    + " where level " + level + " was expected");
        }
        return node;
    }

    private Node read(long block, int level) {
        misses++;
        return decodeFrom(device, block, level);
    }

    private static Node decodeFrom(BlockDevice device, long block, int level) {
        ByteBuffer image = BlockHeader.newImage();
        device.read(block * Layout.BLOCK_BYTES, image);
        long[] pointers = NodeCodec.decode(image, block, level);
        return new Node(block, level, pointers, NodeCodec.generationOf(image), false);
    }

    void put(Node node) {
        if (pins.containsKey(node.block)) {
            pinnedNodes.put(node.block, node);
            return;
        }
        nodes.put(node.block, node);
        evictIfNeeded();
    }

    /** Forgets a block that was freed (its number may be reused for anything). */
    void forget(long block) {
        nodes.remove(block);
        pinnedNodes.remove(block);
    }

    /**
     * Drops every node that is not dirty (they are read again from the device when needed): in shared mode a
     * node process may hold images of blocks that other processes have freed and reused since.
     */
    public void forgetClean() {
        nodes.values().removeIf(node -> !node.dirty);
        pinnedNodes.values().removeIf(node -> !node.dirty);
    }

    public void pin(long block) {
        if (pins.merge(block, 1, Integer::sum) == 1) {
            Node node = nodes.remove(block);
            if (node != null) {
                pinnedNodes.put(block, node);
            }
        }
    }

    public void unpin(long block) {
        pins.computeIfPresent(block, (b, count) -> count == 1 ? null : count - 1);
        if (!pins.containsKey(block)) {
            Node node = pinnedNodes.remove(block);
            if (node != null) {
                nodes.put(block, node);
                evictIfNeeded();
            }
        }
    }

    private void evictIfNeeded() {
        int excess = nodes.size() - capacityNodes;
        if (excess <= 0) {
            return;
        }
        List<Node> skipped = null;
        Iterator<Node> iterator = nodes.values().iterator();
        while (excess > 0 && iterator.hasNext()) {
            Node candidate = iterator.next();
            iterator.remove();
            if (candidate.dirty) {
                if (skipped == null) {
                    skipped = new ArrayList<>();
                }
                skipped.add(candidate);
                if (skipped.size() == MAX_SKIPPED) {
                    break;
                }
            } else {
                excess--;
            }
        }
        if (skipped != null) {
            for (Node node : skipped) {
                nodes.put(node.block, node); // back in, at the recent end: the next call starts past them
            }
        }
    }

    /** Nodes in memory, pinned roots included. */
    public int sizeNodes() {
        return nodes.size() + pinnedNodes.size();
    }

    /** Nodes in memory that are pinned roots (not limited by the capacity). */
    public int pinnedResidentNodes() {
        return pinnedNodes.size();
    }

    /** Blocks pinned, whether their node is in memory or not. */
    public int pinnedBlocks() {
        return pins.size();
    }

    public int capacityNodes() {
        return capacityNodes;
    }

    /** Whether the node at {@code block} is in memory (does not count as a use). */
    public boolean contains(long block) {
        return nodes.containsKey(block) || pinnedNodes.containsKey(block);
    }

    public long hits() {
        return hits;
    }

    public long misses() {
        return misses;
    }
}
