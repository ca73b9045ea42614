package io.cairn.cli;

import io.cairn.volume.Store;

/**
 * Checks for names already taken, made before changing anything so that they report a conflict
 * (exit 4) rather than bad input. The command holds the store's exclusive owner lock, so nothing can
 * take the name between the check and the change.
 */
final class Conflicts {

    private Conflicts() {
    }

    static void requireNoDisk(Store store, String name) {
        if (store.hasDisk(name)) { // a lookup: a walk of every disk under the metadata lock delayed snapshots and clones
            throw CommandFailure.conflict("a disk named '" + name + "' already exists");
        }
    }

    /**
     * A label names one live snapshot per disk; {@code exceptId} may already carry it (relabelling).
     * The empty label means none, which any number of snapshots may have.
     */
    static void requireFreeLabel(Store store, String diskName, String label, long exceptId) {
        if (label.isEmpty()) {
            return;
        }
        // The label index, not the snapshot log: a disk under a schedule has thousands of snapshots, deleted ones too.
        store.labelled(diskName, label).filter(snapshot -> snapshot.id() != exceptId).ifPresent(snapshot -> {
            throw CommandFailure.conflict("disk '" + diskName + "' already has a snapshot labelled '" + label
                    + "' (id " + snapshot.id() + ")");
        });
    }
}
