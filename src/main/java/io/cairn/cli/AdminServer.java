package io.cairn.cli;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Answers the admin socket of a running server: each connection carries one command line, run with
 * the same code as the offline CLI against the live store (design: docs/ADMIN.md). Only the owner
 * of the socket file may connect (mode 0600). One virtual thread per client; commands run
 * concurrently with NBD I/O.
 */
final class AdminServer implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(AdminServer.class);

    private final Path socket;
    private final ServerSocketChannel channel;
    private final Thread acceptor;
    private final Set<Thread> clients = ConcurrentHashMap.newKeySet();

    /** How long {@link #close()} lets commands in flight finish, so their clients get an answer. */
    private static final Duration CLOSE_GRACE = Duration.ofSeconds(20);

    AdminServer(Path socket) throws IOException {
        this.socket = socket;
        Files.deleteIfExists(socket);
        channel = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        channel.bind(UnixDomainSocketAddress.of(socket));
        Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-------"));
        acceptor = Thread.ofVirtual().name("cairn-admin").start(this::accept);
    }

    Path socket() {
        return socket;
    }

    private void accept() {
        while (channel.isOpen()) {
            try {
                SocketChannel client = channel.accept();
                Thread thread = Thread.ofVirtual().name("cairn-admin-client").unstarted(() -> {
                    try {
                        answer(client);
                    } finally {
                        clients.remove(Thread.currentThread());
                    }
                });
                clients.add(thread);
                thread.start();
            } catch (IOException closed) {
                if (channel.isOpen()) {
                    LOG.warn("admin socket accept failed: {}", closed.toString());
                }
                return;
            }
        }
    }

    private void answer(SocketChannel client) {
        try (client;
             DataInputStream in = new DataInputStream(Channels.newInputStream(client));
             DataOutputStream out = new DataOutputStream(Channels.newOutputStream(client))) {
            List<String> arguments = AdminProtocol.readRequest(in);
            long start = System.nanoTime();
            AdminProtocol.Response response = run(arguments);
            // The time spent here, without the client's start-up: what a command costs the server.
            LOG.info("admin: cairn {} -> exit {} in {} ms", String.join(" ", arguments), response.exitCode(),
                    String.format(java.util.Locale.ROOT, "%.1f", (System.nanoTime() - start) / 1e6));
            AdminProtocol.writeResponse(out, response);
        } catch (IOException | RuntimeException problem) {
            LOG.warn("admin request failed: {}", problem.toString());
        }
    }

    /** Runs one command line in this process, capturing what it prints. */
    static AdminProtocol.Response run(List<String> arguments) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int exit = Main.commandLine()
                .setOut(new PrintWriter(out, true))
                .setErr(new PrintWriter(err, true))
                .execute(arguments.toArray(String[]::new));
        return new AdminProtocol.Response(exit, out.toString(), err.toString());
    }

    /** Stops accepting, removes the socket, and waits (bounded) for the commands in flight. */
    @Override
    public void close() throws IOException {
        channel.close();
        Files.deleteIfExists(socket);
        try {
            acceptor.join(1000);
            long deadline = System.nanoTime() + CLOSE_GRACE.toNanos();
            for (Thread client : List.copyOf(clients)) {
                long left = deadline - System.nanoTime();
                if (left <= 0 || !client.join(Duration.ofNanos(left))) {
                    LOG.warn("an admin command is still running; closing without it");
                    break;
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
