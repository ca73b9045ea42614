package io.cairn.nbd.store;

import io.cairn.nbd.ExportCatalog;
import io.cairn.nbd.ExportDescription;
import io.cairn.nbd.NbdExport;
import io.cairn.nbd.NoSuchExportException;
import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.Store;
import io.cairn.volume.VdiInfo;

import java.util.ArrayList;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Optional;

/**
 * The store's disks and snapshots as NBD exports: {@code NAME} is the writable disk, {@code NAME@ID}
 * or {@code NAME@LABEL} a read-only snapshot (DESIGN §5). Every call asks the store afresh, so disks
 * and snapshots made while the server runs are served at once.
 */
public final class StoreExportCatalog implements ExportCatalog {

    private final Store store;
    private final String defaultExport;
    private final java.util.function.Predicate<String> writeThrough;

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
        this.store = store;
        this.defaultExport = defaultExport;
        this.writeThrough = writeThrough;
    }

    @Override
    public List<ExportDescription> list() {
        List<ExportDescription> exports = new ArrayList<>();
        java.util.Set<String> held = store.isShared() ? new java.util.HashSet<>(store.heldVdis()) : null;
        for (VdiInfo vdi : store.listVdis(false)) {
            if (held != null && !held.contains(vdi.name())) {
                continue; // served by the node that holds it
            }
            exports.add(new ExportDescription(vdi.name(), "disk, " + vdi.sizeBytes() + " bytes"
                    + (vdi.parentName() == null ? "" : ", clone of " + vdi.parentName())));
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
        try {
            return new VolumeExport(store.openVolume(name), writeThrough.test(name));
        } catch (NoSuchElementException | IllegalArgumentException | Store.NotHeldException unknown) {
            // A disk another node holds is not an export of this node.
            throw new NoSuchExportException(name);
        }
    }

    @Override
    public Optional<String> defaultExportName() {
        return Optional.ofNullable(defaultExport);
    }
}
