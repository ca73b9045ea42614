package io.cairn.cli;

import io.cairn.volume.Store;
import io.cairn.volume.VdiInfo;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "list",
        description = "List the disks: name, id, size, the snapshot a clone came from, snapshot count, creation time.")
final class ListCommand extends StoreCommand {

    @Option(names = "--json", description = "Print JSON (sizes in bytes) instead of a table.")
    boolean json;

    @Override
    void run() {
        List<VdiInfo> disks;
        try (Store opened = store.openForReading()) {
            disks = opened.listVdis(false);
        }
        if (json) {
            printJson(disks);
        } else {
            printTable(disks);
        }
    }

    private void printTable(List<VdiInfo> disks) {
        Table table = new Table("NAME", "ID", "SIZE", "PARENT", "SNAPSHOTS", "CREATED").alignRight(1, 2, 4);
        for (VdiInfo disk : disks) {
            table.row(disk.name(), disk.id(), Sizes.human(disk.sizeBytes()), parent(disk), disk.snapshotCount(),
                    Times.iso(disk.createdMillis()));
        }
        table.print(out());
    }

    private void printJson(List<VdiInfo> disks) {
        Json json = new Json().beginObject().name("disks").beginArray();
        for (VdiInfo disk : disks) {
            json.beginObject()
                    .field("name", disk.name())
                    .field("id", disk.id())
                    .field("sizeBytes", disk.sizeBytes())
                    .field("parent", disk.parentSnapshotId() == 0 ? null : parent(disk))
                    .field("snapshots", disk.snapshotCount())
                    .field("created", Times.iso(disk.createdMillis()))
                    .endObject();
        }
        out().println(json.endArray().endObject());
    }

    /** The parent as NAME@ID; the engine leaves the name out if the parent's record is gone. */
    private static String parent(VdiInfo disk) {
        if (disk.parentSnapshotId() == 0) {
            return "-";
        }
        return disk.parentName() != null ? disk.parentName() : "snapshot " + disk.parentSnapshotId();
    }
}
