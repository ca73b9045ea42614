package io.cairn.cli;

import io.cairn.io.StorageException;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/** Sends a command line to the server that holds a store, if one is running. */
final class AdminClient {

    private AdminClient() {
    }

    /**
     * Runs {@code arguments} on the server of {@code store}; empty if no server answers there (no
     * socket, or a stale one left by a server that died).
     */
    static Optional<AdminProtocol.Response> forward(Path store, List<String> arguments) {
        Optional<AdminProtocol.Response> answer = send(AdminEndpoint.socketFor(store), store, arguments);
        // A store served by several node processes: any of them answers (and passes it to the disk's holder).
        for (Path node : AdminEndpoint.nodeSockets(store)) {
            if (answer.isPresent()) {
                break;
            }
            answer = send(node, store, arguments);
        }
        return answer;
    }

    /** Runs {@code arguments} on the server listening at {@code socket}; empty if none listens there. */
    static Optional<AdminProtocol.Response> send(Path socket, Path store, List<String> arguments) {
        if (!Files.exists(socket)) {
            return Optional.empty();
        }
        SocketChannel channel;
        try {
            channel = SocketChannel.open(StandardProtocolFamily.UNIX);
            channel.connect(UnixDomainSocketAddress.of(socket));
        } catch (IOException nobodyListening) {
            return Optional.empty();
        }
        try (channel;
             DataOutputStream out = new DataOutputStream(Channels.newOutputStream(channel));
             DataInputStream in = new DataInputStream(Channels.newInputStream(channel))) {
            AdminProtocol.writeRequest(out, arguments);
            return Optional.of(AdminProtocol.readResponse(in));
        } catch (IOException broken) {
            throw new StorageException(StorageException.Code.IO, "the server of " + store
                    + " stopped before answering (" + (broken.getMessage() == null ? broken.getClass().getSimpleName()
                    : broken.getMessage()) + "); the command may or may not have been carried out", broken);
        }
    }
}
