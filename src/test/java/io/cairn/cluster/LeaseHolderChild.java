package io.cairn.cluster;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * A node in a process of its own for {@link LeaseTakeoverProcessTest}:
 * {@code LeaseHolderChild ZK_CONNECT STORE_ID NODE LOCK LEASE_MILLIS}.
 *
 * <p>Acquires LOCK and prints {@code HELD <token>}. Then, like a write path, checks
 * {@link Lease#isValid()} every millisecond and remembers the wall-clock time of the last check that
 * found it valid, taken <em>after</em> the check (so it is no earlier than the moment validity was
 * sampled). At the first invalid check it prints {@code INVALID <lastValidMillis>}, then
 * {@code LOST <reason>} once the manager reports the loss, and exits.
 */
public final class LeaseHolderChild {

    public static void main(String[] args) throws Exception {
        LeaseTimeouts timeouts = new LeaseTimeouts(Duration.ofMillis(Long.parseLong(args[4])));
        try (ZooKeeperLockManager manager = ZooKeeperLockManager.connect(
                new ZooKeeperLockManager.Options(args[0], args[1], args[2], Map.of(), timeouts))) {
            Lease lease = manager.acquire(args[3], Duration.ofSeconds(30));
            CountDownLatch lost = new CountDownLatch(1);
            lease.onLost(l -> lost.countDown());
            System.out.println("HELD " + lease.fencingToken());
            System.out.flush();
            long lastValidMillis = System.currentTimeMillis();
            while (true) {
                boolean valid = lease.isValid();
                long nowMillis = System.currentTimeMillis();
                if (!valid) {
                    break;
                }
                lastValidMillis = nowMillis;
                Thread.sleep(1);
            }
            System.out.println("INVALID " + lastValidMillis);
            System.out.flush();
            if (lost.await(30, TimeUnit.SECONDS)) {
                System.out.println("LOST " + lease.lostReason());
            } else {
                System.out.println("NOT-REPORTED-LOST");
            }
            System.out.flush();
        }
    }
}
