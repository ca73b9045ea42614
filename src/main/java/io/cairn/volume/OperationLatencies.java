package io.cairn.volume;

import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import jdk.jfr.Category;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;
import jdk.jfr.Timespan;

/**
 * What snapshots, clones and commits cost a store, as the store itself measures them (so the figures
 * exclude any client's start-up and transport): a server reports them with {@code cairn stats}.
 *
 * <ol>
 *   <li><em>Taken</em>: from the call of {@link Store#snapshot} or {@link Store#clone} to the moment the change
 *       is made (just before the locks are let go) — the point in time is fixed, the snapshot is listed and
 *       exportable. It includes the wait for the volume
 *       disk's in-place writes in flight (design note 9 of {@link Store}) and for the metadata lock.</li>
 *   <li><em>Lock wait</em>: the part of <em>taken</em> spent before the metadata lock was held (other threads'
 *       work under it, and being woken once it is free): tells a slow snapshot that waited for the store's
 *       other work from one that waited for its disk's writes in flight.</li>
 *   <li><em>Durable</em>: from the same call to the end of the first commit that captured the change (the
 *       commit whose capture began after the change was made: design note 1 of {@link Store}). Whoever runs
 *       that commit — a client's FLUSH, a background commit, an admin command — it is measured here.</li>
 *   <li><em>Commit</em>: one commit's own work, from capture to the second flush, whether or not it
 *       covered a snapshot.</li>
 *   <li>Threads: any. Histograms guard themselves. The queue of changes waiting for their commit takes no lock:
 *       changes are added under the store's metadata lock (so in ticket order) and removed by the thread that
 *       finished a commit, under the commit lock (one at a time). A monitor there made a snapshot or clone, under
 *       the metadata lock, wait for a commit's whole drain. At most {@link #MAX_WAITING} changes wait; beyond that
 *       new ones are counted as taken but not followed to durability (a store nobody commits).</li>
 *   <li>Each change taken is also a flight-recorder event ({@link TakenEvent}), so that a slow one can be put beside
 *       what else the process did at that moment (a collector's pause, the thread that made it). Costs one check
 *       when no recording runs.</li>
 * </ol>
 */
public final class OperationLatencies {

    static final int MAX_WAITING = 1 << 16;

    /** What kind of change waits for durability. */
    enum Kind {
        SNAPSHOT, CLONE
    }

    /** One snapshot or clone taken, for the flight recorder: committed when the change is made. */
    @Name("io.cairn.ChangeTaken")
    @Label("Snapshot or clone taken")
    @Category("Cairn")
    @Description("A snapshot or clone made at the server: how long its caller waited for the metadata lock and how long the making took; the event's thread made it")
    @StackTrace(false)
    static final class TakenEvent extends Event {
        @Label("Kind")
        String kind;
        @Label("Taken")
        @Description("From the call into the store to the change made")
        @Timespan(Timespan.NANOSECONDS)
        long takenNanos;
        @Label("Lock wait")
        @Description("From the call to the moment the change began under the metadata lock")
        @Timespan(Timespan.NANOSECONDS)
        long lockWaitNanos;
    }

    private record Waiting(Kind kind, long startNanos, long ticket) {
    }

    private final LatencyHistogram snapshotTaken = new LatencyHistogram();
    private final LatencyHistogram snapshotDurable = new LatencyHistogram();
    private final LatencyHistogram snapshotLockWait = new LatencyHistogram();
    private final LatencyHistogram cloneTaken = new LatencyHistogram();
    private final LatencyHistogram cloneLockWait = new LatencyHistogram();
    private final LatencyHistogram cloneDurable = new LatencyHistogram();
    private final LatencyHistogram commits = new LatencyHistogram();
    private final ConcurrentLinkedQueue<Waiting> waiting = new ConcurrentLinkedQueue<>();
    private final AtomicInteger waitingCount = new AtomicInteger();

    /** Summaries of every histogram, read at one moment (each consistent in itself). */
    public record Report(LatencyHistogram.Summary snapshotTaken, LatencyHistogram.Summary snapshotLockWait,
                         LatencyHistogram.Summary snapshotDurable, LatencyHistogram.Summary cloneTaken,
                         LatencyHistogram.Summary cloneLockWait, LatencyHistogram.Summary cloneDurable,
                         LatencyHistogram.Summary commits) {
    }

    public Report report() {
        return new Report(snapshotTaken.summary(), snapshotLockWait.summary(), snapshotDurable.summary(),
                cloneTaken.summary(), cloneLockWait.summary(), cloneDurable.summary(), commits.summary());
    }

    /** Starts every histogram afresh (changes still waiting for their commit are measured when it ends). */
    public void reset() {
        for (LatencyHistogram histogram : new LatencyHistogram[] {snapshotTaken, snapshotLockWait, snapshotDurable,
                cloneTaken, cloneLockWait, cloneDurable, commits}) {
            histogram.reset();
        }
    }

    /**
     * A change was taken: started at {@code startNanos}, got the metadata lock at {@code lockedNanos}, made at
     * {@code endNanos}; commits numbered above {@code ticket} capture it. Called under the store's metadata
     * lock, which orders the tickets.
     */
    void taken(Kind kind, long startNanos, long lockedNanos, long endNanos, long ticket) {
        (kind == Kind.SNAPSHOT ? snapshotTaken : cloneTaken).record(endNanos - startNanos);
        (kind == Kind.SNAPSHOT ? snapshotLockWait : cloneLockWait).record(lockedNanos - startNanos);
        TakenEvent event = new TakenEvent();
        if (event.shouldCommit()) {
            event.kind = kind.name();
            event.takenNanos = endNanos - startNanos;
            event.lockWaitNanos = lockedNanos - startNanos;
            event.commit();
        }
        if (waitingCount.incrementAndGet() <= MAX_WAITING) {
            waiting.add(new Waiting(kind, startNanos, ticket));
        } else {
            waitingCount.decrementAndGet();
        }
    }

    /**
     * Commit number {@code sequence} ended at {@code endNanos} after starting at {@code startNanos}. Called under the
     * store's commit lock, so by one thread at a time (note 5).
     */
    void committed(long sequence, long startNanos, long endNanos) {
        commits.record(endNanos - startNanos);
        // Tickets are handed out in increasing order and commits end in sequence order: a FIFO suffices.
        for (Waiting change = waiting.peek(); change != null && change.ticket() < sequence; change = waiting.peek()) {
            waiting.poll();
            waitingCount.decrementAndGet();
            (change.kind() == Kind.SNAPSHOT ? snapshotDurable : cloneDurable).record(endNanos - change.startNanos());
        }
    }
}
