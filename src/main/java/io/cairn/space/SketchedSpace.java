package io.cairn.space;

import io.cairn.volume.SketchCatalog;
import io.cairn.volume.SketchDelta;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.apache.datasketches.theta.CompactThetaSketch;
import org.apache.datasketches.theta.ThetaSetOperation;
import org.apache.datasketches.theta.ThetaUnion;
import org.apache.datasketches.theta.UpdatableThetaSketch;

/**
 * Estimated space of a set of snapshots from their sketch deltas, without walking a tree (seed 002):
 * how many data blocks they hold, and how many deleting them would free.
 *
 * <p>Design notes.
 * <ol>
 *   <li>Theta sketches, not HLL: a report needs set difference ("held by these and by nothing else"), and
 *       theta sketches support union and difference (AnotB) with error bounds; HLL sketches only union.
 *       Each set operation is exact on the retained sample (the hashes below theta), so chaining operations
 *       does not compound error beyond that of the final sample.</li>
 *   <li>The content F(s) of snapshot s follows from an earlier snapshot c on its lineage as
 *       (F(c) ∪ added) \ removed over the deltas in between (Store, sketch note 6: along a lineage of live
 *       snapshots a block is held by one unbroken run). F is cached for every
 *       {@value #CHECKPOINT_INTERVAL}th snapshot along a lineage and for recent requests, so any F costs one
 *       union and one difference of full sketches plus at most 63 small deltas.</li>
 *   <li>A run of consecutive live snapshots s_i..s_j of one disk holds F(s_i) ∪ added(s_i+1) ∪ … ∪
 *       added(s_j); a run that ends with the live disk adds the live delta. A selection D cuts each disk's
 *       snapshot log, followed by its live content, into runs inside and outside D; held(D) is the union of
 *       the runs inside, freed(D) is that union minus the union of the runs outside (other snapshots,
 *       clones and live disks). Cost: per run one F and one small union per snapshot; no tree is read.</li>
 *   <li>Estimates carry DataSketches' bounds at two standard deviations (about 95%). The error is relative
 *       to the number of hashes the result retains: a small difference inside a large union is known with a
 *       correspondingly wider relative bound, which the report shows.</li>
 *   <li>Only data blocks are counted; the radix nodes a snapshot holds (about 1/512 of its data) and its
 *       sketch blob are not.</li>
 *   <li>Threads: one caller at a time (the caches are not synchronized).</li>
 * </ol>
 */
public final class SketchedSpace {

    /** F is kept for every 64th snapshot along a lineage (a bound on the deltas a report folds in). */
    public static final int CHECKPOINT_INTERVAL = 64;
    /** Bounds are reported at this many standard deviations. */
    public static final int STANDARD_DEVIATIONS = 2;
    private static final int RECENT_ENTRIES = 64;
    private static final long BLOCK_BYTES = 4096;

    private static final CompactThetaSketch EMPTY = UpdatableThetaSketch.builder().build().compact();

    /** A snapshot's full content sketch and its place along its lineage (0 = a snapshot with no base). */
    private record Full(CompactThetaSketch content, long depth) {
    }

