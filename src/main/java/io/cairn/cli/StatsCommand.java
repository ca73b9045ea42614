package io.cairn.cli;

import io.cairn.tree.TreeSpace;
import io.cairn.volume.LatencyHistogram;
import io.cairn.volume.OperationLatencies;
import io.cairn.volume.Store;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "stats",
        description = {"Latencies a running server measured: snapshots and clones taken (and of that, the wait for",
                "the store's metadata lock) and durable, commits;",
                "and the copy-on-write its disks' writes did: tree nodes copied (shared by a snapshot or clone)",
                "and moved (made durable by a commit).",
                "Percentiles are at most 3% high (bucketed); maxima and counts are exact."})
final class StatsCommand extends StoreCommand {

    @Option(names = "--json", description = "Print JSON (nanoseconds) instead of a table.")
    boolean json;

    @Option(names = "--reset", description = "Start the figures afresh after printing them.")
    boolean reset;

    @Override
    void run() {
        Store served = LiveStores.requireServed(store.path, "cairn stats").store();
        OperationLatencies.Report report = served.latencies().report();
        TreeSpace.Shadows shadows = served.shadows(reset);
        if (reset) {
            served.latencies().reset();
        }
        Map<String, LatencyHistogram.Summary> rows = new LinkedHashMap<>();
        rows.put("snapshot taken", report.snapshotTaken());
        rows.put("snapshot lock wait", report.snapshotLockWait());
        rows.put("snapshot durable", report.snapshotDurable());
        rows.put("clone taken", report.cloneTaken());
        rows.put("clone lock wait", report.cloneLockWait());
        rows.put("clone durable", report.cloneDurable());
        rows.put("commit", report.commits());
        if (json) {
            Json out = new Json().beginObject();
            for (Map.Entry<String, LatencyHistogram.Summary> row : rows.entrySet()) {
                LatencyHistogram.Summary summary = row.getValue();
                out.name(row.getKey().replace(' ', '_')).beginObject()
                        .field("count", summary.count())
                        .field("p50Nanos", summary.p50Nanos())
                        .field("p90Nanos", summary.p90Nanos())
                        .field("p99Nanos", summary.p99Nanos())
                        .field("p999Nanos", summary.p999Nanos())
                        .field("maxNanos", summary.maxNanos())
                        .field("meanNanos", summary.meanNanos())
                        .endObject();
            }
            out.name("copy_on_write").beginObject()
                    .field("leavesCopied", shadows.leavesCopied())
                    .field("innerNodesCopied", shadows.innerNodesCopied())
                    .field("nodesMoved", shadows.nodesMoved())
                    .endObject();
            out().println(out.endObject());
            return;
        }
        Table table = new Table("OPERATION", "COUNT", "P50", "P90", "P99", "P99.9", "MAX", "MEAN").alignRight(1, 2, 3, 4, 5, 6, 7);
        for (Map.Entry<String, LatencyHistogram.Summary> row : rows.entrySet()) {
            LatencyHistogram.Summary summary = row.getValue();
            if (summary.count() == 0) {
                table.row(row.getKey(), 0, "-", "-", "-", "-", "-", "-");
            } else {
                table.row(row.getKey(), summary.count(), time(summary.p50Nanos()), time(summary.p90Nanos()),
                        time(summary.p99Nanos()), time(summary.p999Nanos()), time(summary.maxNanos()),
                        time(summary.meanNanos()));
            }
        }
        table.print(out());
        out().printf(Locale.ROOT, "copy-on-write: %d leaves and %d inner nodes copied (shared), %d nodes moved (durable)%n",
                shadows.leavesCopied(), shadows.innerNodesCopied(), shadows.nodesMoved());
    }

    /** Three significant digits in us, ms or s. */
    static String time(long nanos) {
        if (nanos < 1_000_000) {
            return String.format(Locale.ROOT, "%.1fus", nanos / 1e3);
        }
        if (nanos < 1_000_000_000) {
            return String.format(Locale.ROOT, "%.2fms", nanos / 1e6);
        }
        return String.format(Locale.ROOT, "%.2fs", nanos / 1e9);
    }
}
