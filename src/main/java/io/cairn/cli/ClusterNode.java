package io.cairn.cli;

import io.cairn.alloc.ExtentLeaser;
import io.cairn.cluster.CoordinatorUnavailableException;
import io.cairn.cluster.Lease;
import io.cairn.cluster.LockHeldException;
import io.cairn.cluster.LockManager;
import io.cairn.cluster.Member;
import io.cairn.volume.Store;
import io.cairn.volume.VdiInfo;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * One node of several serving a store together (docs/CLUSTER.md): which disks it holds, under which leases.
 *
 * <p>Design notes.
 * <ol>
 *   <li>A disk is written only under a lease on lock {@code vdi/ID}; the lease's fencing token goes into the
 *       disk's record ({@link Store#hold}) and {@link Lease#isValid()} is checked before every write.</li>
 *   <li>Which disks a node takes, every {@link #scanInterval}: those whose record names this node (created
 *       here, or held before a restart), and those whose record names a node that is not a live member (it
 *       died or was cut off; its leases expire within one lease timeout, and the first node to get the lease
 *       takes the disk over, with a takeover snapshot). Disks nobody holds (given back by {@code migrate})
 *       are left for the node they are migrated to.</li>
 *   <li>A node id is derived from the node's name ({@link #nodeId}), so it survives restarts: extents and
 *       records that name it are its own again. Two live names with one id are refused at start.</li>
 *   <li>Extents: the node allocates only in extents it holds a lease on ({@code extent/N}); an
 *       {@link ExtentLeaser} keeps spares leased in advance, refilled on the scan thread every scan interval and,
 *       on a thread of its own, as soon as a spare is taken or an allocation waits for one, so no allocation waits
 *       for ZooKeeper unless the node has no spare left. The pool is filled before the node takes any disk, since
 *       taking one commits.</li>
 * </ol>
 * Threading: the scan runs on one thread of its own, the refills asked for by the store on another (an allocation
 * waiting for a spare holds the store's metadata lock, which a scan may be waiting for); {@link #adopt} may be
 * called from any thread.
 */
final class ClusterNode implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(ClusterNode.class);
    /** Member attribute naming the node id a node writes into records. */
    static final String NODE_ID_ATTRIBUTE = "node-id";

    private final Store store;
    private final LockManager locks;
    private final Duration scanInterval;
    private final Map<Long, Lease> leases = new HashMap<>();
    private final ScheduledExecutorService scanner;
    /** Runs the refills the store asks for: never waits for the store (class comment). */
    private final java.util.concurrent.ExecutorService refiller;
    private final ExtentLeaser extents;
    /** Set while a refill is queued, so a burst of takes queues one. */
    private final java.util.concurrent.atomic.AtomicBoolean refillQueued = new java.util.concurrent.atomic.AtomicBoolean();

    ClusterNode(Store store, LockManager locks) {
        this.store = store;
        this.locks = locks;
        this.scanInterval = locks.timeouts().lease().dividedBy(4);
        this.scanner = Executors.newSingleThreadScheduledExecutor(runnable -> {
            Thread thread = new Thread(runnable, "cairn-cluster-scan");
            thread.setDaemon(true);
            return thread;
        });
        this.refiller = Executors.newSingleThreadExecutor(runnable -> {
            Thread thread = new Thread(runnable, "cairn-extent-refill");
            thread.setDaemon(true);
            return thread;
        });
        this.extents = store.leaseExtents(locks, this::liveNodeIds, this::refillSoon);
    }

    /** The node ids of the live members, from their {@link #NODE_ID_ATTRIBUTE}. */
    private Set<Integer> liveNodeIds() {
        Set<Integer> ids = new HashSet<>();
        for (Member member : locks.members()) {
            String id = member.attributes().get(NODE_ID_ATTRIBUTE);
            if (id != null) {
                ids.add(Integer.parseInt(id));
            }
        }
        return ids;
    }

    /** Called when the store took a spare extent or waits for one (under its metadata lock: must not block). */
    private void refillSoon() {
        if (refillQueued.compareAndSet(false, true)) {
            try {
                refiller.execute(() -> {
                    refillQueued.set(false);
                    refillExtents();
                });
            } catch (java.util.concurrent.RejectedExecutionException closing) {
                refillQueued.set(false); // shutting down
            }
        }
    }

    private void refillExtents() {
        try {
            extents.refill();
        } catch (RuntimeException problem) {
            LOG.warn("leasing spare extents failed: {}", problem.toString());
        }
    }

    /** The spare extents this node keeps leased (for tests and logs). */
    ExtentLeaser extents() {
        return extents;
    }

    /** The node id for {@code nodeName}: a stable hash, above 0, that fits a record's holder field. */
    static int nodeId(String nodeName) {
        int hash = 0;
        for (byte b : nodeName.getBytes(java.nio.charset.StandardCharsets.UTF_8)) {
            hash = hash * 31 + (b & 0xFF);
        }
        return 1 + Math.floorMod(hash, Integer.MAX_VALUE - 1);
    }

    /** Refuses to start if a live member with another name has this node's id. */
    static void checkUniqueId(LockManager locks, int nodeId) {
        for (Member member : locks.members()) {
            if (!member.name().equals(locks.nodeName())
                    && Integer.toString(nodeId).equals(member.attributes().get(NODE_ID_ATTRIBUTE))) {
                throw CommandFailure.usage("node names '" + member.name() + "' and '" + locks.nodeName()
                        + "' map to the same node id " + nodeId + "; choose another --node name");
            }
        }
    }

    /** Takes what this node should hold now, then keeps scanning in the background. */
    void start() {
        extents.refill();
        adopt();
        long periodMillis = Math.max(50, scanInterval.toMillis());
        scanner.scheduleWithFixedDelay(() -> {
            refillExtents();
            adoptQuietly();
        }, periodMillis, periodMillis, TimeUnit.MILLISECONDS);
    }

    private void adoptQuietly() {
        try {
            adopt();
        } catch (CoordinatorUnavailableException unreachable) {
            LOG.warn("ZooKeeper is unreachable; serving the disks held so far: {}", unreachable.getMessage());
        } catch (RuntimeException problem) {
            LOG.warn("taking disks failed: {}", problem.toString());
        }
    }

    /** Takes every disk this node should hold and does not (design note 2). */
    synchronized void adopt() {
        int self = store.node();
        Set<String> liveIds = new HashSet<>();
        List<VdiInfo> disks = store.listVdis(false);
        boolean othersNamed = disks.stream().anyMatch(disk -> disk.holderNode() != 0 && disk.holderNode() != self);
        if (othersNamed) {
            for (Member member : locks.members()) {
                String id = member.attributes().get(NODE_ID_ATTRIBUTE);
                if (id != null) {
                    liveIds.add(id);
                }
            }
        }
        for (VdiInfo disk : disks) {
            Lease lease = leases.get(disk.id());
            if (lease != null && lease.isValid()) {
                continue;
            }
            boolean mine = disk.holderNode() == self;
            boolean orphaned = disk.holderNode() != 0 && !mine && !liveIds.contains(Long.toString(disk.holderNode()));
            if (mine || orphaned) {
                take(disk, Duration.ZERO);
            }
        }
    }

    /**
     * Takes disk {@code disk} under a new lease, waiting up to {@code wait} for the lock; false if another
     * node holds the lock (or took the disk under a newer lease).
     */
    synchronized boolean take(VdiInfo disk, Duration wait) {
        Lease lease;
        try {
            lease = locks.acquire(lockName(disk.id()), wait, Map.of(DISK_NOTE, disk.name()));
        } catch (LockHeldException held) {
            return false;
        }
        try {
            // Taking a disk commits, which needs a metadata block: after the coordinator was away the spares
            // may be gone with the leases, so top them up first rather than at the next scan.
            extents.refill();
            String takeover = store.hold(disk.name(), lease.fencingToken(), lease::isValid);
            Lease previous = leases.put(disk.id(), lease);
            if (previous != null) {
                previous.release();
            }
            lease.onLost(lost -> LOG.warn("lost the lease on disk '{}' ({}); writing it on while the store's record still "
                    + "names this node (no other node took it), and taking it again once ZooKeeper answers",
                    disk.name(), lost.lostReason()));
            if (takeover != null) {
                LOG.warn("took disk '{}' over from node id {} (token {}); its state then is snapshot {}", disk.name(),
                        disk.holderNode(), lease.fencingToken(), takeover);
            } else {
                LOG.info("holding disk '{}' (token {})", disk.name(), lease.fencingToken());
            }
            return true;
        } catch (Store.NotHeldException newer) {
            lease.release();
            LOG.info("not taking disk '{}': {}", disk.name(), newer.getMessage());
            return false;
        } catch (RuntimeException problem) {
            lease.release();
            throw problem;
        }
    }

    /**
     * Gives disk {@code name} back (migration): the caller has closed its connections; every write is made
     * durable, the record names no holder, and the lease is released.
     */
    synchronized void giveBack(VdiInfo disk) {
        store.releaseHold(disk.name());
        Lease lease = leases.remove(disk.id());
        if (lease != null) {
            lease.release();
        }
        LOG.info("gave disk '{}' back", disk.name());
    }

    /** Note naming the disk a {@code vdi/ID} lock guards, read by {@code cairn nodes}. */
    static final String DISK_NOTE = "disk";

    /** Disks' locks are {@code vdi/ID}. */
    static final String VDI_LOCK_PREFIX = "vdi/";

    static String lockName(long vdiId) {
        return VDI_LOCK_PREFIX + vdiId;
    }

    /** Stops scanning and releases every lease (the store is closed by its owner first, so all is durable). */
    @Override
    public synchronized void close() {
        scanner.shutdownNow();
        refiller.shutdownNow();
        for (Lease lease : leases.values()) {
            lease.release();
        }
        leases.clear();
        extents.close();
    }
}
