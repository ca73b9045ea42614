package io.cairn.nbd;

import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channel;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An NBD server for the exports of one {@link ExportCatalog}: listens on TCP and Unix domain sockets,
 * or serves one already-connected channel pair (inetd mode, systemd socket activation, or a client
 * that spawns the server, like {@code nbdinfo [ cmd ]}).
 *
 * <p>Every connection runs on its own platform thread, and its requests on platform threads that take
 * turns reading (see {@link Connection}). A failing request or connection never affects the others.
 *
 * <p>Threading: all methods are thread-safe. {@link #close()} stops listening, lets connections
 * finish the requests they have in flight for a short grace period, then closes them.
 */
public final class NbdServer implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(NbdServer.class);
    /** How long {@link #close()} lets connections answer in-flight requests before cutting them off. */
    private static final long SHUTDOWN_GRACE_MILLIS = 2_000;

    private final ExportCatalog catalog;
    private final MetaContexts metaContexts;
    private final Connection.Limits limits;
    private final LentReadCounts lentReads = new LentReadCounts();

    private final List<ServerSocketChannel> listeners = new CopyOnWriteArrayList<>();
    private final List<Path> unixSocketPaths = new CopyOnWriteArrayList<>();
    private final List<Thread> acceptThreads = new CopyOnWriteArrayList<>();
    private final Map<Connection, Thread> connections = new ConcurrentHashMap<>();
    private final AtomicLong connectionSequence = new AtomicLong();
    private volatile boolean shuttingDown;

    /** A server offering the standard metadata contexts ({@code base:allocation}). */
    public NbdServer(ExportCatalog catalog) {
        this(catalog, MetaContexts.standard());
    }

    public NbdServer(ExportCatalog catalog, MetaContexts metaContexts) {
        this(catalog, metaContexts, Connection.Limits.DEFAULT);
    }

    NbdServer(ExportCatalog catalog, MetaContexts metaContexts, Connection.Limits limits) {
        this.catalog = Objects.requireNonNull(catalog, "catalog");
        this.metaContexts = Objects.requireNonNull(metaContexts, "metaContexts");
        this.limits = Objects.requireNonNull(limits, "limits");
    }

    /**
     * Listens on a TCP address; port 0 picks a free port.
     *
     * @return the address actually bound
     */
    public InetSocketAddress listenTcp(String host, int port) throws IOException {
        ServerSocketChannel listener = ServerSocketChannel.open(StandardProtocolFamily.INET);
        try {
            listener.setOption(StandardSocketOptions.SO_REUSEADDR, true);
            listener.bind(new InetSocketAddress(host, port));
        } catch (IOException | RuntimeException e) {
            listener.close();
            throw e;
        }
        InetSocketAddress bound = (InetSocketAddress) listener.getLocalAddress();
        startAccepting(listener, "tcp " + bound);
        return bound;
    }

    /** Listens on a Unix domain socket; the path must not exist yet and is removed by {@link #close()}. */
    public void listenUnix(Path socketPath) throws IOException {
        ServerSocketChannel listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            listener.bind(UnixDomainSocketAddress.of(socketPath));
        } catch (IOException | RuntimeException e) {
            listener.close();
            throw e;
        }
        unixSocketPaths.add(socketPath);
        startAccepting(listener, "unix " + socketPath);
    }

    /**
     * Serves one connection on an already-connected channel pair and returns when it ends. The
     * channels are closed afterwards.
     */
    public void serve(ReadableByteChannel in, WritableByteChannel out, String peer) {
        Connection connection = new Connection(peer, in, out, catalog, metaContexts, limits, () -> shuttingDown, lentReads);
        connections.put(connection, Thread.currentThread());
        try {
            connection.run();
        } finally {
            connections.remove(connection);
        }
    }

    /**
     * Inetd mode: serves the connection the process was started with and returns when it ends. If
     * standard input is a socket (inetd, systemd {@code Accept=yes}, or a client that spawned us over a
     * socket pair) it is used for both directions; if it is a listening socket, this accepts on it
     * until {@link #close()}; otherwise standard input and output are used as two pipes.
     *
     * <p>Standard output carries the protocol, so {@code System.out} is redirected to standard error
     * first: a stray print or console log line would otherwise corrupt the stream. Closing an inherited
     * channel makes the JDK point descriptors 0, 1 and 2 at /dev/null, which would silence the last
     * log lines (the store's final commit among them); so both streams write to a descriptor of their
     * own for standard error, where the platform allows one.
     */
    public void serveInetd() throws IOException {
        WritableByteChannel stdout = new FileOutputStream(FileDescriptor.out).getChannel();
        PrintStream log = ownStandardError();
        System.setOut(log);
        System.setErr(log);
        Channel inherited = System.inheritedChannel();
        switch (inherited) {
            case SocketChannel socket -> serve(socket, socket, "inetd " + describe(socket));
            case ServerSocketChannel listener -> {
                startAccepting(listener, "inherited " + listener.getLocalAddress());
                Thread accepting = acceptThreads.getLast();
                try {
                    accepting.join();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            case null, default -> serve(new FileInputStream(FileDescriptor.in).getChannel(), stdout, "stdio");
        }
    }

    /**
     * A stream to what standard error is now, on a descriptor of its own ({@code /proc/self/fd/2},
     * appending): unaffected when the JDK later redirects descriptor 2. Falls back to descriptor 2
     * (e.g. when standard error is a socket, which cannot be opened by path).
     */
    private static PrintStream ownStandardError() {
        Path stderr = Path.of("/proc/self/fd/2");
        if (Files.exists(stderr)) {
            try {
                return new PrintStream(new FileOutputStream(stderr.toFile(), true), true);
            } catch (IOException | SecurityException e) {
                // fall through
            }
        }
        return new PrintStream(new FileOutputStream(FileDescriptor.err), true);
    }

    /**
     * Ends every connection to an export {@code matching} accepts, as {@link #close()} ends all of them: it
     * answers the requests in flight (new ones get ESHUTDOWN) for a grace period, then closes. For a disk
     * that moves to another node. Returns how many connections it ended.
     */
    public int disconnect(java.util.function.Predicate<String> matching) {
        List<Map.Entry<Connection, Thread>> ending = new ArrayList<>();
        for (Map.Entry<Connection, Thread> entry : connections.entrySet()) {
            String export = entry.getKey().exportName();
            if (export != null && matching.test(export)) {
                entry.getKey().stopReading();
                ending.add(entry);
            }
        }
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(SHUTDOWN_GRACE_MILLIS);
        for (Map.Entry<Connection, Thread> entry : ending) {
            if (!join(entry.getValue(), Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())))) {
                entry.getKey().close();
            }
        }
        return ending.size();
    }

    /**
     * Bytes of large READ replies since the server started: sent in place from the store without a copy, and
     * copied first (where the store could not lend them, or a client made no room in time). In that order.
     * Both stay 0 where replies cannot be sent in place at all (no socket descriptor: every READ is copied).
     */
    public long[] largeReadBytesInPlaceAndCopied() {
        return new long[] {lentReads.inPlaceBytes.sum(), lentReads.copiedBytes.sum()};
    }

    /** Number of connections currently open. */
    public int connectionCount() {
        return connections.size();
    }

    /**
     * Stops listening, lets open connections answer their in-flight requests (new ones get
     * ESHUTDOWN) for a short grace period, then closes them. Idempotent.
     */
    @Override
    public void close() {
        shuttingDown = true;
        for (ServerSocketChannel listener : listeners) {
            try {
                listener.close();
            } catch (IOException e) {
                log.debug("closing listener failed: {}", e.toString());
            }
        }
        joinAll(acceptThreads, SHUTDOWN_GRACE_MILLIS);
        for (Connection connection : connections.keySet()) {
            connection.stopReading();
        }
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(SHUTDOWN_GRACE_MILLIS);
        for (Map.Entry<Connection, Thread> entry : connections.entrySet()) {
            if (!join(entry.getValue(), Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())))) {
                entry.getKey().close();
            }
        }
        for (Path path : unixSocketPaths) {
            try {
                Files.deleteIfExists(path);
            } catch (IOException e) {
                log.debug("removing {} failed: {}", path, e.toString());
            }
        }
        unixSocketPaths.clear();
    }

    private void startAccepting(ServerSocketChannel listener, String description) {
        listeners.add(listener);
        if (shuttingDown) {
            try {
                listener.close();
            } catch (IOException ignored) {
                // Closing a listener that was never used; nothing to report.
            }
            throw new IllegalStateException("server is closed");
        }
        log.info("listening on {}", description);
        Thread acceptor = Thread.ofVirtual().name("nbd-accept " + description).unstarted(() -> acceptLoop(listener, description));
        acceptThreads.add(acceptor);
        acceptor.start();
    }

    private void acceptLoop(ServerSocketChannel listener, String description) {
        while (!shuttingDown) {
            SocketChannel socket;
            try {
                socket = listener.accept();
            } catch (ClosedChannelException e) {
                break;
            } catch (IOException e) {
                // A failed accept (e.g. out of file descriptors) must not end the server; back off briefly.
                log.warn("accept on {} failed: {}", description, e.toString());
                sleepQuietly(100);
                continue;
            }
            startConnection(socket);
        }
        log.info("stopped listening on {}", description);
    }

    private void startConnection(SocketChannel socket) {
        String peer = "#" + connectionSequence.incrementAndGet() + " " + describe(socket);
        try {
            if (socket.getLocalAddress() instanceof InetSocketAddress) {
                // Spec: both sides SHOULD disable Nagle so small replies are not held back.
                socket.setOption(StandardSocketOptions.TCP_NODELAY, true);
            }
        } catch (IOException e) {
            log.debug("{}: setting TCP_NODELAY failed: {}", peer, e.toString());
        }
        Connection connection = new Connection(peer, socket, socket, catalog, metaContexts, limits, () -> shuttingDown, lentReads);
        Thread thread = Thread.ofPlatform().daemon(true).name("nbd-connection " + peer).unstarted(() -> {
            try {
                connection.run();
            } finally {
                connections.remove(connection);
            }
        });
        connections.put(connection, thread);
        thread.start();
        if (shuttingDown) {
            connection.close();
        }
    }

    private static String describe(SocketChannel socket) {
        try {
            SocketAddress remote = socket.getRemoteAddress();
            return remote == null || remote.toString().isEmpty() ? "local" : remote.toString();
        } catch (IOException e) {
            return "unknown peer";
        }
    }

    private static void joinAll(List<Thread> threads, long timeoutMillis) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        for (Thread thread : threads) {
            join(thread, Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
        }
    }

    private static boolean join(Thread thread, long timeoutMillis) {
        try {
            return thread.join(java.time.Duration.ofMillis(timeoutMillis));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    private static void sleepQuietly(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
