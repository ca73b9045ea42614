package io.cairn.space;

import io.cairn.tree.RootRef;
import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.Store;
import io.cairn.volume.VdiInfo;

import java.util.HashMap;
import java.util.Map;

/**
 * A disk at one point in time: one of its snapshots, or the live disk ({@code snapshotId} 0), with the
 * root of its tree as it is now.
 *
 * @param label the snapshot's label, empty if it has none (and for the live disk)
 */
public record DiskVersion(String vdiName, long vdiId, long snapshotId, String label, long sizeBytes, long root,
                          int height) {

    public boolean isLive() {
        return snapshotId == 0;
    }

    /** {@code NAME} for the live disk, {@code NAME@ID} for a snapshot. */
    public String reference() {
        return isLive() ? vdiName : vdiName + "@" + snapshotId;
    }

    /** The reference with the label when there is one: {@code NAME@ID (LABEL)}. */
    public String describe() {
        return label.isEmpty() ? reference() : reference() + " (" + label + ")";
    }

    /**
     * Resolves {@code NAME} (the live disk) or {@code NAME@ID} / {@code NAME@LABEL} (a snapshot). Call
     * inside {@link Store#inspect} so the root stays what it is while it is used.
     *
     * @throws java.util.NoSuchElementException if nothing has that name
     * @throws IllegalArgumentException         if the reference is malformed
     */
    static DiskVersion resolve(Store store, Store.Internals internals, String reference) {
        if (reference.indexOf('@') >= 0) {
            SnapshotInfo snapshot = store.snapshotInfo(reference);
            return ofSnapshot(snapshot, internals.snapshotRoots().get(snapshot.id()));
        }
        VdiInfo vdi = store.vdi(reference);
        return ofLive(vdi, internals.vdiRoots().get(vdi.id()));
    }

    static DiskVersion ofSnapshot(SnapshotInfo snapshot, RootRef root) {
        return new DiskVersion(snapshot.vdiName(), snapshot.vdiId(), snapshot.id(), snapshot.label(),
                snapshot.sizeBytes(), root.root(), root.height());
    }

    static DiskVersion ofLive(VdiInfo vdi, RootRef root) {
        return new DiskVersion(vdi.name(), vdi.id(), 0, "", vdi.sizeBytes(), root.root(), root.height());
    }

    /**
     * The id of the disk at the top of {@code vdiId}'s family: follow "clone of" links up to a disk that
     * was created empty or imported. Two disks are of one family when they have the same top.
     */
    static long familyOf(Store store, long vdiId) {
        Map<Long, VdiInfo> disks = new HashMap<>();
        for (VdiInfo vdi : store.listVdis(true)) {
            disks.put(vdi.id(), vdi);
        }
        Map<Long, SnapshotInfo> snapshots = new HashMap<>();
        for (SnapshotInfo snapshot : store.allSnapshots()) {
            snapshots.put(snapshot.id(), snapshot);
        }
        long current = vdiId;
        for (int guard = 0; guard <= disks.size(); guard++) {
            VdiInfo vdi = disks.get(current);
            SnapshotInfo parent = vdi == null ? null : snapshots.get(vdi.parentSnapshotId());
            if (parent == null) {
                return current;
            }
            current = parent.vdiId();
        }
        throw new IllegalStateException("the clone links above disk " + vdiId + " form a loop");
    }
}
