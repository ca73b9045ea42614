package io.cairn.nbd;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.SocketChannel;
import java.nio.channels.WritableByteChannel;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A client connection passed on to the server that serves its export (another node of a cluster), so that
 * a client which reconnects to the address it knows (qemu's {@code reconnect-delay}) reaches a disk that
 * migrated away from it.
 *
 * <p>Design notes.
 * <ol>
 *   <li>The hand-over happens at the first option that names an export served elsewhere (GO, INFO,
 *       EXPORT_NAME, or a metadata-context option). Up to then this server answered the client itself; of
 *       what was negotiated, only the client flags and structured replies carry over to later options (metadata
 *       contexts are set per export, and the one they were set for is the one being relayed, so the client sets
 *       them again on the other side if it had not yet). So the relay sends the other server the client's flags,
 *       STRUCTURED_REPLY if it was negotiated (its reply is checked and dropped), then the option itself
 *       unchanged; from then on bytes are copied both ways untouched, and the other server answers everything.</li>
 *   <li>Until the option has been forwarded nothing is lost by failing: {@link #connect} throws and the
 *       client gets an error reply to its option. After that the relay only copies; the session ends
 *       when either side ends it.</li>
 *   <li>Ending: the client's end of stream is passed on as a half-close, so the other server still answers
 *       what is outstanding (the protocol's rule for a disconnect); the other server's end of stream, or a
 *       failure either way, ends the whole session at once.</li>
 * </ol>
 * Threading: {@link #run} copies client to server on the calling thread and server to client on a virtual thread.
 */
final class Relay implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(Relay.class);
    static final int CONNECT_TIMEOUT_MILLIS = 5_000;
    private static final int COPY_BUFFER_BYTES = 256 * 1024;

    private final SocketChannel server;
    private final InetSocketAddress address;

    private Relay(SocketChannel server, InetSocketAddress address) {
        this.server = server;
        this.address = address;
    }

    /**
     * Connects to {@code address} and replays the negotiation so far: the greeting is checked, the client's
     * flags sent, and STRUCTURED_REPLY negotiated if {@code structuredReplies}.
     *
     * @throws IOException if the other server cannot be reached or does not accept the negotiation; nothing of
     *                     the client's option has been sent then
     */
    static Relay connect(InetSocketAddress address, int clientFlags, boolean structuredReplies) throws IOException {
        SocketChannel server = SocketChannel.open();
        try {
            server.setOption(StandardSocketOptions.TCP_NODELAY, true);
            server.socket().connect(address, CONNECT_TIMEOUT_MILLIS);
            server.socket().setSoTimeout(CONNECT_TIMEOUT_MILLIS);
            ByteBuffer greeting = ByteBuffer.allocate(NbdConstants.GREETING_BYTES);
            readFully(server, greeting, "its greeting");
            greeting.flip();
            if (greeting.getLong() != NbdConstants.NBDMAGIC || greeting.getLong() != NbdConstants.IHAVEOPT) {
                throw new IOException("it is not a newstyle NBD server");
            }
            int handshakeFlags = Short.toUnsignedInt(greeting.getShort());
            if ((handshakeFlags & NbdConstants.FLAG_FIXED_NEWSTYLE) == 0
                    || ((clientFlags & NbdConstants.FLAG_C_NO_ZEROES) != 0 && (handshakeFlags & NbdConstants.FLAG_NO_ZEROES) == 0)) {
                throw new IOException("it does not offer the handshake flags the client chose (0x"
                        + Integer.toHexString(handshakeFlags) + ")");
            }
            writeFully(server, ByteBuffer.allocate(4).putInt(clientFlags).flip());
            if (structuredReplies) {
                writeFully(server, ByteBuffer.allocate(NbdConstants.OPTION_HEADER_BYTES).putLong(NbdConstants.IHAVEOPT)
                        .putInt(NbdConstants.OPT_STRUCTURED_REPLY).putInt(0).flip());
                ByteBuffer reply = ByteBuffer.allocate(OPTION_REPLY_HEADER_BYTES);
                readFully(server, reply, "its answer to STRUCTURED_REPLY");
                reply.flip();
                long magic = reply.getLong();
                int option = reply.getInt();
                int type = reply.getInt();
                int lengthBytes = reply.getInt();
                if (magic != NbdConstants.OPTION_REPLY_MAGIC || option != NbdConstants.OPT_STRUCTURED_REPLY
                        || type != NbdConstants.REP_ACK || lengthBytes != 0) {
                    throw new IOException("it refused structured replies (reply type 0x" + Integer.toHexString(type) + ")");
                }
            }
            server.socket().setSoTimeout(0);
            return new Relay(server, address);
        } catch (IOException | RuntimeException failure) {
            server.close();
            throw failure instanceof IOException io ? io : new IOException(failure.getMessage(), failure);
        }
    }

    /** Option reply header: magic, option, reply type, length. */
    private static final int OPTION_REPLY_HEADER_BYTES = 20;

    /**
     * Forwards {@code pending} (the option that named the export, and whatever the client sent after it) and
     * copies both ways until the session ends. Returns the bytes copied from the client and to it.
     *
     * @param closeClient closes the client's channels (so that a read blocked on them ends)
     */
    long[] run(String peer, ByteBuffer pending, ReadableByteChannel client, WritableByteChannel clientOut,
               Runnable closeClient) {
        AtomicLong toServerBytes = new AtomicLong();
        AtomicLong toClientBytes = new AtomicLong();
        Thread back = Thread.ofVirtual().name("nbd-relay-" + peer).start(() -> {
            try {
                copy(server, clientOut, toClientBytes);
            } catch (IOException ended) {
                log.debug("{}: relay from {} ended: {}", peer, address, ended.toString());
            } finally {
                // The other server ended the session (or failed): so does this one.
                closeClient.run();
                closeQuietly();
            }
        });
        try {
            writeFully(server, pending);
            toServerBytes.addAndGet(pending.position());
            copy(client, server, toServerBytes);
            // The client is done sending: the other server answers what is outstanding, then ends the session.
            server.shutdownOutput();
        } catch (IOException ended) {
            log.debug("{}: relay to {} ended: {}", peer, address, ended.toString());
            closeClient.run();
            closeQuietly();
        }
        try {
            back.join();
        } catch (InterruptedException interrupted) {
            Thread.currentThread().interrupt();
            closeQuietly();
        }
        return new long[] {toServerBytes.get(), toClientBytes.get()};
    }

    /** Copies until end of stream. */
    private static void copy(ReadableByteChannel from, WritableByteChannel to, AtomicLong counted) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocateDirect(COPY_BUFFER_BYTES);
        while (from.read(buffer) >= 0) {
            buffer.flip();
            counted.addAndGet(buffer.remaining());
            writeFully(to, buffer);
            buffer.clear();
        }
    }

    private static void readFully(SocketChannel channel, ByteBuffer buffer, String what) throws IOException {
        // A blocking socket channel ignores SO_TIMEOUT; its stream does not.
        java.io.InputStream in = channel.socket().getInputStream();
        while (buffer.hasRemaining()) {
            int read = in.read(buffer.array(), buffer.arrayOffset() + buffer.position(), buffer.remaining());
            if (read < 0) {
                throw new IOException("it closed the connection before " + what);
            }
            buffer.position(buffer.position() + read);
        }
    }

    private static void writeFully(WritableByteChannel channel, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
    }

    private void closeQuietly() {
        try {
            server.close();
        } catch (IOException ignored) {
            // Closing is all that is left to do.
        }
    }

    @Override
    public void close() {
        closeQuietly();
    }
}
