package io.cairn.cli;

import io.cairn.volume.SnapshotSchedule;
import io.cairn.volume.Store;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The snapshot schedules of one served store, by disk name: at most one per disk. Started by
 * {@code cairn serve --snapshot-every} or {@code cairn schedule}, stopped by {@code cairn schedule --stop}
 * or when the server stops (before its last commit). A schedule that stopped by itself stays listed
 * (with the reason) until it is replaced or removed.
 */
final class Schedules {

    private final Store store;
    private final Map<String, SnapshotSchedule> byDisk = new TreeMap<>();

    Schedules(Store store) {
        this.store = store;
    }

    /** Starts (or replaces) the schedule of {@code disk}. */
    synchronized SnapshotSchedule start(String disk, Duration interval, int keep) {
        SnapshotSchedule started = SnapshotSchedule.start(store, disk, interval, keep);
        SnapshotSchedule replaced = byDisk.put(disk, started);
        if (replaced != null) {
            replaced.close();
        }
        return started;
    }

    /** Stops and removes the schedule of {@code disk}; its status, or null if there was none. */
    synchronized SnapshotSchedule.Status stop(String disk) {
        SnapshotSchedule schedule = byDisk.remove(disk);
        if (schedule == null) {
            return null;
        }
        schedule.close();
        return schedule.status();
    }

    synchronized List<SnapshotSchedule.Status> statuses() {
        List<SnapshotSchedule.Status> result = new ArrayList<>();
        for (SnapshotSchedule schedule : byDisk.values()) {
            result.add(schedule.status());
        }
        return result;
    }

    synchronized void stopAll() {
        for (SnapshotSchedule schedule : byDisk.values()) {
            schedule.close();
        }
        byDisk.clear();
    }
}
