package io.cairn.space;

import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.Store;

import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Which snapshots a space report is about, from what a user types: nothing (every live snapshot of every
 * disk), {@code NAME} (every live snapshot of that disk), {@code NAME@SNAP} (one snapshot) or
 * {@code NAME@A..B} / {@code NAME@A..NAME@B} (the snapshots from A to B of the disk's log, both included;
 * A and B are ids or labels, in either order).
 */
public record SpaceSelection(String description, Set<Long> snapshotIds) {

    public static SpaceSelection resolve(Store store, String target) {
        if (target == null || target.isEmpty()) {
            Set<Long> ids = new LinkedHashSet<>();
            for (SnapshotInfo snapshot : store.allSnapshots()) {
                if (!snapshot.deleted()) {
                    ids.add(snapshot.id());
                }
            }
            return new SpaceSelection("every snapshot", ids);
        }
        int at = target.indexOf('@');
        if (at < 0) {
            Set<Long> ids = new LinkedHashSet<>();
            for (SnapshotInfo snapshot : store.snapshots(target)) {
                ids.add(snapshot.id());
            }
            return new SpaceSelection("every snapshot of disk '" + target + "'", ids);
        }
        String name = target.substring(0, at);
        int range = target.indexOf("..", at);
        if (range < 0) {
            long id = store.snapshotInfo(target).id();
            return new SpaceSelection("snapshot " + name + "@" + id, Set.of(id));
        }
        String to = target.substring(range + 2);
        if (to.startsWith(name + "@")) {
            to = to.substring(name.length() + 1);
        } else if (to.contains("@")) {
            throw new IllegalArgumentException("'" + target + "': a range runs within one disk's snapshots");
        }
        long first = store.snapshotInfo(target.substring(0, range)).id();
        long last = store.snapshotInfo(name + "@" + to).id();
        List<SnapshotInfo> log = store.snapshots(name);
        int from = indexOf(log, Math.min(first, last));
        int until = indexOf(log, Math.max(first, last));
        Set<Long> ids = new LinkedHashSet<>();
        for (SnapshotInfo snapshot : log.subList(from, until + 1)) {
            ids.add(snapshot.id());
        }
        return new SpaceSelection(ids.size() + " snapshots " + name + "@" + Math.min(first, last) + ".."
                + Math.max(first, last), ids);
    }

    private static int indexOf(List<SnapshotInfo> log, long id) {
        for (int i = 0; i < log.size(); i++) {
            if (log.get(i).id() == id) {
                return i;
            }
        }
        throw new IllegalStateException("snapshot " + id + " is not in its disk's log");
    }
}
