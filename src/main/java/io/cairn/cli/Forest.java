package io.cairn.cli;

import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.VdiInfo;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The disks and snapshots of a store as a forest (Parallax, Fig. 3.4): each disk with its snapshots in
 * the order taken, and each clone under the snapshot it was made from. Deleted disks and snapshots
 * appear only where a live disk still descends from them, so the lineage of every clone stays visible.
 */
record Forest(List<Disk> roots) {

    record Disk(VdiInfo info, List<Snapshot> snapshots) {
    }

    record Snapshot(SnapshotInfo info, List<Disk> clones) {
    }

    /** Builds the forest from every disk and snapshot record, deleted ones included. */
    static Forest of(List<VdiInfo> disks, List<SnapshotInfo> snapshots) {
        Map<Long, List<SnapshotInfo>> snapshotsByDisk = new HashMap<>();
        Set<Long> snapshotIds = new HashSet<>();
        for (SnapshotInfo snapshot : snapshots) {
            snapshotsByDisk.computeIfAbsent(snapshot.vdiId(), id -> new ArrayList<>()).add(snapshot);
            snapshotIds.add(snapshot.id());
        }
        Map<Long, List<VdiInfo>> clonesBySnapshot = new HashMap<>();
        List<VdiInfo> roots = new ArrayList<>();
        for (VdiInfo disk : disks) {
            // A parent that is not among the records at all cannot be drawn; the disk starts a tree then.
            if (disk.parentSnapshotId() != 0 && snapshotIds.contains(disk.parentSnapshotId())) {
                clonesBySnapshot.computeIfAbsent(disk.parentSnapshotId(), id -> new ArrayList<>()).add(disk);
            } else {
                roots.add(disk);
            }
        }
        Builder builder = new Builder(snapshotsByDisk, clonesBySnapshot);
        return new Forest(builder.disks(roots));
    }

    private record Builder(Map<Long, List<SnapshotInfo>> snapshotsByDisk, Map<Long, List<VdiInfo>> clonesBySnapshot) {

        /** The disks worth showing, by id; ids grow with creation, so that is also age. */
        List<Disk> disks(List<VdiInfo> infos) {
            List<Disk> result = new ArrayList<>();
            for (VdiInfo info : sortedById(infos, VdiInfo::id)) {
                List<Snapshot> snapshots = snapshots(snapshotsByDisk.getOrDefault(info.id(), List.of()));
                if (!info.deleted() || !snapshots.isEmpty()) {
                    result.add(new Disk(info, snapshots));
                }
            }
            return result;
        }

        /** The snapshots worth showing, in the order taken (snapshot ids grow with time). */
        private List<Snapshot> snapshots(List<SnapshotInfo> infos) {
            List<Snapshot> result = new ArrayList<>();
            for (SnapshotInfo info : sortedById(infos, SnapshotInfo::id)) {
                List<Disk> clones = disks(clonesBySnapshot.getOrDefault(info.id(), List.of()));
                if (!info.deleted() || !clones.isEmpty()) {
                    result.add(new Snapshot(info, clones));
                }
            }
            return result;
        }

        private static <T> List<T> sortedById(List<T> items, java.util.function.ToLongFunction<T> id) {
            return items.stream().sorted(Comparator.comparingLong(id)).toList();
        }
    }
}
