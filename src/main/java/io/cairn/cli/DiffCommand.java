package io.cairn.cli;

import io.cairn.space.Changes;
import io.cairn.volume.Store;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "diff",
        description = {"List the byte ranges that changed from one version of a disk to another.",
            "Walks both trees at once and skips whatever they share, so the cost follows the change, not the"
                    + " disk's size. 'zero' ranges read as zeros in TO (discarded); 'data' ranges hold new data."})
final class DiffCommand extends StoreCommand {

    @Parameters(index = "1", paramLabel = "FROM", description = "NAME@SNAP, or a disk; e.g. the snapshot a clone came from.")
    String from;

    @Parameters(index = "2", paramLabel = "TO", description = "NAME@SNAP, or NAME for the disk as it is now.")
    String to;

    @Option(names = "--json", description = "Print JSON (bytes) instead of a table.")
    boolean json;

    @Override
    void run() {
        Changes.ChangeSet changes;
        try (Store opened = store.openForReading()) {
            changes = Changes.between(opened, from, to);
        }
        if (json) {
            printJson(changes);
        } else {
            printTable(changes);
        }
    }

    private void printTable(Changes.ChangeSet changes) {
        Table table = new Table("OFFSET", "LENGTH", "CHANGE").alignRight(0, 1);
        for (Changes.ChangedRange range : changes.ranges()) {
            table.row(range.offsetBytes(), range.lengthBytes(), range.zero() ? "zero" : "data");
        }
        table.print(out());
        out().println(changes.ranges().size() + " ranges, " + Sizes.human(changes.changedBytes()) + " changed ("
                + Sizes.human(changes.zeroBytes()) + " now zeros) from " + changes.from().describe() + " to "
                + changes.to().describe() + "; " + changes.nodesVisited() + " radix nodes read in "
                + String.format(Locale.ROOT, "%.2f", changes.elapsedNanos() / 1e6) + " ms");
    }

    private void printJson(Changes.ChangeSet changes) {
        Json json = new Json().beginObject()
                .field("from", changes.from().reference())
                .field("to", changes.to().reference())
                .field("sizeBytes", changes.to().sizeBytes())
                .field("changedBytes", changes.changedBytes())
                .field("zeroBytes", changes.zeroBytes())
                .field("nodesVisited", changes.nodesVisited())
                .field("elapsedMicros", changes.elapsedNanos() / 1000)
                .name("ranges").beginArray();
        for (Changes.ChangedRange range : changes.ranges()) {
            json.beginObject()
                    .field("offset", range.offsetBytes())
                    .field("length", range.lengthBytes())
                    .field("zero", range.zero())
                    .endObject();
        }
        out().println(json.endArray().endObject());
    }
}
