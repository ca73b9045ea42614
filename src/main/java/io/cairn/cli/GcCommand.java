package io.cairn.cli;

import io.cairn.gc.CheckReport;
import io.cairn.gc.GarbageCollector;
import io.cairn.gc.GcReport;
import io.cairn.volume.Store;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.Locale;

/**
 * {@code cairn gc}: the online garbage collector (seed 003 Algorithm 1). Gives back the space that
 * crashes leaked — counters above the number of references, allocated blocks nothing reaches — and
 * reports how fast it scanned, in GB of blockstore per second. On a running server's store it runs in
 * the server while clients go on: they pause only for the checkpoint and for the counter update, not
 * for the scan. On a node of a cluster the node elected for role {@code gc} collects for the whole store
 * (the others answer exit 9 and their admin socket passes the command on). Exit status: 0 (leaks collected or
 * none), 7 damage found (nothing changed).
 */
@Command(name = "gc", mixinStandardHelpOptions = true,
        description = "Collect leaked blocks online (clients keep running); exit 0, or 7 if damage was found.")
final class GcCommand extends StoreCommand {

    @Option(names = "--json", description = "Print the report as JSON.")
    boolean json;

    private int exitCode;

    @Override
    void run() {
        try (Store opened = store.openForChanges()) {
            if (!opened.damage().isEmpty()) {
                // A store damaged when opened is read-only: nothing may be freed, and the scan could not see
                // what the damage hides. Say so, like check.
                for (String damage : opened.damage()) {
                    err().println("cairn: damage found while opening: " + damage);
                }
                err().println("cairn: nothing collected; run cairn check for the full report");
                exitCode = ExitCodes.CHECK_DAMAGE;
                return;
            }
            ClusterServing cluster = LiveStores.clusterOf(store.path);
            // A node of several: the node elected for the role collects for the whole store.
            GcReport report = cluster != null ? cluster.collectGarbage() : GarbageCollector.collect(opened);
            if (json) {
                printJson(report);
            } else {
                printText(report);
            }
            exitCode = report.damaged() ? ExitCodes.CHECK_DAMAGE : ExitCodes.OK;
        }
    }

    @Override
    int exitCode() {
        return exitCode;
    }

    private void printText(GcReport report) {
        out().println(report.summary().stripTrailing());
        String verdict = report.damaged() ? "DAMAGED: nothing collected (run cairn check)"
                : report.leaks().isEmpty() ? "no garbage"
                : "collected " + report.leaks().size() + " leak(s), " + Sizes.human(report.bytesFreed()) + " freed";
        out().println(verdict + String.format(Locale.ROOT, " (%.2f GB/s)", report.gigabytesPerSecond()));
    }

    private void printJson(GcReport report) {
        Json json = new Json().beginObject()
                .field("store", store.path.toString())
                .field("verdict", report.damaged() ? "damaged" : report.leaks().isEmpty() ? "clean" : "collected")
                .field("storeBytes", report.storeBytes())
                .field("rootsPinned", report.rootsPinned())
                .field("blocksScanned", report.blocksScanned())
                .field("nodesScanned", report.nodesScanned())
                .field("tablePagesScanned", report.tablePagesScanned())
                .field("blocksAllocated", report.blocksAllocated())
                .field("leaks", report.leaks().size())
                .field("referencesRemoved", report.referencesRemoved())
                .field("blocksFreed", report.blocksFreed())
                .field("bytesFreed", report.bytesFreed())
                .field("scanMicros", report.scanNanos() / 1_000)
                .field("pauseMicros", report.pauseNanos() / 1_000)
                // Whole numbers only (the CLI prints no fractions): the rate in bytes of blockstore per second.
                .field("bytesPerSecond", Math.round(report.gigabytesPerSecond() * 1e9));
        json.name("damage").beginArray();
        for (CheckReport.Finding finding : report.damage()) {
            json.beginObject().field("kind", finding.kind().name()).field("block", finding.block())
                    .field("counter", finding.counter()).field("trueCount", finding.trueCount())
                    .field("detail", finding.detail()).endObject();
        }
        json.endArray();
        json.name("leakFindings").beginArray();
        for (CheckReport.Finding finding : report.leaks()) {
            json.beginObject().field("kind", finding.kind().name()).field("block", finding.block())
                    .field("counter", finding.counter()).field("trueCount", finding.trueCount()).endObject();
        }
        json.endArray().endObject();
        out().println(json);
    }
}
