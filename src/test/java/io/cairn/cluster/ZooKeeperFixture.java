package io.cairn.cluster;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.time.Duration;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.curator.test.InstanceSpec;
import org.apache.curator.test.TestingServer;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooKeeper;

/**
 * A real ZooKeeper server (the ZooKeeperServer of ZooKeeper 3.9, run in this JVM by Curator's
 * TestingServer) for the cluster tests, with a 100 ms tick and a raised cap so session timeouts of 0.2 to
 * 30 s are honoured as asked.
 */
public final class ZooKeeperFixture implements AutoCloseable {

    /** Short enough for fast tests, long enough for a loaded two-core machine's heartbeats. */
    public static final LeaseTimeouts TIMEOUTS = new LeaseTimeouts(Duration.ofSeconds(2));
    private static final int TICK_MILLIS = 100;

    final TestingServer server;
    /** Each test uses its own store id, so tests never see each other's znodes. */
    public final String storeId = "store-" + UUID.randomUUID();

    public ZooKeeperFixture() throws Exception {
        File dataDirectory = Files.createTempDirectory("cairn-zk").toFile();
        // Sessions up to 30 s (the default cap is 20 ticks = 2 s), so node processes can run with longer leases.
        InstanceSpec spec = new InstanceSpec(dataDirectory, InstanceSpec.getRandomPort(), -1, -1, true, 1, TICK_MILLIS, 100,
                Map.of("maxSessionTimeout", "30000"));
        server = new TestingServer(spec, true);
    }

    /** Stops the server (its data stays): every node loses ZooKeeper until {@link #restart()}. */
    public void stop() throws IOException {
        server.stop();
    }

    /** Starts the stopped server again on the same port with the same data. */
    public void restart() throws Exception {
        server.restart();
    }

    public String connectString() {
        return server.getConnectString();
    }

    public ZooKeeperLockManager node(String name) {
        return node(name, storeId);
    }

    public ZooKeeperLockManager node(String name, String store) {
        return ZooKeeperLockManager.connect(new ZooKeeperLockManager.Options(connectString(), store, name,
                Map.of("nbd", "127.0.0.1:10809", "admin", "/run/" + name + ".sock"), TIMEOUTS));
    }

    /**
     * Ends a session on the server, as its expiry would: a second handle joins the session with its id
     * and password and closes it; the server deletes the session's ephemeral znodes.
     */
    void expireOnServer(ZooKeeper victim) throws IOException, InterruptedException {
        CountDownLatch connected = new CountDownLatch(1);
        ZooKeeper twin = new ZooKeeper(connectString(), victim.getSessionTimeout(), event -> {
            if (event.getState() == Watcher.Event.KeeperState.SyncConnected) {
                connected.countDown();
            }
        }, victim.getSessionId(), victim.getSessionPasswd());
        if (!connected.await(10, TimeUnit.SECONDS)) {
            throw new IllegalStateException("could not join session 0x" + Long.toHexString(victim.getSessionId()));
        }
        twin.close();
    }

    @Override
    public void close() throws IOException {
        server.close();
    }
}
