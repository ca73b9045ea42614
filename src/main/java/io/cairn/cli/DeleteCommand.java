package io.cairn.cli;

import io.cairn.volume.Store;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "delete",
        description = "Delete a disk (NAME) or a snapshot (NAME@SNAP). Clones of a deleted snapshot keep working.")
final class DeleteCommand extends StoreCommand {

    @Parameters(index = "1", paramLabel = "NAME|NAME@SNAP", description = "The disk or snapshot to delete.")
    String target;

    @Option(names = "--with-snapshots", description = "Delete a disk together with its snapshots.")
    boolean withSnapshots;

    @Override
    void run() {
        boolean isSnapshot = target.indexOf('@') >= 0;
        if (isSnapshot && withSnapshots) {
            throw CommandFailure.usage("--with-snapshots applies to disks; '" + target + "' is a snapshot");
        }
        try (Store opened = store.openForChanges()) {
            if (isSnapshot) {
                String reference = opened.snapshotInfo(target).reference();
                opened.deleteSnapshot(target);
                out().println("deleted snapshot " + reference);
            } else {
                int snapshotCount = opened.vdi(target).snapshotCount();
                if (snapshotCount > 0 && !withSnapshots) {
                    throw CommandFailure.conflict("disk '" + target + "' has " + snapshotCount
                            + " snapshot(s); delete them first or pass --with-snapshots");
                }
                opened.deleteVdi(target, withSnapshots);
                out().println("deleted disk " + target
                        + (snapshotCount > 0 ? " and its " + snapshotCount + " snapshot(s)" : ""));
            }
        }
    }
}