    private final Map<Long, Full> checkpoints = new HashMap<>();
    private final Map<Long, Full> recent = new LinkedHashMap<>(RECENT_ENTRIES, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Long, Full> eldest) {
            return size() > RECENT_ENTRIES;
        }
    };

    /** An estimated number of data blocks with its bounds. */
    public record Estimate(double blocks, double lowerBlocks, double upperBlocks, boolean exact) {

        static Estimate of(CompactThetaSketch sketch) {
            return new Estimate(sketch.getEstimate(), sketch.getLowerBound(STANDARD_DEVIATIONS),
                    sketch.getUpperBound(STANDARD_DEVIATIONS), !sketch.isEstimationMode());
        }

        public long bytes() {
            return Math.round(blocks) * BLOCK_BYTES;
        }

        public long lowerBytes() {
            return (long) Math.floor(lowerBlocks) * BLOCK_BYTES;
        }

        public long upperBytes() {
            return (long) Math.ceil(upperBlocks) * BLOCK_BYTES;
        }

        /** The larger distance from the estimate to a bound, relative to the estimate (0 when exact or empty). */
        public double relativeBound() {
            if (exact || blocks == 0) {
                return 0;
            }
            return Math.max(upperBlocks - blocks, blocks - lowerBlocks) / blocks;
        }
    }

    /** What deleting {@code snapshots} snapshots would mean: the data they hold, and what only they hold. */
    public record Report(int snapshots, Estimate held, Estimate freed) {
    }

    /** The report for the live snapshots {@code selected} (ids; ids not in the catalogue are ignored). */
    public Report report(SketchCatalog catalog, Set<Long> selected) {
        checkpoints.keySet().retainAll(catalog.deltas().keySet());
        recent.keySet().retainAll(catalog.deltas().keySet());
        ThetaUnion inside = newUnion();
        ThetaUnion outside = newUnion();
        int count = 0;
        for (SketchCatalog.Disk disk : catalog.disks()) {
            int snapshotCount = disk.snapshotIds().size();
            int start = 0;
            // Position snapshotCount stands for the live disk, which is never selected.
            while (start <= snapshotCount) {
                boolean in = isSelected(disk, start, selected);
                int end = start;
                while (end + 1 <= snapshotCount && isSelected(disk, end + 1, selected) == in) {
                    end++;
                }
                addRun(in ? inside : outside, catalog, disk, start, end);
                if (in) {
                    count += end - start + 1;
                }
                start = end + 1;
            }
        }
        CompactThetaSketch held = inside.getResult();
        CompactThetaSketch freed = ThetaSetOperation.builder().buildANotB().aNotB(held, outside.getResult());
        return new Report(count, Estimate.of(held), Estimate.of(freed));
    }

    private static boolean isSelected(SketchCatalog.Disk disk, int position, Set<Long> selected) {
        return position < disk.snapshotIds().size() && selected.contains(disk.snapshotIds().get(position));
    }

    /** Adds the content of positions [first, last] of a disk's log (the position after its end = live). */
    private void addRun(ThetaUnion union, SketchCatalog catalog, SketchCatalog.Disk disk, int first, int last) {
        int snapshotCount = disk.snapshotIds().size();
        SketchDelta live = disk.live();
        if (first == snapshotCount) {
            CompactThetaSketch base = live.baseSnapshotId() == 0 ? EMPTY : full(catalog, live.baseSnapshotId());
            ThetaUnion content = newUnion();
            content.union(base);
            content.union(live.added());
            union.union(ThetaSetOperation.builder().buildANotB().aNotB(content.getResult(), live.removed()));
            return;
        }
        union.union(full(catalog, disk.snapshotIds().get(first)));
        for (int position = first + 1; position <= Math.min(last, snapshotCount - 1); position++) {
            union.union(catalog.deltas().get(disk.snapshotIds().get(position)).added());
        }
        if (last == snapshotCount) {
            union.union(live.added());
        }
    }

    /** F(id): the content sketch of a live snapshot (design note 2). */
    CompactThetaSketch full(SketchCatalog catalog, long id) {
        Deque<Long> path = new ArrayDeque<>();
        Full start = null;
        for (long at = id; at != 0; at = catalog.deltas().get(at).baseSnapshotId()) {
            start = cached(at);
            if (start != null) {
                break;
            }
            path.push(at);
        }
        if (path.isEmpty()) {
            return start.content();
        }
        CompactThetaSketch content = start == null ? EMPTY : start.content();
        long depth = start == null ? -1 : start.depth();
        ThetaUnion added = newUnion();
        ThetaUnion removed = newUnion();
        added.union(content);
        while (!path.isEmpty()) {
            long at = path.pop();
            depth++;
            SketchDelta delta = catalog.deltas().get(at);
            added.union(delta.added());
            removed.union(delta.removed());
            boolean checkpoint = depth % CHECKPOINT_INTERVAL == 0;
            if (checkpoint || path.isEmpty()) {
                content = ThetaSetOperation.builder().buildANotB().aNotB(added.getResult(), removed.getResult());
                (checkpoint ? checkpoints : recent).put(at, new Full(content, depth));
                added.reset();
                added.union(content);
                removed.reset();
            }
        }
        return content;
    }

    private Full cached(long id) {
        Full full = checkpoints.get(id);
        return full != null ? full : recent.get(id);
    }

    private static ThetaUnion newUnion() {
        return ThetaSetOperation.builder().setLogNominalEntries(SketchDelta.LG_NOMINAL_ENTRIES).buildUnion();
    }
}
