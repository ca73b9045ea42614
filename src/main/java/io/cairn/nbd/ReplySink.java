package io.cairn.nbd;

import io.cairn.io.SocketDescriptor;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Where replies go. One call sends one or more whole messages; calls from different threads never
 * interleave, so a reply header is always followed by its own payload.
 */
@FunctionalInterface
interface ReplySink {

    void send(ByteBuffer... buffers) throws IOException;

    /** The socket a {@link DirectReply} sends to; null when there is none, and then only buffers can be sent. */
    default SocketDescriptor socket() {
        return null;
    }

    /**
     * Sends a reply that writes itself when its turn on the wire comes: {@code reply} runs while this sink
     * writes nothing else, and the call returns once the reply is complete on the wire (or failed). Only
     * where {@link #socket()} is not null.
     */
    default void send(DirectReply reply) throws IOException {
        throw new UnsupportedOperationException("this sink has no socket to send to");
    }

    /** A reply that writes itself, straight to the socket and through the sink's own writes. */
    @FunctionalInterface
    interface DirectReply {

        /**
         * Writes one whole reply: raw to {@code socket}, or through {@code out}, which writes buffers
         * completely, or both in turn. An IOException means the reply may be incomplete on the wire.
         */
        void write(SocketDescriptor socket, BufferWriter out) throws IOException;
    }

    /** Writes buffers completely, in order. */
    @FunctionalInterface
    interface BufferWriter {

        void write(ByteBuffer... buffers) throws IOException;
    }
}
