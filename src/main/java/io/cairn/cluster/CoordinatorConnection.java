package io.cairn.cluster;

import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.RetryUntilElapsed;
import org.apache.zookeeper.ZooKeeper;

/**
 * One Curator client to a ZooKeeper ensemble, with the timeouts of {@link LeaseTimeouts}, and the
 * bounded wait for the connection that turns "ZooKeeper is away" into a
 * {@link CoordinatorUnavailableException} saying for how long it has been away.
 *
 * <p>Curator keeps the connection: it reconnects, and when a session expires it opens a new one (a new
 * {@link ZooKeeper} handle). Callers that must not act on a newer session than they think (the lock
 * manager deletes lock znodes only through the handle that created them) keep the handle they used.
 *
 * <p>Threading: any thread; Curator calls the state listener on its event thread.
 */
final class CoordinatorConnection implements AutoCloseable {

    private final String connectString;
    private final LeaseTimeouts timeouts;
    private final CuratorFramework client;
    private final long openedNanos = System.nanoTime();
    /** When the connection was last lost, or {@link #openedNanos} before the first; meaningful while !connected. */
    private volatile long disconnectedSinceNanos = openedNanos;
    private volatile boolean connected;

    private CoordinatorConnection(String connectString, LeaseTimeouts timeouts, Consumer<ConnectionState> listener) {
        this.connectString = connectString;
        this.timeouts = timeouts;
        this.client = CuratorFrameworkFactory.builder()
                .connectString(connectString)
                .sessionTimeoutMs(timeouts.sessionTimeoutMillis())
                .connectionTimeoutMs(timeouts.coordinatorWaitMillis())
                .retryPolicy(new RetryUntilElapsed(timeouts.coordinatorWaitMillis(), Math.toIntExact(timeouts.retryMillis())))
                // Ensemble tracking follows dynamic reconfiguration in the background; Cairn is given its
                // ensemble, and a background read that fails while ZooKeeper is away only adds noise.
                .ensembleTracker(false)
                .build();
        client.getConnectionStateListenable().addListener((source, state) -> {
            if (state.isConnected()) {
                connected = true;
            } else if (connected) {
                connected = false;
                disconnectedSinceNanos = System.nanoTime();
            }
            listener.accept(state);
        });
    }

    /**
     * Starts a client and waits (up to the coordinator wait) for its first connection.
     *
     * @throws CoordinatorUnavailableException ZooKeeper did not answer in time
     */
    static CoordinatorConnection open(String connectString, LeaseTimeouts timeouts, Consumer<ConnectionState> listener) {
        CoordinatorConnection connection = new CoordinatorConnection(Names.connectString(connectString), timeouts, listener);
        try {
            connection.client.start();
            connection.awaitConnected();
            return connection;
        } catch (RuntimeException e) {
            connection.close();
            throw e;
        }
    }

    CuratorFramework client() {
        return client;
    }

    String connectString() {
        return connectString;
    }

    boolean isConnected() {
        return connected;
    }

    /**
     * The handle of the current session once connected, waiting up to the coordinator wait.
     *
     * @throws CoordinatorUnavailableException not connected in time
     */
    ZooKeeper awaitConnected() {
        return awaitConnected(timeouts.coordinatorWaitMillis());
    }

    /** Like {@link #awaitConnected()}, waiting up to {@code waitMillis} instead. */
    ZooKeeper awaitConnected(long waitMillis) {
        try {
            if (!connected && !client.blockUntilConnected(Math.toIntExact(Math.max(1, waitMillis)), TimeUnit.MILLISECONDS)) {
                throw unavailable(null);
            }
            return client.getZookeeperClient().getZooKeeper();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CoordinatorUnavailableException("interrupted while waiting for ZooKeeper at " + connectString, e);
        } catch (CoordinatorUnavailableException e) {
            throw e;
        } catch (Exception e) {
            throw unavailable(e);
        }
    }

    /** "ZooKeeper at HOST:PORT unreachable for 4.2 s", with the cause if there is one. */
    CoordinatorUnavailableException unavailable(Throwable cause) {
        long awayNanos = connected ? 0 : System.nanoTime() - disconnectedSinceNanos;
        String message = String.format(Locale.ROOT, "ZooKeeper at %s unreachable for %.1f s", connectString, awayNanos / 1e9)
                + (cause == null || cause.getMessage() == null ? "" : " (" + cause.getMessage() + ")");
        return new CoordinatorUnavailableException(message, cause);
    }

    @Override
    public void close() {
        client.close();
    }
}
