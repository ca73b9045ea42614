package io.cairn.cli;

import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.Store;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "snapshot",
        description = {"Take a snapshot of a disk and print its id once the snapshot is durable.",
                "On a running server the snapshot shares a commit with other changes made meanwhile."})
final class SnapshotCommand extends StoreCommand {

    @Parameters(index = "1", paramLabel = "NAME", description = "The disk.")
    String name;

    @Option(names = "--label", paramLabel = "TEXT", description = "A label that names the snapshot as well as its id.")
    String label;

    @Option(names = "--no-wait", description = "On a running server: print the id as soon as the snapshot is taken;"
            + " the server commits it in the background (a power loss before that commit loses it).")
    boolean noWait;

    @Override
    void run() {
        Store opened = store.openForChanges();
        try {
            if (label != null && !label.isEmpty()) {
                opened.vdi(name); // an unknown disk is reported as such, not as a label problem
                Conflicts.requireFreeLabel(opened, name, label, 0);
            }
            SnapshotInfo snapshot = opened.snapshot(name, label);
            // Only the id, so that scripts can capture it: snap=$(cairn snapshot STORE NAME)
            out().println(snapshot.id());
        } finally {
            opened.release(!noWait);
        }
    }
}
