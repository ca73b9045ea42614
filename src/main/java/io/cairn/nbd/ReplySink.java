package io.cairn.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Where replies go. One call sends one or more whole messages; calls from different threads never
 * interleave, so a reply header is always followed by its own payload.
 */
@FunctionalInterface
interface ReplySink {

    void send(ByteBuffer... buffers) throws IOException;
}
