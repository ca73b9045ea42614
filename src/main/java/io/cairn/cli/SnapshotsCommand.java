package io.cairn.cli;

import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.Store;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "snapshots",
        description = "List a disk's snapshots, oldest first: id, time taken, label.")
final class SnapshotsCommand extends StoreCommand {

    @Parameters(index = "1", paramLabel = "NAME", description = "The disk.")
    String name;

    @Option(names = "--json", description = "Print JSON (sizes in bytes) instead of a table.")
    boolean json;

    @Override
    void run() {
        List<SnapshotInfo> snapshots;
        try (Store opened = store.openForReading()) {
            snapshots = opened.snapshots(name);
        }
        if (json) {
            printJson(snapshots);
        } else {
            printTable(snapshots);
        }
    }

    private void printTable(List<SnapshotInfo> snapshots) {
        Table table = new Table("ID", "TAKEN", "SIZE", "LABEL").alignRight(0, 2);
        for (SnapshotInfo snapshot : snapshots) {
            table.row(snapshot.id(), Times.iso(snapshot.takenMillis()), Sizes.human(snapshot.sizeBytes()),
                    snapshot.label().isEmpty() ? "-" : snapshot.label());
        }
        table.print(out());
    }

    private void printJson(List<SnapshotInfo> snapshots) {
        Json json = new Json().beginObject().field("disk", name).name("snapshots").beginArray();
        for (SnapshotInfo snapshot : snapshots) {
            json.beginObject()
                    .field("id", snapshot.id())
                    .field("reference", snapshot.reference())
                    .field("taken", Times.iso(snapshot.takenMillis()))
                    .field("sizeBytes", snapshot.sizeBytes())
                    .field("label", snapshot.label().isEmpty() ? null : snapshot.label())
                    .endObject();
        }
        out().println(json.endArray().endObject());
    }
}
