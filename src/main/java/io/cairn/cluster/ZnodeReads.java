package io.cairn.cluster;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

/**
 * Reads of the layout in {@link Znodes}, shared by the lock manager and the read-only
 * {@link ClusterDirectory}. A znode that disappears between listing and reading is skipped (its
 * node died or released it meanwhile); a missing parent is an empty list.
 */
final class ZnodeReads {

    /** Curator LeaderLatch candidates end in a 10-digit sequence number; the lowest leads. */
    private static final String LATCH_MARKER = "latch-";

    private ZnodeReads() {
    }

    static List<String> stores(ZooKeeper zk) throws KeeperException, InterruptedException {
        return sortedChildren(zk, Znodes.ROOT);
    }

    static List<Member> members(ZooKeeper zk, String storeId) throws KeeperException, InterruptedException {
        List<Member> members = new ArrayList<>();
        String parent = Znodes.members(storeId);
        for (String name : sortedChildren(zk, parent)) {
            byte[] data = dataOrNull(zk, parent + "/" + name, null);
            if (data != null) {
                members.add(new Member(name, Znodes.decode(data)));
            }
        }
        return members;
    }

    static List<LockHolder> locks(ZooKeeper zk, String storeId) throws KeeperException, InterruptedException {
        List<LockHolder> locks = new ArrayList<>();
        for (String segment : sortedChildren(zk, Znodes.locks(storeId))) {
            holder(zk, storeId, Names.lockFromSegment(segment)).ifPresent(locks::add);
        }
        locks.sort(Comparator.comparing(LockHolder::lockName));
        return locks;
    }

    static Optional<LockHolder> holder(ZooKeeper zk, String storeId, String lockName) throws KeeperException, InterruptedException {
        Stat stat = new Stat();
        byte[] data = dataOrNull(zk, Znodes.lock(storeId, lockName), stat);
        if (data == null) {
            return Optional.empty();
        }
        Map<String, String> notes = Znodes.decode(data);
        String node = notes.getOrDefault(Znodes.NODE_KEY, "?");
        notes.remove(Znodes.NODE_KEY);
        return Optional.of(new LockHolder(lockName, node, stat.getCzxid(), notes));
    }

    /** Role → the node leading it, for every role that has a candidate. */
    static Map<String, String> leaders(ZooKeeper zk, String storeId) throws KeeperException, InterruptedException {
        Map<String, String> leaders = new java.util.TreeMap<>();
        for (String role : sortedChildren(zk, Znodes.elections(storeId))) {
            leader(zk, storeId, role).ifPresent(node -> leaders.put(role, node));
        }
        return leaders;
    }

    static Optional<String> leader(ZooKeeper zk, String storeId, String role) throws KeeperException, InterruptedException {
        String parent = Znodes.election(storeId, role);
        List<String> candidates = new ArrayList<>(sortedChildren(zk, parent));
        candidates.removeIf(name -> !name.contains(LATCH_MARKER));
        candidates.sort(Comparator.comparing(name -> name.substring(name.lastIndexOf(LATCH_MARKER) + LATCH_MARKER.length())));
        for (String candidate : candidates) {
            byte[] data = dataOrNull(zk, parent + "/" + candidate, null);
            if (data != null) {
                return Optional.of(new String(data, java.nio.charset.StandardCharsets.UTF_8));
            }
        }
        return Optional.empty();
    }

    private static List<String> sortedChildren(ZooKeeper zk, String path) throws KeeperException, InterruptedException {
        try {
            List<String> children = new ArrayList<>(zk.getChildren(path, false));
            children.sort(null);
            return children;
        } catch (KeeperException.NoNodeException missing) {
            return List.of();
        }
    }

    private static byte[] dataOrNull(ZooKeeper zk, String path, Stat stat) throws KeeperException, InterruptedException {
        try {
            return zk.getData(path, false, stat);
        } catch (KeeperException.NoNodeException gone) {
            return null;
        }
    }
}
