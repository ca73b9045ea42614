package io.cairn.cli;

import io.cairn.alloc.ExtentLeases;
import io.cairn.alloc.SpaceMap;
import io.cairn.cluster.Election;
import io.cairn.cluster.Lease;
import io.cairn.cluster.LeaseTimeouts;
import io.cairn.cluster.LockHeldException;
import io.cairn.cluster.LockManager;
import io.cairn.cluster.Member;
import io.cairn.cluster.CoordinatorUnavailableException;
import io.cairn.cluster.Names;
import io.cairn.cluster.ZooKeeperLockManager;
import io.cairn.gc.GarbageCollector;
import io.cairn.gc.GcReport;
import io.cairn.io.FileBlockDevice;
import io.cairn.nbd.NbdServer;
import io.cairn.nbd.store.StoreExportCatalog;
import io.cairn.volume.Store;
import io.cairn.volume.VdiInfo;
import io.cairn.volume.StoreOptions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code serve --cluster ZK --node NAME}: the store opened shared with the other node processes of the host
 * (Store design note 10), this node's membership in ZooKeeper, its admin socket among the nodes', and the
 * disks it holds ({@link ClusterNode}).
 */
final class ClusterServing implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(ClusterServing.class);
    /** The role, and the lock, of the node that collects garbage for the whole store. */
    static final String GC_ROLE = "gc";

    /** Member attribute: where the node serves NBD, HOST:PORT. */
    static final String NBD_ATTRIBUTE = "nbd";
    /** Member attribute: how many extents the store has. */
    static final String EXTENTS_ATTRIBUTE = "extents";
    /** Member attribute: the store file the node serves (its admin socket's commands name it). */
    static final String STORE_ATTRIBUTE = "store";

    private final Path path;
    private final Store store;
    private final String connectString;
    private final String nodeName;
    private final LeaseTimeouts timeouts;
    private volatile LockManager locks;
    private volatile ClusterNode node;
    /** This node's candidacy for the garbage collector's role ({@link #GC_ROLE}). */
    private volatile Election gcElection;
    private NbdServer nbd;
    /** The exports this node serves ({@link #catalog}); told when a disk is given back. */
    private volatile StoreExportCatalog catalog;

    private ClusterServing(Path path, Store store, String connectString, String nodeName, LeaseTimeouts timeouts) {
        this.path = path;
        this.store = store;
        this.connectString = connectString;
        this.nodeName = nodeName;
        this.timeouts = timeouts;
    }

    /** Opens {@code path} shared as node {@code nodeName}; joins the cluster only in {@link #start}. */
    static ClusterServing open(Path path, StoreOptions options, String connectString, String nodeName, Duration lease,
                               String listen) {
        try {
            Names.node(nodeName);
            Names.connectString(connectString);
        } catch (IllegalArgumentException bad) {
            throw CommandFailure.usage(bad.getMessage());
        }
        if ("none".equals(listen)) {
            throw CommandFailure.usage("a cluster node serves NBD over TCP; give --listen HOST:PORT");
        }
        LeaseTimeouts timeouts;
        try {
            timeouts = new LeaseTimeouts(lease);
        } catch (IllegalArgumentException bad) {
            throw CommandFailure.usage("--lease: " + bad.getMessage());
        }
        if (!Files.exists(path)) {
            throw CommandFailure.usage("no store at " + path + "; a cluster serves an existing store (create one with: cairn format "
                    + path + " --size 64G)");
        }
        FileBlockDevice device = FileBlockDevice.openSharedWritable(path);
        try {
            Store store = Store.openShared(device, null, options, ClusterNode.nodeId(nodeName), countersFile(path), lease);
            // Until the node has joined (start), nothing may be allocated: it holds no extent lease yet.
            store.allocateFrom(new ExtentLeases() {
                @Override
                public Spare take(SpaceMap.Purpose purpose) {
                    return null;
                }

                @Override
                public String shortage(SpaceMap.Purpose purpose) {
                    return "node '" + nodeName + "' has not joined its cluster yet";
                }
            });
            return new ClusterServing(path, store, connectString, nodeName, timeouts);
        } catch (RuntimeException problem) {
            device.close();
            throw problem;
        }
    }

    /**
     * The live counters the node processes of this host share: in {@code /dev/shm} (memory that does not
     * outlive the host, which is what they must not do either), named after the store's real path.
     */
    static Path countersFile(Path store) {
        Path shm = Path.of("/dev/shm");
        Path directory = Files.isDirectory(shm) && Files.isWritable(shm) ? shm : Path.of(System.getProperty("java.io.tmpdir"));
        String socket = AdminEndpoint.socketFor(store).getFileName().toString();
        return directory.resolve(socket.substring(0, socket.length() - ".sock".length()) + ".live");
    }

    Store store() {
        return store;
    }

    /**
     * The node's NBD exports: the disks it holds are served here, the others relayed to the node holding them
     * (so a client that reconnects to this node after a migration reaches its disk), and a disk between two
     * holders is waited for up to three lease timeouts: a migration hands it over well within one, a takeover
     * after a node's death comes within two.
     */
    StoreExportCatalog catalog(String defaultExport, java.util.function.Predicate<String> writeThrough) {
        catalog = new StoreExportCatalog(store, defaultExport, writeThrough, this::nbdAddressOf, timeouts.lease().multipliedBy(3));
        return catalog;
    }

    /** Where live node {@code nodeId} serves NBD, from its membership; empty if it is not a member (or ZooKeeper is away). */
    private java.util.Optional<InetSocketAddress> nbdAddressOf(int nodeId) {
        LockManager current = locks;
        if (current == null) {
            return java.util.Optional.empty();
        }
        try {
            for (Member member : current.members()) {
                String address = member.attributes().get(NBD_ATTRIBUTE);
                if (address != null && Integer.toString(nodeId).equals(member.attributes().get(ClusterNode.NODE_ID_ATTRIBUTE))) {
                    return java.util.Optional.of(new InetSocketAddress(ServeCommand.host(address), ServeCommand.port(address)));
                }
            }
        } catch (CoordinatorUnavailableException unreachable) {
            LOG.debug("looking up node id {}: {}", nodeId, unreachable.getMessage());
        }
        return java.util.Optional.empty();
    }

    /** This node's admin socket: a command it may not carry out goes to the other nodes. */
    AdminServer adminServer(Path storePath) throws IOException {
        return new AdminServer(AdminEndpoint.socketFor(storePath, nodeName), () -> AdminEndpoint.nodeSockets(storePath),
                this::adoptQuietly);
    }

    /** Joins the cluster (publishing where this node serves NBD and admin) and takes the disks it should hold. */
    void start(InetSocketAddress address, NbdServer server) {
        this.nbd = server;
        InetSocketAddress nbd = address;
        Map<String, String> attributes = new LinkedHashMap<>();
        attributes.put(NBD_ATTRIBUTE, nbd.getHostString() + ":" + nbd.getPort());
        attributes.put("admin", AdminEndpoint.socketFor(path, nodeName).toString());
        attributes.put(ClusterNode.NODE_ID_ATTRIBUTE, Integer.toString(store.node()));
        // For `cairn nodes` (extents nobody holds) and `cairn migrate --cluster` (the path the admin socket serves).
        attributes.put(EXTENTS_ATTRIBUTE, Integer.toString(store.geometry().extentCount()));
        attributes.put(STORE_ATTRIBUTE, path.toAbsolutePath().toString());
        locks = ZooKeeperLockManager.connect(new ZooKeeperLockManager.Options(connectString, store.storeId().toString(),
                nodeName, attributes, timeouts));
        ClusterNode.checkUniqueId(locks, store.node());
        ClusterNode started = new ClusterNode(store, locks);
        started.start();
        node = started;
        gcElection = locks.elect(GC_ROLE);
        LOG.info("node '{}' (id {}) joined the cluster at {}; holding {}", nodeName, store.node(), connectString,
                store.heldVdis());
    }

    String nodeName() {
        return nodeName;
    }

    /**
     * Migration, on the node the disk moves to: asks the node holding it to give it back (it ends its clients'
     * connections after answering what they have in flight, and makes every write durable), then takes it
     * under a new lease. Returns the pause in nanoseconds: from the request to the moment this node serves it.
     */
    long pull(String disk) {
        ClusterNode current = requireStarted();
        if (store.heldVdis().contains(disk)) {
            throw new IllegalStateException("disk '" + disk + "' is already served by node '" + nodeName + "'");
        }
        store.vdi(disk); // an unknown disk is reported as such
        // Fails (exit 8) while ZooKeeper is away, before the holder gives anything back: a disk given back
        // that nobody can take would go unserved until it returns.
        locks.members();
        long start = System.nanoTime();
        List<String> request = List.of(AdminServer.FORWARDED, "give-back", path.toAbsolutePath().toString(), disk);
        for (Path peer : AdminEndpoint.nodeSockets(path)) {
            if (peer.equals(AdminEndpoint.socketFor(path, nodeName))) {
                continue;
            }
            java.util.Optional<AdminProtocol.Response> answer = AdminClient.send(peer, path, request);
            if (answer.isPresent() && answer.get().exitCode() == ExitCodes.OK) {
                break;
            }
            if (answer.isPresent() && answer.get().exitCode() != ExitCodes.NOT_HOLDER) {
                throw CommandFailure.relayed(answer.get().exitCode(), "the node holding disk '" + disk + "' could not give it back: "
                        + answer.get().err().strip());
            }
        }
        // Given back, or its holder is dead: then its lease expires within one lease timeout.
        if (!current.take(store.vdi(disk), timeouts.lease().multipliedBy(2))) {
            throw new IllegalStateException("could not take disk '" + disk + "': another node holds its lease");
        }
        return System.nanoTime() - start;
    }

    /** Migration, on the node holding the disk: ends its connections, makes it durable, releases it. */
    void giveBack(String disk) {
        ClusterNode current = requireStarted();
        VdiInfo info = store.vdi(disk);
        if (!store.heldVdis().contains(disk)) {
            throw new Store.NotHeldException("disk '" + disk + "' is not held by node '" + nodeName + "'");
        }
        java.util.function.Predicate<String> exportsOfDisk = export -> export.equals(disk) || export.startsWith(disk + "@");
        // No new connection gets the disk here from now on (a client reconnecting at once waits for the next
        // holder); then the connections it has end, it is released, and any connection that opened it in between
        // (after the catalog looked, before the first disconnect saw it) ends too: it would fail every write.
        StoreExportCatalog exports = catalog;
        if (exports != null) {
            exports.beginHandover(disk);
        }
        try {
            int ended = nbd.disconnect(exportsOfDisk);
            current.giveBack(info);
            ended += nbd.disconnect(exportsOfDisk);
            LOG.info("gave disk '{}' back for migration ({} connection(s) ended)", disk, ended);
        } finally {
            if (exports != null) {
                exports.endHandover(disk);
            }
        }
    }

    /**
     * {@code cairn gc} on this node: only the node elected for role {@code gc} collects (the others answer
     * {@link ExitCodes#NOT_HOLDER}, so the admin socket passes the command on to it), under lock {@code gc}, so
     * that two nodes that both believe they lead for a moment do not both start. The collection itself holds every
     * node process of the host at a commit point for its checkpoint (io.cairn.volume.CollectionBarrier) and
     * lowers counters only by CAS; the nodes keep serving.
     */
    GcReport collectGarbage() {
        requireStarted();
        Election election = gcElection;
        if (!election.isLeader()) {
            throw new Store.NotHeldException("node '" + nodeName + "' does not collect garbage; the elected node ("
                    + election.leader().orElse("none elected yet") + ") does");
        }
        Lease lease;
        try {
            lease = locks.acquire(GC_ROLE, Duration.ZERO);
        } catch (LockHeldException held) {
            throw new IllegalStateException("a garbage collection is running elsewhere: " + held.getMessage());
        }
        try {
            GcReport report = GarbageCollector.collect(store);
            LOG.info("garbage collection: {} leak(s), {} block(s) freed", report.leaks().size(), report.blocksFreed());
            return report;
        } finally {
            lease.release();
        }
    }

    private ClusterNode requireStarted() {
        ClusterNode current = node;
        if (current == null) {
            throw new IllegalStateException("node '" + nodeName + "' has not joined its cluster yet");
        }
        return current;
    }

    private void adoptQuietly() {
        ClusterNode current = node;
        if (current != null) {
            try {
                current.adopt();
            } catch (RuntimeException problem) {
                LOG.warn("taking disks after an admin command failed: {}", problem.toString());
            }
        }
    }

    /** Leaves the cluster: releases every lease (call after the store is closed, so all is durable). */
    @Override
    public void close() {
        ClusterNode current = node;
        if (current != null) {
            current.close();
        }
        Election election = gcElection;
        if (election != null) {
            election.close();
        }
        if (locks != null) {
            locks.close();
        }
    }
}
