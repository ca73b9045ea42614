package io.cairn.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Where replies go. One call hands over one or more whole messages; messages from different calls
 * never interleave, so a reply header is always followed by its own payload.
 *
 * <p>The call may return before the bytes are on the wire: the buffers belong to the sink until
 * {@code afterSent} has run. It runs exactly once per call, on whichever thread wrote the messages,
 * after they were written or the connection failed; possibly before the call returns.
 */
@FunctionalInterface
interface ReplySink {

    /** Whether {@link #sendLentRead} may be used: the sink can send READ data from where it lives. */
    default boolean lendsInPlace() {
        return false;
    }

    /**
     * Hands over a READ reply whose data the sink reads from the export when it sends it; {@code afterSent}
     * as for {@link #send}. Only when {@link #lendsInPlace} says so.
     *
     * @throws IOException as for {@link #send}
     */
    default void sendLentRead(LentRead read, Runnable afterSent) throws IOException {
        throw new UnsupportedOperationException("this sink does not send READ data in place");
    }

    /** A completion that does nothing: for replies whose buffers nobody reuses. */
    Runnable NOTHING = () -> { };

    /**
     * Hands over whole messages.
     *
     * @throws IOException if this thread wrote them and the write failed; a failure met by another
     *                     thread closes the connection instead
     */
    void send(Runnable afterSent, ByteBuffer... buffers) throws IOException;
}
