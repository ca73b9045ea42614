package io.cairn.cli;

import io.cairn.gc.CheckReport;
import io.cairn.gc.Checker;
import io.cairn.volume.Store;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code cairn check}: recounts every reference like the garbage collector (seed 003 Algorithm 1) and
 * compares with the stored counters. Exit status: 0 clean, 6 leaks only, 7 damage. With
 * {@code --repair} leaks are fixed (and listed) and the exit status is 0 if nothing else was found;
 * damage is never repaired automatically. On a running server's store the check runs in the server:
 * clients pause for the scan.
 */
@Command(name = "check", mixinStandardHelpOptions = true,
        description = "Verify every reference and counter; exit 0 clean, 6 leaks only, 7 damage.")
final class CheckCommand extends StoreCommand {

    @Option(names = "--repair", description = "Set counters that are too high to the true count (leaks); never touches damage.")
    boolean repair;

    @Option(names = "--json", description = "Print the report as JSON.")
    boolean json;

    private int exitCode;

    @Override
    void run() {
        CheckReport report;
        long started = System.nanoTime();
        try (Store opened = repair ? store.openForChanges() : store.openForReading()) {
            for (String damage : opened.damage()) {
                err().println("cairn: damage found while opening: " + damage);
            }
            report = repair ? Checker.repair(opened) : Checker.check(opened);
            if (!opened.damage().isEmpty() && !report.damaged()) {
                exitCode = ExitCodes.CHECK_DAMAGE; // damage the scan could not see (e.g. a lost table page)
            }
        }
        long millis = (System.nanoTime() - started) / 1_000_000;
        if (json) {
            printJson(report, millis);
        } else {
            printText(report, millis);
        }
        if (exitCode == 0) {
            exitCode = report.damaged() ? ExitCodes.CHECK_DAMAGE
                    : report.leaks().isEmpty() || !report.repairs().isEmpty() ? ExitCodes.OK : ExitCodes.CHECK_LEAKS;
        }
    }

    @Override
    int exitCode() {
        return exitCode;
    }

    private void printText(CheckReport report, long millis) {
        out().println(report.summary());
        for (CheckReport.Finding finding : report.damage()) {
            out().println("damage: " + finding);
        }
        for (CheckReport.Finding finding : report.leaks()) {
            out().println("leak:   " + finding);
        }
        for (CheckReport.Repair change : report.repairs()) {
            out().println("repaired: " + change);
        }
        String verdict = report.damaged() ? "DAMAGED" : report.leaks().isEmpty() ? "clean"
                : report.repairs().isEmpty() ? "leaks only (run with --repair to give the space back)" : "leaks repaired";
        out().println(verdict + " (" + millis + " ms)");
    }

    private void printJson(CheckReport report, long millis) {
        Json json = new Json().beginObject()
                .field("store", store.path.toString())
                .field("verdict", report.damaged() ? "damaged" : report.leaks().isEmpty() ? "clean"
                        : report.repairs().isEmpty() ? "leaks" : "repaired")
                .field("millis", millis)
                .field("nodesScanned", report.nodesScanned())
                .field("tablePagesScanned", report.tablePagesScanned())
                .field("blocksReferenced", report.blocksReferenced())
                .field("blocksAllocated", report.blocksAllocated());
        findings(json, "damage", report.damage());
        findings(json, "leaks", report.leaks());
        json.name("repairs").beginArray();
        for (CheckReport.Repair change : report.repairs()) {
            json.beginObject().field("block", change.block()).field("oldCount", change.oldCount())
                    .field("newCount", change.newCount()).endObject();
        }
        json.endArray().endObject();
        out().println(json);
    }

    private static void findings(Json json, String name, java.util.List<CheckReport.Finding> findings) {
        json.name(name).beginArray();
        for (CheckReport.Finding finding : findings) {
            json.beginObject().field("kind", finding.kind().name()).field("block", finding.block())
                    .field("counter", finding.counter()).field("trueCount", finding.trueCount())
                    .field("detail", finding.detail()).endObject();
        }
        json.endArray();
    }
}
