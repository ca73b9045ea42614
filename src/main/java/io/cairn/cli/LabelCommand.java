package io.cairn.cli;

import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.Store;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

@Command(name = "label", description = "Set the label of a snapshot.")
final class LabelCommand extends StoreCommand {

    @Parameters(index = "1", paramLabel = "NAME@SNAP", description = "The snapshot, by id or current label.")
    String snapshot;

    @Parameters(index = "2", paramLabel = "TEXT", description = "The new label (\"\" clears it).")
    String label;

    @Override
    void run() {
        try (Store opened = store.openForChanges()) {
            SnapshotInfo target = opened.snapshotInfo(snapshot);
            Conflicts.requireFreeLabel(opened, target.vdiName(), label, target.id());
            SnapshotInfo labelled = opened.label(snapshot, label);
            out().println(labelled.label().isEmpty() ? "cleared the label of " + labelled.reference()
                    : "labelled " + labelled.reference() + " " + labelled.label());
        }
    }
}
