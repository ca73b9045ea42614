package io.cairn.space;

import io.cairn.format.Layout;
import io.cairn.format.Pointer;
import io.cairn.tree.RootRef;
import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.SpaceCheckpoint;
import io.cairn.volume.Store;
import io.cairn.volume.VdiInfo;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The exact space report of {@code cairn du}: for each disk and each of its snapshots, the bytes it
 * maps, the bytes only it holds (what deleting it alone frees), the bytes it shares, and the bytes
 * written since the version before it; and the store's totals.
 *
 * <p>"The version before": for a snapshot, the previous live snapshot in its disk's log; for a disk,
 * its newest snapshot. With none, a clone falls back to the snapshot it was made from (if that still
 * exists), and anything else counts everything it maps as written.
 */
public final class DiskUsage {

    private DiskUsage() {
    }

    /**
     * One disk or snapshot.
     *
     * @param baseline     the version {@code writtenBytes} is counted from, or null if none
     * @param writtenBytes data blocks mapped here that the baseline does not map to the same block
     */
    public record Entry(DiskVersion version, DiskVersion baseline, SpaceAccounting.Usage usage, long writtenBytes) {
    }

    /**
     * The report.
     *
     * @param store           the store's totals
     * @param pendingReleases reference removals not yet applied: if above 0 (a store that could not
     *                        commit first), exclusive figures may be low
     * @param nodesVisited    radix nodes read to make the report
     */
    public record Report(List<Entry> entries, Store.StoreSpace store, int pendingReleases, long nodesVisited) {
    }

    /**
     * Reports on every live disk and snapshot ({@code selection} null), one disk and its snapshots
     * ({@code NAME}), or one snapshot ({@code NAME@SNAP}). A writable store commits first, which
     * applies every pending removal, so the counts, and hence the exclusive figures, are exact. A store
     * served by several nodes is reported as it was at a checkpoint every node stopped for
     * ({@link SpaceCheckpoint}): exact for that instant, while the nodes go on serving during the walk.
     */
    public static Report report(Store store, String selection) {
        if (store.isShared()) {
            try (SpaceCheckpoint<Plan> checkpoint = SpaceCheckpoint.take(store, internals -> plan(store, internals, selection))) {
                return measure(checkpoint.captured(), TreeView.of(checkpoint));
            }
        }
        if (!store.readOnly()) {
            store.commit();
        }
        return store.inspect(internals -> measure(plan(store, internals, selection), TreeView.live(internals.trees())));
    }

    /** A version to measure and the one its written figure counts from (null: none). */
    private record Planned(DiskVersion version, DiskVersion baseline) {
    }

    /** What to measure, as it was when the roots were taken. */
    private record Plan(List<Planned> entries, Store.StoreSpace store, int pendingReleases) {
    }

    /** Under the store's exclusive hold (or inside a checkpoint): the versions selected, with their roots. */
    private static Plan plan(Store store, Store.Internals internals, String selection) {
        List<Planned> entries = new ArrayList<>();
        Map<Long, RootRef> vdiRoots = internals.vdiRoots();
        Map<Long, RootRef> snapshotRoots = internals.snapshotRoots();
        List<VdiInfo> disks = selection == null ? store.listVdis(false)
                : List.of(store.vdi(selection.contains("@") ? selection.substring(0, selection.indexOf('@')) : selection));
        Long onlySnapshot = selection != null && selection.contains("@") ? store.snapshotInfo(selection).id() : null;
        for (VdiInfo disk : disks) {
            DiskVersion previous = parentOf(store, disk, snapshotRoots);
            List<SnapshotInfo> log = store.snapshots(disk.name());
            for (SnapshotInfo snapshot : log) {
                DiskVersion version = DiskVersion.ofSnapshot(snapshot, snapshotRoots.get(snapshot.id()));
                if (onlySnapshot == null || onlySnapshot == snapshot.id()) {
                    entries.add(new Planned(version, previous));
                }
                previous = version;
            }
            if (onlySnapshot == null) {
                // The disk first, then its snapshots oldest first, as listings show them.
                entries.add(entries.size() - log.size(), new Planned(DiskVersion.ofLive(disk, vdiRoots.get(disk.id())), previous));
            }
        }
        return new Plan(entries, store.spaceReport(), internals.pendingReleases());
    }

    private static Report measure(Plan plan, TreeView view) {
        SpaceAccounting accounting = new SpaceAccounting(view);
        ChangeWalk changes = new ChangeWalk(view);
        List<Entry> entries = new ArrayList<>();
        for (Planned planned : plan.entries()) {
            entries.add(entry(accounting, changes, planned.version(), planned.baseline()));
        }
        return new Report(entries, plan.store(), plan.pendingReleases(), accounting.nodesVisited() + changes.nodesVisited());
    }

    /** The snapshot a clone was made from, if it still exists. */
    private static DiskVersion parentOf(Store store, VdiInfo disk, Map<Long, RootRef> snapshotRoots) {
        if (disk.parentSnapshotId() == 0 || !snapshotRoots.containsKey(disk.parentSnapshotId())) {
            return null;
        }
        for (SnapshotInfo snapshot : store.allSnapshots()) {
            if (snapshot.id() == disk.parentSnapshotId()) {
                return DiskVersion.ofSnapshot(snapshot, snapshotRoots.get(snapshot.id()));
            }
        }
        return null;
    }

    private static Entry entry(SpaceAccounting accounting, ChangeWalk changes, DiskVersion version, DiskVersion baseline) {
        SpaceAccounting.Usage usage = accounting.usageOf(version.root(), version.height());
        long[] writtenBlocks = {0};
        DiskVersion comparable = baseline != null && baseline.height() == version.height() ? baseline : null;
        if (comparable != null) {
            changes.walk(comparable.root(), version.root(), version.height(), 0, Long.MAX_VALUE,
                    (index, olderPointer, newerPointer) -> {
                        if (!Pointer.isHole(newerPointer)) {
                            writtenBlocks[0]++;
                        }
                    });
        } else {
            writtenBlocks[0] = usage.mappedDataBlocks();
        }
        return new Entry(version, comparable, usage, writtenBlocks[0] * Layout.BLOCK_BYTES);
    }
}
