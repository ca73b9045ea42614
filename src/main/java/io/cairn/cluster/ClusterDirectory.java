package io.cairn.cluster;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.ZooKeeper;

/**
 * A read-only look at what ZooKeeper holds for every store it coordinates: live members, held locks,
 * election leaders. It joins nothing and takes no lock; {@code cairn nodes} prints it.
 *
 * <p>Threading: one thread at a time.
 */
public final class ClusterDirectory implements AutoCloseable {

    /** One store's coordination state. */
    public record StoreView(String storeId, List<Member> members, List<LockHolder> locks, Map<String, String> leaders) {
    }

    private final CoordinatorConnection connection;

    private ClusterDirectory(CoordinatorConnection connection) {
        this.connection = connection;
    }

    /**
     * Connects to the ensemble, waiting at most the coordinator wait of {@code timeouts}.
     *
     * @throws CoordinatorUnavailableException it did not answer in time
     */
    public static ClusterDirectory connect(String connectString, LeaseTimeouts timeouts) {
        return new ClusterDirectory(CoordinatorConnection.open(connectString, timeouts, state -> { }));
    }

    /** The ids of every store with coordination state, sorted. */
    public List<String> storeIds() {
        try {
            return ZnodeReads.stores(zk());
        } catch (KeeperException e) {
            throw connection.unavailable(e);
        } catch (InterruptedException e) {
            throw interrupted(e);
        }
    }

    /** Members, locks and leaders of {@code storeId}; all empty for a store nobody coordinates. */
    public StoreView store(String storeId) {
        Names.storeId(storeId);
        try {
            ZooKeeper zk = zk();
            return new StoreView(storeId, ZnodeReads.members(zk, storeId), ZnodeReads.locks(zk, storeId),
                    ZnodeReads.leaders(zk, storeId));
        } catch (KeeperException e) {
            throw connection.unavailable(e);
        } catch (InterruptedException e) {
            throw interrupted(e);
        }
    }

    /** Every store's view, sorted by store id. */
    public List<StoreView> stores() {
        List<StoreView> views = new ArrayList<>();
        for (String storeId : storeIds()) {
            views.add(store(storeId));
        }
        return views;
    }

    private ZooKeeper zk() {
        return connection.awaitConnected();
    }

    private static IllegalStateException interrupted(InterruptedException e) {
        Thread.currentThread().interrupt();
        return new IllegalStateException("interrupted while reading from ZooKeeper", e);
    }

    @Override
    public void close() {
        connection.close();
    }
}
