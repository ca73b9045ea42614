package io.cairn.cluster;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Locks as leases with fencing tokens, membership and leader election for the nodes of one store:
 * the tiny lock manager of seed 003 §3.4.2. Nothing on the data path talks to it; the data path only
 * reads {@link Lease#isValid()}.
 *
 * <p>Two implementations: {@link EmbeddedLockManager} for a single process (the default; leases never
 * expire) and {@link ZooKeeperLockManager} for nodes on several hosts or processes. docs/CLUSTER.md
 * describes the semantics both keep.
 *
 * <p>Failure kinds: {@link LockHeldException} when another node holds a lock past the wait;
 * {@link CoordinatorUnavailableException} when ZooKeeper cannot be reached within the bounded wait;
 * IllegalArgumentException for a malformed name; IllegalStateException for a closed manager.
 *
 * <p>Threading: every method may be called from any thread.
 */
public interface LockManager extends AutoCloseable {

    /** This node's name, unique among the live members of the store. */
    String nodeName();

    /** The lease timeout everything else derives from ({@link LeaseTimeouts}). */
    LeaseTimeouts timeouts();

    /**
     * Acquires the lock {@code lockName} (e.g. {@code vdi/7}) as a lease, waiting up to {@code wait}
     * for the holder to release it or die; {@link Duration#ZERO} tries once. A lock this node already
     * holds (under another lease) is contended like any other.
     *
     * @throws LockHeldException              the lock is still held after {@code wait}
     * @throws CoordinatorUnavailableException ZooKeeper could not be reached within the longer of
     *                                         {@code wait} and the coordinator wait (T/2)
     */
    default Lease acquire(String lockName, Duration wait) {
        return acquire(lockName, wait, Map.of());
    }

    /**
     * Like {@link #acquire(String, Duration)}, with {@code notes} ({@code key=value}, keys as for member
     * attributes) stored with the lock for as long as the lease is held, so that readers of the lock
     * ({@link #holder}, {@link #locks}, {@code cairn nodes}) see what it guards (e.g. a disk's name).
     */
    Lease acquire(String lockName, Duration wait, Map<String, String> notes);

    /**
     * Replaces the notes of the lock {@code lease} holds (keys as for {@link #acquire(String, Duration, Map)}), for
     * its readers: what it guards has changed (a spare extent is now allocated in). The lease and its token stay.
     *
     * @return false, and nothing changed, if the lease is no longer held
     * @throws CoordinatorUnavailableException ZooKeeper could not be reached within the coordinator wait
     */
    boolean annotate(Lease lease, Map<String, String> notes);

    /** Who holds {@code lockName} now, if anybody (asks the coordinator). */
    Optional<LockHolder> holder(String lockName);

    /** Every lock held in the store, by any node, sorted by lock name. */
    List<LockHolder> locks();

    /** The live members, this node included, sorted by name. */
    List<Member> members();

    /**
     * Joins the election for {@code role} (e.g. {@code gc}); the returned election says whether this
     * node leads. Closing it leaves the election and hands leadership to the next candidate.
     */
    Election elect(String role);

    /** Releases every lease, leaves every election and the membership. Idempotent. */
    @Override
    void close();
}
