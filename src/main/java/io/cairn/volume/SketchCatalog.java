package io.cairn.volume;

import java.util.List;
import java.util.Map;

/**
 * A consistent picture of the store's snapshot sketches, taken at one instant: the delta of every live
 * snapshot against its base, and per live disk its live snapshots (oldest first) and the delta of its
 * current content against its newest live snapshot (or its lineage base).
 *
 * @param deltas          live snapshot id → its delta (every live snapshot has one)
 * @param disks           live disks by id
 * @param computedNow     deltas that had to be computed for this picture (not stored, or stale)
 * @param storedNow       of those, how many were stored as sketch blobs
 */
public record SketchCatalog(Map<Long, SketchDelta> deltas, List<Disk> disks, int computedNow, int storedNow) {

    /** A live disk: its live snapshots oldest first, and its live content as a delta. */
    public record Disk(long vdiId, String name, List<Long> snapshotIds, SketchDelta live) {
    }
}
