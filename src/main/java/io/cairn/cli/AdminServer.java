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

    /** First argument of a request one node passes to another, so the other does not pass it on again. */
    static final String FORWARDED = "\u0000forwarded";

    private final Path socket;
    /** The other nodes' admin sockets (a store served by several node processes), or null when served alone. */
    private final java.util.function.Supplier<List<Path>> peers;
    /** Runs after each command (a node takes the disks a command created on it). */
    private final Runnable afterCommand;
    private final ServerSocketChannel channel;
    private final Thread acceptor;
    private final Set<Thread> clients = ConcurrentHashMap.newKeySet();

    /** How long {@link #close()} lets commands in flight finish, so their clients get an answer. */
    private static final Duration CLOSE_GRACE = Duration.ofSeconds(20);

    AdminServer(Path socket) throws IOException {
        this(socket, null, () -> {
        });
    }

    /**
     * An admin socket of one node of several serving a store: a command this node may not carry out (exit
     * {@link ExitCodes#NOT_HOLDER}) is passed to the other nodes in turn, and the first that can answers.
     */
    AdminServer(Path socket, java.util.function.Supplier<List<Path>> peers, Runnable afterCommand) throws IOException {
        this.socket = socket;
        this.peers = peers;
        this.afterCommand = afterCommand;
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
            boolean forwarded = !arguments.isEmpty() && arguments.getFirst().equals(FORWARDED);
            if (forwarded) {
                arguments = arguments.subList(1, arguments.size());
            }
            long start = System.nanoTime();
            AdminProtocol.Response response = run(arguments);
            afterCommand.run();
            if (response.exitCode() == ExitCodes.NOT_HOLDER && !forwarded && peers != null) {
                response = askPeers(arguments, response);
            }
            // The time spent here, without the client's start-up: what a command costs the server.
            LOG.info("admin: cairn {} -> exit {} in {} ms", String.join(" ", arguments), response.exitCode(),
                    String.format(java.util.Locale.ROOT, "%.1f", (System.nanoTime() - start) / 1e6));
            AdminProtocol.writeResponse(out, response);
        } catch (IOException | RuntimeException problem) {
            LOG.warn("admin request failed: {}", problem.toString());
        }
    }

    /** Passes a command to the other nodes in turn; the first answer from one that could carry it out, else {@code mine}. */
    private AdminProtocol.Response askPeers(List<String> arguments, AdminProtocol.Response mine) {
        List<String> passed = new java.util.ArrayList<>();
        passed.add(FORWARDED);
        passed.addAll(arguments);
        for (Path peer : peers.get()) {
            if (peer.equals(socket)) {
                continue;
            }
            try {
                java.util.Optional<AdminProtocol.Response> answer = AdminClient.send(peer, peer, passed);
                if (answer.isPresent() && answer.get().exitCode() != ExitCodes.NOT_HOLDER) {
                    return answer.get();
                }
            } catch (io.cairn.io.StorageException brokenOff) {
                LOG.warn("node at {} stopped while answering a passed command: {}", peer, brokenOff.getMessage());
            }
        }
        return mine;
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
