package io.cairn.cli;

import io.cairn.volume.SnapshotSchedule;
import java.time.Duration;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "schedule",
        description = {"Snapshot a disk continuously in a running server: one snapshot every INTERVAL, the newest N kept.",
                "Without NAME, list the server's schedules."})
final class ScheduleCommand extends StoreCommand {

    static final int DEFAULT_KEEP = 100;

    @Parameters(index = "1", arity = "0..1", paramLabel = "NAME", description = "The disk.")
    String name;

    @Option(names = "--every", paramLabel = "INTERVAL", converter = Durations.Converter.class,
            description = "Take a snapshot every INTERVAL (at least 1ms), e.g. 10ms, 1s, 5m; replaces the disk's schedule.")
    Duration every;

    @Option(names = "--keep", paramLabel = "N", defaultValue = "" + DEFAULT_KEEP,
            description = "Keep the newest N snapshots the schedule took, delete older ones (default: ${DEFAULT-VALUE}).")
    int keep;

    @Option(names = "--stop", description = "Stop the disk's schedule; the snapshots it took stay.")
    boolean stop;

    @Override
    void run() {
        Schedules schedules = LiveStores.requireServed(store.path, "cairn schedule").schedules();
        if (name == null) {
            if (every != null || stop) {
                throw CommandFailure.usage("name the disk whose schedule to " + (stop ? "stop" : "start"));
            }
            print(schedules.statuses());
            return;
        }
        if (stop == (every != null)) {
            throw CommandFailure.usage("give either --every INTERVAL (start) or --stop for disk '" + name + "'");
        }
        if (stop) {
            SnapshotSchedule.Status stopped = schedules.stop(name);
            if (stopped == null) {
                throw CommandFailure.notFound("disk '" + name + "' has no snapshot schedule");
            }
            out().println("stopped snapshotting " + name + " after " + stopped.taken() + " snapshot(s); "
                    + stopped.retained() + " of them kept");
            return;
        }
        schedules.start(name, every, keep);
        out().println("snapshotting " + name + " every " + Durations.human(every) + ", keeping the newest " + keep);
    }

    private void print(List<SnapshotSchedule.Status> statuses) {
        Table table = new Table("DISK", "EVERY", "KEEP", "TAKEN", "DELETED", "SKIPPED", "KEPT", "NEWEST", "STATE")
                .alignRight(1, 2, 3, 4, 5, 6, 7);
        for (SnapshotSchedule.Status status : statuses) {
            table.row(status.disk(), Durations.human(status.interval()), status.keep(), status.taken(), status.deleted(),
                    status.skippedTicks(), status.retained(),
                    status.newestSnapshotId() == 0 ? "-" : status.disk() + "@" + status.newestSnapshotId(),
                    status.running() ? "running" : status.stoppedBecause());
        }
        table.print(out());
    }
}
