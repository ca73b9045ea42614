package io.cairn.volume;

import org.apache.datasketches.theta.CompactThetaSketch;
import org.apache.datasketches.theta.UpdatableThetaSketch;

/**
 * How the data blocks of one snapshot (or of a live disk) differ from those of its base: the nearest live
 * snapshot before it in its lineage (its own snapshot log, then the log of the snapshot it was cloned
 * from, and so on), or nothing ({@code baseSnapshotId} 0). {@code added} sketches the physical numbers of
 * the data blocks it holds and the base does not, {@code removed} those the base holds and it does not;
 * the counts are exact.
 *
 * <p>Theta sketches (Apache DataSketches) of nominal size 2^{@value #LG_NOMINAL_ENTRIES}: a set of at most
 * that many blocks is kept exactly (theta 1), a larger one as the sample of hashes below theta. Deltas
 * between consecutive snapshots are small, so they are nearly always exact.
 *
 * @param snapshotId 0 for a live disk's delta (never stored)
 */
public record SketchDelta(long snapshotId, long baseSnapshotId, CompactThetaSketch added, CompactThetaSketch removed,
                          long addedBlocks, long removedBlocks) {

    /**
     * lg of the nominal entries. A theta estimate from k retained hashes has a relative standard error of
     * about 1/sqrt(k): 0.78% at 2^14, so 1.6% at two standard deviations, inside the 2% that reports
     * promise; 2^12 would give 3.1%, and 2^16 would quadruple memory and report time for 0.4%.
     */
    public static final int LG_NOMINAL_ENTRIES = 14;

    /** A builder of one side of a delta. */
    static UpdatableThetaSketch newSketch() {
        return UpdatableThetaSketch.builder().setLogNominalEntries(LG_NOMINAL_ENTRIES).build();
    }

    /** The compact, ordered form of a finished sketch, trimmed to the nominal size. */
    static CompactThetaSketch finish(UpdatableThetaSketch sketch) {
        return sketch.rebuild().compact(true, null);
    }
}
