package io.cairn.cluster;

import java.time.Duration;

/**
 * The one timeout of the coordination layer, the lease timeout, and everything derived from it.
 * docs/CLUSTER.md explains the derivation; in short, with T the lease timeout:
 *
 * <ol>
 *   <li><b>ZooKeeper session timeout = T.</b> The server deletes a node's ephemeral lock znodes no
 *       earlier than T after it last heard from the node; only then can another node take a lock.</li>
 *   <li><b>Validity window = 2/3 of the negotiated session timeout.</b> A node counts its leases valid
 *       until (send time of its last request the server answered + window), measured on
 *       {@link System#nanoTime()}. The server heard that request no earlier than it was sent, so its
 *       session cannot expire before send time + T: the node stops writing at least T/3 before anyone
 *       else can take over. T/3 is the budget for a write that passed {@link Lease#checkValid()} to
 *       reach the device, and for the two machines' clocks to run at slightly different rates.</li>
 *   <li><b>Heartbeat interval = T/8.</b> About five heartbeats in a row must fail before the window
 *       closes, so a single slow round trip does not cost a lease.</li>
 *   <li><b>Coordinator wait = T/2.</b> How long an operation that needs ZooKeeper waits for the
 *       connection (and Curator's connection timeout) before failing with
 *       {@link CoordinatorUnavailableException}.</li>
 *   <li><b>Retry interval = T/20.</b> The pause between retries of an operation, and the longest a
 *       waiting acquire sleeps between checks of a contended lock.</li>
 * </ol>
 *
 * @param lease the lease timeout T
 */
public record LeaseTimeouts(Duration lease) {

    /** What a node uses unless told otherwise: a dead node's locks are free again 10 s after it died. */
    public static final Duration DEFAULT_LEASE = Duration.ofSeconds(10);
    /** Shorter leases leave too little room for a ZooKeeper round trip and a device write. */
    public static final Duration MIN_LEASE = Duration.ofMillis(400);
    /** ZooKeeper servers cap session timeouts (20 ticks by default); longer leases help nobody. */
    public static final Duration MAX_LEASE = Duration.ofMinutes(10);

    public LeaseTimeouts {
        if (lease == null || lease.compareTo(MIN_LEASE) < 0 || lease.compareTo(MAX_LEASE) > 0) {
            throw new IllegalArgumentException("lease timeout must be between " + MIN_LEASE.toMillis() + " ms and "
                    + MAX_LEASE.toMinutes() + " min, not " + (lease == null ? "none" : lease.toMillis() + " ms"));
        }
    }

    public static LeaseTimeouts defaults() {
        return new LeaseTimeouts(DEFAULT_LEASE);
    }

    public int sessionTimeoutMillis() {
        return Math.toIntExact(lease.toMillis());
    }

    /** The validity window for a session whose timeout the server negotiated as {@code negotiatedSessionMillis}. */
    public static long validityNanos(long negotiatedSessionMillis) {
        return Duration.ofMillis(negotiatedSessionMillis).toNanos() * 2 / 3;
    }

    public long heartbeatMillis() {
        return Math.max(1, lease.toMillis() / 8);
    }

    public int coordinatorWaitMillis() {
        return Math.toIntExact(lease.toMillis() / 2);
    }

    public long retryMillis() {
        return Math.max(1, lease.toMillis() / 20);
    }
}
