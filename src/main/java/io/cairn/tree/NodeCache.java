package io.cairn.tree;

import io.cairn.format.BlockHeader;
import io.cairn.format.Layout;
import io.cairn.format.NodeCodec;
import io.cairn.io.BlockDevice;

import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Radix nodes in memory (seed 003 §3.4.4): metadata only, least recently used evicted first,
 * dirty nodes and pinned roots never evicted. Not thread-safe: used under the store's
 * metadata lock.
 */
public final class NodeCache {

    private final BlockDevice device;
    private final int capacityNodes;
    private final LinkedHashMap<Long, Node> nodes = new LinkedHashMap<>(1024, 0.75f, true);
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
        if (node != null) {
            hits++;
            if (node.level != level) {
                throw new io.cairn.io.CorruptionException(block, "radix node has level " + node.level
                        + " where level " + level + " was expected");
            }
            return node;
        }
        misses++;
        ByteBuffer image = BlockHeader.newImage();
        device.read(block * Layout.BLOCK_BYTES, image);
        long[] pointers = NodeCodec.decode(image, block, level);
        node = new Node(block, level, pointers, NodeCodec.generationOf(image), false);
        put(node);
        return node;
    }

    void put(Node node) {
        nodes.put(node.block, node);
        evictIfNeeded();
    }

    /** Forgets a block that was freed (its number may be reused for anything). */
    void forget(long block) {
        nodes.remove(block);
    }

    public void pin(long block) {
        pins.merge(block, 1, Integer::sum);
    }

    public void unpin(long block) {
        pins.computeIfPresent(block, (b, count) -> count == 1 ? null : count - 1);
    }

    private void evictIfNeeded() {
        if (nodes.size() <= capacityNodes) {
            return;
        }
        Iterator<Node> iterator = nodes.values().iterator();
        while (nodes.size() > capacityNodes && iterator.hasNext()) {
            Node candidate = iterator.next();
            if (!candidate.dirty && !pins.containsKey(candidate.block)) {
                iterator.remove();
            }
        }
    }

    public int sizeNodes() {
        return nodes.size();
    }

    public int capacityNodes() {
        return capacityNodes;
    }

    public long hits() {
        return hits;
    }

    public long misses() {
        return misses;
    }
}
