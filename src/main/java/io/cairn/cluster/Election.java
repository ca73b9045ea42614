package io.cairn.cluster;

import java.time.Duration;
import java.util.Optional;

/**
 * This node's candidacy for a role that one node of the store plays at a time (the garbage collector).
 * Leadership says who <em>should</em> do the work; writes the role makes are still fenced by a lease
 * (e.g. lock {@code gc}), because two nodes may briefly both believe they lead.
 *
 * <p>Threading: any thread. Listeners run on the manager's threads and must not block.
 */
public interface Election extends AutoCloseable {

    String role();

    /** Whether this node leads now (and, clustered, its session is within its validity window). */
    boolean isLeader();

    /** Waits up to {@code wait} for this node to lead; true if it does. */
    boolean awaitLeadership(Duration wait) throws InterruptedException;

    /** The node that leads now, if any (asks the coordinator). */
    Optional<String> leader();

    /** Leaves the election; the next candidate leads. Idempotent. */
    @Override
    void close();
}
