package io.cairn.alloc;

import io.cairn.cluster.Lease;
import io.cairn.format.ExtentRecord;

/**
 * Where a cluster node's {@link SpaceMap} gets the extents it may allocate in: extents leased in advance
 * (lock {@code extent/N}) by a background task, so that the data path never talks to the coordinator
 * (docs/CLUSTER.md, "Extent leases").
 *
 * <p>Threading: {@link #take}, {@link #awaitSpare} and {@link #shortage} are called by the map under the store's
 * metadata lock; they must not talk to the coordinator, and only {@link #awaitSpare} (on the way to NO_SPACE) may
 * block, for a bounded time. The pool is filled from another thread.
 */
public interface ExtentLeases {

    /**
     * An extent leased for allocation and not yet claimed.
     *
     * @param extent       its number
     * @param formerHolder the node id its shared holder word named when it was leased: 0 for a free extent,
     *                     this node's own id for an extent it claimed before (a restart, or a lease lost and
     *                     taken again), another node's id for an extent of a dead node to take over
     * @param type         what it is allocated for ({@code METADATA} or {@code DATA})
     * @param lease        the lease on {@code extent/N}; its fencing token goes into the extent's record
     */
    record Spare(int extent, int formerHolder, ExtentRecord.Type type, Lease lease) {

        public Spare {
            if (type != ExtentRecord.Type.METADATA && type != ExtentRecord.Type.DATA) {
                throw new IllegalArgumentException("a spare extent is leased for metadata or data, not " + type);
            }
        }
    }

    /** Removes and returns a spare for {@code purpose}, or null if none is ready. */
    Spare take(SpaceMap.Purpose purpose);

    /**
     * Called when {@link #take} found nothing: has the filling thread lease an extent now, asking the other nodes
     * to give back spares if none is free, and waits until a spare is ready, it is clear that none will come, or
     * a bounded wait ran out. True if a spare may be ready ({@link #take} again); false to fail with
     * {@link #shortage}. A pool with nobody to ask answers false at once.
     */
    default boolean awaitSpare(SpaceMap.Purpose purpose) {
        return false;
    }

    /** Why {@link #take} found nothing for {@code purpose}: one sentence for the out-of-space error. */
    String shortage(SpaceMap.Purpose purpose);
}
