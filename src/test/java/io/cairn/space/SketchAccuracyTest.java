package io.cairn.space;

import io.cairn.volume.SketchCatalog;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.Locale;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The sketched report against the exact one over 10,000 snapshots of one disk (4 random block writes
 * between snapshots, about 40,500 distinct data blocks): relative error at most 2% for held and
 * freed-if-deleted of large selections, and the exact count within three standard deviations for every selection.
 */
class SketchAccuracyTest {

    private static final int SNAPSHOTS = 10_000;
    private static final double MAX_RELATIVE_ERROR = 0.02;

    private static SnapshotHistory history;
    private static SketchCatalog catalog;
    private static final SketchedSpace SKETCHED = new SketchedSpace();

    @BeforeAll
    static void build() {
        history = SnapshotHistory.build(SNAPSHOTS, 4, 20261121L);
        catalog = history.store.sketchCatalog(false);
    }

    @AfterAll
    static void close() {
        history.store.close();
    }

    @Test
    void everySnapshot() {
        compare(SnapshotHistory.DISK, true);
    }

    @Test
    void firstHalfSecondHalfAndTheMiddle() {
        compare(history.range(0, SNAPSHOTS / 2 - 1), true);
        compare(history.range(SNAPSHOTS / 2, SNAPSHOTS - 1), true);
        compare(history.range(SNAPSHOTS / 4, 3 * SNAPSHOTS / 4), true);
    }

    @Test
    void everythingButTheNewestSnapshot() {
        compare(history.range(0, SNAPSHOTS - 2), true);
    }

    /** Small selections: what only they hold is a small difference inside a large union, known less precisely. */
    @Test
    void smallSelectionsStayWithinTheirBounds() {
        compare(history.range(100, 199), false);
        compare(history.range(SNAPSHOTS - 50, SNAPSHOTS - 1), false);
        compare(SnapshotHistory.DISK + "@" + history.snapshotIds.get(1234), false);
    }

    @Test
    void everyTenthSnapshot() {
        Set<Long> ids = new HashSet<>();
        for (int i = 0; i < SNAPSHOTS; i += 10) {
            ids.add(history.snapshotIds.get(i));
        }
        compare(new SpaceSelection("every 10th snapshot", ids), true, false);
    }

    private static void compare(String target, boolean large) {
        compare(SpaceSelection.resolve(history.store, target), large, large);
    }

    private static void compare(SpaceSelection selection, boolean heldWithinTwoPercent, boolean freedWithinTwoPercent) {
        SketchedSpace.Report report = SKETCHED.report(catalog, selection.snapshotIds());
        ExactSpace.Counts exact = ExactSpace.count(history.store, selection.snapshotIds());
        check(selection.description() + " held", report.held(), exact.heldBlocks(), heldWithinTwoPercent);
        check(selection.description() + " freed", report.freed(), exact.freedBlocks(), freedWithinTwoPercent);
    }

    private static void check(String what, SketchedSpace.Estimate estimate, long exact, boolean withinTwoPercent) {
        double error = exact == 0 ? estimate.blocks() : Math.abs(estimate.blocks() - exact) / exact;
        String line = String.format(Locale.ROOT, "%s: exact %d blocks, estimate %.0f [%.0f, %.0f], error %.2f%%, bound %.2f%%",
                what, exact, estimate.blocks(), estimate.lowerBlocks(), estimate.upperBlocks(), 100 * error,
                100 * estimate.relativeBound());
        System.out.println(line);
        // The reported bounds are at two standard deviations, so one check in twenty may fall just outside
        // them by chance; this test makes a dozen, so it asks for three (1.5 times the reported distance).
        double below = 1.5 * (estimate.blocks() - estimate.lowerBlocks());
        double above = 1.5 * (estimate.upperBlocks() - estimate.blocks());
        assertTrue(estimate.blocks() - below <= exact && exact <= estimate.blocks() + above,
                "outside three standard deviations: " + line);
        if (withinTwoPercent) {
            assertTrue(!estimate.exact() || error == 0, line);
            assertTrue(error <= MAX_RELATIVE_ERROR, "more than 2% off: " + line);
        }
    }
}
