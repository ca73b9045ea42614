package io.cairn.cli;

import io.cairn.space.SketchedSpace;
import io.cairn.space.SpaceSelection;
import io.cairn.volume.SketchCatalog;
import io.cairn.volume.SketchDelta;
import io.cairn.volume.Store;
import java.util.Locale;
import java.io.PrintWriter;

/**
 * {@code cairn du --estimate}: how much data a set of snapshots holds and what deleting them would free,
 * estimated from the snapshots' sketches (seed 002) instead of walking their trees, with bounds at two
 * standard deviations. Snapshots whose sketch is not stored yet get it computed (cost: what changed
 * between each and its predecessor); {@code --save} stores those, which needs the store writable.
 */
final class DuEstimate {

    private final StoreArgument store;
    private final PrintWriter out;
    /** A disk (all its snapshots), one snapshot, a range NAME@A..B, or null for every snapshot. */
    private final String target;
    private final boolean json;
    /** Store the sketches computed for this report (needs the store writable). */
    private final boolean save;

    DuEstimate(StoreArgument store, PrintWriter out, String target, boolean json, boolean save) {
        this.store = store;
        this.out = out;
        this.target = target;
        this.json = json;
        this.save = save;
    }

    void run() {
        SpaceSelection selection;
        SketchCatalog catalog;
        SketchedSpace.Report report;
        long started = System.nanoTime();
        try (Store opened = save ? store.openForChanges() : store.openForReading()) {
            selection = SpaceSelection.resolve(opened, target);
            catalog = opened.sketchCatalog(save);
            report = new SketchedSpace().report(catalog, selection.snapshotIds());
        }
        long millis = (System.nanoTime() - started) / 1_000_000;
        if (json) {
            printJson(selection, catalog, report, millis);
        } else {
            printText(selection, catalog, report, millis);
        }
    }

    private void printText(SpaceSelection selection, SketchCatalog catalog, SketchedSpace.Report report, long millis) {
        Table table = new Table("selection", selection.description());
        table.row("snapshots", report.snapshots())
                .row("held", described(report.held()))
                .row("freed if deleted", described(report.freed()))
                .row("sketches", "theta, 2^" + SketchDelta.LG_NOMINAL_ENTRIES + " entries; bounds at "
                        + SketchedSpace.STANDARD_DEVIATIONS + " standard deviations; data blocks only")
                .row("computed now", catalog.computedNow() + (save ? " (" + catalog.storedNow() + " stored)" : ""))
                .row("time", millis + " ms");
        table.print(out);
    }

    private static String described(SketchedSpace.Estimate estimate) {
        if (estimate.exact()) {
            return Sizes.human(estimate.bytes()) + " (" + estimate.bytes() + " bytes, exact)";
        }
        return String.format(Locale.ROOT, "%s ± %.1f%% (%s .. %s)", Sizes.human(estimate.bytes()),
                100 * estimate.relativeBound(), Sizes.human(estimate.lowerBytes()), Sizes.human(estimate.upperBytes()));
    }

    private void printJson(SpaceSelection selection, SketchCatalog catalog, SketchedSpace.Report report, long millis) {
        Json out = new Json().beginObject()
                .field("store", store.path.toString())
                .field("selection", selection.description())
                .field("snapshots", report.snapshots());
        estimate(out, "held", report.held());
        estimate(out, "freedIfDeleted", report.freed());
        out.field("lgNominalEntries", SketchDelta.LG_NOMINAL_ENTRIES)
                .field("standardDeviations", SketchedSpace.STANDARD_DEVIATIONS)
                .field("computedNow", catalog.computedNow())
                .field("storedNow", catalog.storedNow())
                .field("millis", millis);
        this.out.println(out.endObject());
    }

    private static void estimate(Json json, String name, SketchedSpace.Estimate estimate) {
        json.name(name).beginObject()
                .field("bytes", estimate.bytes())
                .field("lowerBytes", estimate.lowerBytes())
                .field("upperBytes", estimate.upperBytes())
                .field("exact", estimate.exact())
                .endObject();
    }
}
