package io.cairn.cli;

import io.cairn.format.CounterEncoding;
import io.cairn.format.Layout;
import io.cairn.format.StoreGeometry;
import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.Store;
import io.cairn.volume.VdiInfo;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "info",
        description = "Show the store's id, size, space use and how many disks and snapshots it holds.")
final class InfoCommand extends StoreCommand {

    @Option(names = "--json", description = "Print JSON (sizes in bytes) instead of text.")
    boolean json;

    /** Everything the command prints, gathered while the store is open. */
    private record Facts(String storeId, StoreGeometry geometry, long generation, Store.StoreSpace space,
                         long disks, long deletedDisks, long snapshots, long deletedSnapshots) {
    }

    @Override
    void run() {
        Facts facts;
        try (Store opened = store.openForReading()) {
            List<VdiInfo> disks = opened.listVdis(true);
            List<SnapshotInfo> snapshots = opened.allSnapshots();
            long deletedDisks = disks.stream().filter(VdiInfo::deleted).count();
            long deletedSnapshots = snapshots.stream().filter(SnapshotInfo::deleted).count();
            facts = new Facts(opened.storeId().toString(), opened.geometry(), opened.durableGeneration(),
                    opened.spaceReport(), disks.size() - deletedDisks, deletedDisks,
                    snapshots.size() - deletedSnapshots, deletedSnapshots);
        }
        if (json) {
            printJson(facts);
        } else {
            printText(facts);
        }
    }

    private void printText(Facts facts) {
        long extentBytes = (long) facts.geometry.extentBlocks() * Layout.BLOCK_BYTES;
        Table table = new Table("store", store.path.toString());
        table.row("id", facts.storeId)
                .row("size", described(facts.space.totalBytes()))
                .row("extents", facts.geometry.extentCount() + " of " + Sizes.human(extentBytes))
                .row("counters", counters(facts.geometry.counterEncoding()))
                .row("generation", facts.generation)
                .row("disks", facts.disks + (facts.deletedDisks > 0 ? " (and " + facts.deletedDisks + " deleted)" : ""))
                .row("snapshots", facts.snapshots
                        + (facts.deletedSnapshots > 0 ? " (and " + facts.deletedSnapshots + " deleted)" : ""))
                .row("data", described(facts.space.dataBytes()))
                .row("metadata", described(facts.space.metadataBytes()))
                .row("free", described(facts.space.freeBytes()));
        table.print(out());
    }

    /** The store's reference counters: their width, and how many references a block takes before sharing copies it. */
    private static String counters(CounterEncoding encoding) {
        return encoding.counterBytes() + (encoding.counterBytes() == 1 ? " byte" : " bytes") + ", up to "
                + encoding.maxCount() + " references";
    }

    private static String described(long bytes) {
        return Sizes.human(bytes) + " (" + bytes + " bytes)";
    }

    private void printJson(Facts facts) {
        Json json = new Json().beginObject()
                .field("store", store.path.toString())
                .field("id", facts.storeId)
                .field("sizeBytes", facts.space.totalBytes())
                .field("extentBytes", (long) facts.geometry.extentBlocks() * Layout.BLOCK_BYTES)
                .field("extents", facts.geometry.extentCount())
                .field("counterBytes", facts.geometry.counterEncoding().counterBytes())
                .field("maxReferences", facts.geometry.counterEncoding().maxCount())
                .field("generation", facts.generation)
                .field("disks", facts.disks)
                .field("deletedDisks", facts.deletedDisks)
                .field("snapshots", facts.snapshots)
                .field("deletedSnapshots", facts.deletedSnapshots)
                .name("space").beginObject()
                .field("totalBytes", facts.space.totalBytes())
                .field("dataBytes", facts.space.dataBytes())
                .field("metadataBytes", facts.space.metadataBytes())
                .field("freeBytes", facts.space.freeBytes())
                .endObject();
        out().println(json.endObject());
    }
}
