package io.cairn.cli;

import io.cairn.space.DiskUsage;
import io.cairn.space.SpaceAccounting;
import io.cairn.volume.Store;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "du",
        description = {"Show exact space use of each disk and snapshot, and of the store.",
            "MAPPED: data and radix-node blocks it references. EXCLUSIVE: what deleting it alone frees."
                    + " SHARED: MAPPED - EXCLUSIVE. WRITTEN: data written since SINCE (for a disk its newest"
                    + " snapshot, for a snapshot the one before it; a clone starts from its parent)."})
final class DuCommand extends StoreCommand {

    @Parameters(index = "1", arity = "0..1", paramLabel = "NAME[@SNAP]",
            description = "Only this disk (and its snapshots), or only this snapshot.")
    String selection;

    @Option(names = "--json", description = "Print JSON (bytes) instead of a table.")
    boolean json;

    @Option(names = "--estimate", description = "Estimate what snapshots hold and what deleting them would free from"
            + " their sketches instead of walking trees (NAME@A..B selects a range of snapshots).")
    boolean estimate;

    @Option(names = "--save", description = "With --estimate: store the sketches computed for the report.")
    boolean save;

    @Override
    void run() {
        if (estimate) {
            new DuEstimate(store, out(), selection, json, save).run();
            return;
        }
        if (save) {
            throw CommandFailure.usage("--save goes with --estimate");
        }
        DiskUsage.Report report;
        try (Store opened = store.openForReading()) {
            report = DiskUsage.report(opened, selection);
        }
        if (json) {
            printJson(report);
        } else {
            printTable(report);
        }
    }

    private void printTable(DiskUsage.Report report) {
        Table table = new Table("NAME", "SIZE", "MAPPED", "EXCLUSIVE", "SHARED", "WRITTEN", "SINCE").alignRight(1, 2, 3, 4, 5);
        for (DiskUsage.Entry entry : report.entries()) {
            SpaceAccounting.Usage usage = entry.usage();
            table.row(entry.version().describe(), Sizes.human(entry.version().sizeBytes()), Sizes.human(usage.mappedBytes()),
                    Sizes.human(usage.exclusiveBytes()), Sizes.human(usage.sharedBytes()), Sizes.human(entry.writtenBytes()),
                    entry.baseline() == null ? "-" : entry.baseline().reference());
        }
        table.print(out());
        Store.StoreSpace space = report.store();
        out().println("store: " + Sizes.human(space.totalBytes()) + ", " + Sizes.human(used(space)) + " used (data "
                + Sizes.human(space.dataBytes()) + ", metadata " + Sizes.human(space.metadataBytes()) + "), "
                + Sizes.human(space.freeBytes()) + " free");
        if (report.pendingReleases() > 0) {
            out().println("note: " + report.pendingReleases() + " removals are not yet applied (read-only store);"
                    + " exclusive figures may be low");
        }
    }

    private void printJson(DiskUsage.Report report) {
        Store.StoreSpace space = report.store();
        Json json = new Json().beginObject()
                .field("store", store.path.toString())
                .name("space").beginObject()
                .field("totalBytes", space.totalBytes())
                .field("usedBytes", used(space))
                .field("dataBytes", space.dataBytes())
                .field("metadataBytes", space.metadataBytes())
                .field("freeBytes", space.freeBytes())
                .endObject()
                .field("pendingReleases", report.pendingReleases())
                .name("entries").beginArray();
        for (DiskUsage.Entry entry : report.entries()) {
            SpaceAccounting.Usage usage = entry.usage();
            json.beginObject()
                    .field("reference", entry.version().reference())
                    .field("kind", entry.version().isLive() ? "disk" : "snapshot")
                    .field("disk", entry.version().vdiName())
                    .field("label", entry.version().label().isEmpty() ? null : entry.version().label())
                    .field("sizeBytes", entry.version().sizeBytes())
                    .field("mappedBytes", usage.mappedBytes())
                    .field("exclusiveBytes", usage.exclusiveBytes())
                    .field("sharedBytes", usage.sharedBytes())
                    .field("writtenBytes", entry.writtenBytes())
                    .field("since", entry.baseline() == null ? null : entry.baseline().reference())
                    .field("mappedDataBlocks", usage.mappedDataBlocks())
                    .field("mappedNodeBlocks", usage.mappedNodeBlocks())
                    .field("exclusiveDataBlocks", usage.exclusiveDataBlocks())
                    .field("exclusiveNodeBlocks", usage.exclusiveNodeBlocks())
                    .endObject();
        }
        out().println(json.endArray().endObject());
    }

    private static long used(Store.StoreSpace space) {
        return space.dataBytes() + space.metadataBytes();
    }
}
