package io.cairn.nbd.store;

import io.cairn.nbd.ExportCatalog;
import io.cairn.nbd.ExportDescription;
import io.cairn.nbd.NbdExport;
import io.cairn.nbd.NoSuchExportException;
import io.cairn.nbd.ServedElsewhereException;
import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.Store;
import io.cairn.volume.VdiInfo;

import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Optional;

/**
 * The store's disks and snapshots as NBD exports: {@code NAME} is the writable disk, {@code NAME@ID}
 * or {@code NAME@LABEL} a read-only snapshot (DESIGN §5). Every call asks the store afresh, so disks
 * and snapshots made while the server runs are served at once.
 *
 * <p>On a node of a cluster, the exports of a disk another node holds are served there: {@link #open} answers
 * with that node's address ({@link ServedElsewhereException}) and the connection is relayed to it. A disk
 * between holders (given back for a migration, or whose node died and whose lease has not run out yet) is
 * waited for, up to the hand-over wait, so that a client reconnecting in the middle of a migration reaches
 * the disk's next holder, whichever node that is.
 */
public final class StoreExportCatalog implements ExportCatalog {

    /** Where the nodes of a cluster serve NBD: the address of live node {@code nodeId}, if it is one. */
    @FunctionalInterface
    public interface NodeAddresses {
        Optional<InetSocketAddress> of(int nodeId);
    }

    /** How often a disk between holders is looked at again. */
    private static final long HANDOVER_POLL_MILLIS = 20;

    private final Store store;
    private final String defaultExport;
    private final java.util.function.Predicate<String> writeThrough;
    private final NodeAddresses nodes;
    private final Duration handoverWait;
    /** Disks this node is giving back ({@link #beginHandover}): not opened here any more, even while still held. */
    private final java.util.Set<String> leaving = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /**
     * @param defaultExport what a client gets for the empty export name; null for none
     */
    public StoreExportCatalog(Store store, String defaultExport) {
        this(store, defaultExport, name -> false);
    }

    /**
     * @param writeThrough which exports make every write durable before acknowledging it, as if each
     *                     carried FUA (for clients that never send FLUSH)
     */
    public StoreExportCatalog(Store store, String defaultExport, java.util.function.Predicate<String> writeThrough) {
        this(store, defaultExport, writeThrough, nodeId -> Optional.empty(), Duration.ZERO);
    }

    /**
     * A catalog of one node of a cluster.
     *
     * @param nodes        where the other nodes serve NBD
     * @param handoverWait how long a disk that no node serves right now is waited for before the client is told so
     */
    public StoreExportCatalog(Store store, String defaultExport, java.util.function.Predicate<String> writeThrough,
                              NodeAddresses nodes, Duration handoverWait) {
        this.store = store;
        this.defaultExport = defaultExport;
        this.writeThrough = writeThrough;
        this.nodes = nodes;
        this.handoverWait = handoverWait;
    }

    @Override
    public List<ExportDescription> list() {
        List<ExportDescription> exports = new ArrayList<>();
        java.util.Set<String> held = store.isShared() ? new java.util.HashSet<>(store.heldVdis()) : null;
        for (VdiInfo vdi : store.listVdis(false)) {
            // A disk another node holds is listed too: a connection to it is relayed to that node.
            String where = held == null || held.contains(vdi.name()) ? ""
                    : vdi.holderNode() == 0 ? ", moving between nodes" : ", served by node id " + vdi.holderNode();
            exports.add(new ExportDescription(vdi.name(), "disk, " + vdi.sizeBytes() + " bytes"
                    + (vdi.parentName() == null ? "" : ", clone of " + vdi.parentName()) + where));
            for (SnapshotInfo snapshot : store.snapshots(vdi.name())) {
                // A label reads better than an id; both open the same snapshot.
                String name = snapshot.label().isEmpty() ? snapshot.reference() : vdi.name() + "@" + snapshot.label();
                exports.add(new ExportDescription(name, "read-only snapshot " + snapshot.reference()));
            }
        }
        return exports;
    }

    @Override
    public NbdExport open(String name) throws NoSuchExportException {
        long deadline = System.nanoTime() + handoverWait.toNanos();
        String disk = diskOf(name);
        while (true) {
            String notHere;
            if (leaving.contains(disk)) {
                notHere = "disk '" + disk + "' is being given back by this node";
            } else {
                try {
                    return new VolumeExport(store.openVolume(name), writeThrough.test(name));
                } catch (NoSuchElementException | IllegalArgumentException unknown) {
                    throw new NoSuchExportException(name);
                } catch (Store.NotHeldException heldElsewhere) {
                    notHere = heldElsewhere.getMessage();
                }
            }
            Optional<InetSocketAddress> holder = holderAddress(name, disk);
            if (holder.isPresent()) {
                throw new ServedElsewhereException(name, holder.get());
            }
            if (System.nanoTime() - deadline >= 0) {
                throw new NoSuchExportException(name, "no node serves '" + name + "' now: " + notHere
                        + " (the disk is moving between nodes, or its node died and its lease has not run out)");
            }
            try {
                Thread.sleep(HANDOVER_POLL_MILLIS);
            } catch (InterruptedException interrupted) {
                Thread.currentThread().interrupt();
                throw new NoSuchExportException(name, "interrupted while waiting for a node to serve '" + name + "'");
            }
        }
    }

    /**
     * A migration starts on this node: from now on connections to {@code disk}'s exports are not served here
     * but wait for its next holder (and are relayed there), so that a client reconnecting at once, before the
     * disk is released, does not get it here again. {@link #endHandover} when the disk has been released.
     */
    public void beginHandover(String disk) {
        leaving.add(disk);
    }

    /** The disk given back ({@link #beginHandover}) is released, or stays here after all. */
    public void endHandover(String disk) {
        leaving.remove(disk);
    }

    /** The disk an export belongs to: {@code NAME} or {@code NAME@SNAPSHOT}. */
    private static String diskOf(String exportName) {
        int at = exportName.indexOf('@');
        return at < 0 ? exportName : exportName.substring(0, at);
    }

    /** The address of the live node whose lease the record of {@code disk} (export {@code name}'s) names, if any. */
    private Optional<InetSocketAddress> holderAddress(String name, String diskName) throws NoSuchExportException {
        VdiInfo disk;
        try {
            disk = store.vdi(diskName);
        } catch (NoSuchElementException | IllegalArgumentException unknown) {
            throw new NoSuchExportException(name);
        }
        long holder = disk.holderNode();
        if (holder == 0 || holder == store.node()) {
            return Optional.empty(); // given back, or being taken by this node
        }
        return nodes.of((int) holder);
    }

    @Override
    public Optional<String> defaultExportName() {
        return Optional.ofNullable(defaultExport);
    }
}
