package io.cairn.volume;

import io.cairn.io.StorageException;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Iterator;
import java.util.concurrent.locks.LockSupport;

/**
 * Continuous snapshots of one disk: one every interval, the newest {@code keep} retained.
 *
 * <ol>
 *   <li>Each snapshot is taken like any other ({@link Store#snapshot}): between two requests of the disk's
 *       clients, waiting only for the I/O in flight. It is then committed in the background
 *       ({@link Store#commitSoon()}): snapshots taken while a commit runs share the next one, so a commit
 *       that takes longer than the interval never makes snapshots queue up.</li>
 *   <li>Ticks are at fixed times (start + k × interval). A tick that finds the previous one still running
 *       (the store stalled longer than an interval) is skipped and counted, not made up later.</li>
 *   <li>Retention: once more than {@code keep} of the snapshots this schedule took are live, the oldest are
 *       deleted. Only its own: snapshots taken by hand, and those of an earlier schedule or server run, are
 *       never touched. A snapshot that is exported (in use) is kept and retried at the next tick; one deleted
 *       by someone else is forgotten.</li>
 *   <li>The schedule stops by itself when the disk is deleted or the store stops writing (closed, read-only
 *       after damage); {@link #status()} says why.</li>
 *   <li>Threads: one platform thread per schedule takes and deletes; {@link #status()} and {@link #close()}
 *       may be called from any thread.</li>
 * </ol>
 */
public final class SnapshotSchedule implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(SnapshotSchedule.class.getName());

    /** Shortest interval: below it a tick's own cost (tens of microseconds) and timer slack dominate. */
    public static final Duration MIN_INTERVAL = Duration.ofMillis(1);

    private final Store store;
    private final String disk;
    private final long intervalNanos;
    private final int keep;
    private final Thread thread;
    private volatile boolean running = true;
    /** Guarded by this. */
    private final ArrayDeque<Long> ownSnapshots = new ArrayDeque<>();
    private long taken;
    private long deleted;
    private long skippedTicks;
    private String stoppedBecause;

    /** Where a schedule is, for {@code cairn schedule} listings. */
    public record Status(String disk, Duration interval, int keep, long taken, long deleted, long skippedTicks,
                         int retained, long newestSnapshotId, String stoppedBecause) {
        public boolean running() {
            return stoppedBecause == null;
        }
    }

    private SnapshotSchedule(Store store, String disk, Duration interval, int keep) {
        this.store = store;
        this.disk = disk;
        this.intervalNanos = interval.toNanos();
        this.keep = keep;
        this.thread = Thread.ofPlatform().daemon().name("cairn-schedule-" + disk).unstarted(this::run);
    }

    /**
     * Starts snapshotting {@code disk} every {@code interval}, keeping the newest {@code keep} (at least 1).
     * The disk must exist now.
     */
    public static SnapshotSchedule start(Store store, String disk, Duration interval, int keep) {
        if (interval.compareTo(MIN_INTERVAL) < 0) {
            throw new IllegalArgumentException("a snapshot interval must be at least " + MIN_INTERVAL.toMillis()
                    + " ms, got " + interval.toNanos() / 1e6 + " ms");
        }
        if (keep < 1) {
            throw new IllegalArgumentException("a schedule must keep at least 1 snapshot, got " + keep);
        }
        store.vdi(disk); // an unknown disk fails here, with its name
        SnapshotSchedule schedule = new SnapshotSchedule(store, disk, interval, keep);
        schedule.thread.start();
        return schedule;
    }

    public String disk() {
        return disk;
    }

    public synchronized Status status() {
        return new Status(disk, Duration.ofNanos(intervalNanos), keep, taken, deleted, skippedTicks,
                ownSnapshots.size(), ownSnapshots.isEmpty() ? 0 : ownSnapshots.peekLast(), stoppedBecause);
    }

    /** Stops taking snapshots (the one in progress finishes); those taken stay. */
    @Override
    public void close() {
        running = false;
        LockSupport.unpark(thread);
        if (thread != Thread.currentThread()) {
            try {
                thread.join();
            } catch (InterruptedException interrupted) {
                Thread.currentThread().interrupt();
            }
        }
        synchronized (this) {
            if (stoppedBecause == null) {
                stoppedBecause = "stopped";
            }
        }
    }

    private void run() {
        long next = System.nanoTime() + intervalNanos;
        while (running) {
            long wait = next - System.nanoTime();
            if (wait > 0) {
                LockSupport.parkNanos(wait);
                continue; // woken early (or by close): check again
            }
            try {
                tick();
            } catch (java.util.NoSuchElementException | StorageException gone) {
                stop("disk '" + disk + "' cannot be snapshotted any more: " + gone.getMessage());
                return;
            } catch (RuntimeException problem) {
                stop("snapshot of disk '" + disk + "' failed: " + problem);
                return;
            }
            next += intervalNanos;
            long late = System.nanoTime() - next;
            if (late > 0) {
                long missed = late / intervalNanos + 1;
                next += missed * intervalNanos;
                synchronized (this) {
                    skippedTicks += missed;
                }
            }
        }
    }

    private void tick() {
        SnapshotInfo snapshot = store.snapshot(disk, null);
        synchronized (this) {
            ownSnapshots.addLast(snapshot.id());
            taken++;
        }
        deleteBeyondRetention();
        store.commitSoon();
    }

    private void deleteBeyondRetention() {
        int excess;
        Long[] oldest;
        synchronized (this) {
            excess = ownSnapshots.size() - keep;
            if (excess <= 0) {
                return;
            }
            oldest = ownSnapshots.stream().limit(excess).toArray(Long[]::new);
        }
        for (long id : oldest) {
            int deletedNow;
            try {
                store.deleteSnapshot(disk + "@" + id);
                deletedNow = 1;
            } catch (IllegalStateException inUse) {
                continue; // exported: retried next tick
            } catch (java.util.NoSuchElementException alreadyGone) {
                deletedNow = 0;
            }
            synchronized (this) {
                ownSnapshots.remove(id);
                deleted += deletedNow;
            }
        }
    }

    private void stop(String reason) {
        running = false;
        LOG.log(System.Logger.Level.WARNING, "snapshot schedule stopped: " + reason);
        synchronized (this) {
            stoppedBecause = reason;
        }
    }

    /** The snapshots this schedule took and has not deleted, oldest first. */
    synchronized long[] retained() {
        long[] ids = new long[ownSnapshots.size()];
        Iterator<Long> each = ownSnapshots.iterator();
        for (int i = 0; i < ids.length; i++) {
            ids[i] = each.next();
        }
        return ids;
    }
}
