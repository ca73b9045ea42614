package io.cairn.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.Channel;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.BooleanSupplier;
import java.util.function.IntFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client connection over a pair of byte channels (a socket, or stdin/stdout in inetd mode, or
 * in-memory channels in tests): reads and bounds every message, drives {@link Handshake} and then
 * {@link Transmission}, and writes replies.
 *
 * <p>Threading: {@link #run()} is the reader, on the connection's own (virtual) thread. Each validated
 * request runs on its own virtual worker thread, so replies may complete out of order; the client
 * matches them by cookie. Replies are written under {@link #writeLock} so messages never interleave.
 *
 * <p>Design notes:
 * <ol>
 *   <li>Memory is bounded before it is allocated: option data above 64 KiB and WRITE payloads above
 *       32 MiB are skipped through a small scratch buffer, never stored.</li>
 *   <li>Backpressure: the reader takes a permit from {@link #inFlight} per dispatched request and
 *       buffer bytes from {@link #bufferBudget} before allocating a payload, and workers give both
 *       back after the reply is written. A client that floods requests stalls its own reader only.</li>
 *   <li>DISC, EOF or a bad request magic ends reading; outstanding requests complete and are
 *       answered before the channels close (spec: the server MUST handle all outstanding requests).
 *       A failed reply write closes the channels at once, so the other workers fail fast.</li>
 *   <li>Whatever happens, the export opened for this connection is closed exactly once, after the
 *       last worker has finished.</li>
 * </ol>
 */
final class Connection implements Runnable {

    private static final Logger log = LoggerFactory.getLogger(Connection.class);
    private static final int SCRATCH_BYTES = 64 * 1024;
    /** First buffer for a WRITE payload; larger payloads grow from here as their bytes arrive. */
    private static final int INITIAL_PAYLOAD_BYTES = 1024 * 1024;

    /**
     * Per-connection resource limits.
     *
     * @param maxInFlightRequests requests dispatched but not yet answered
     * @param maxBufferedBytes    payload bytes held by those requests; at least one maximal payload
     * @param allocator           allocates payload buffers; tests wrap it to watch sizes
     */
    record Limits(int maxInFlightRequests, int maxBufferedBytes, IntFunction<ByteBuffer> allocator) {
        static final Limits DEFAULT = new Limits(64, 2 * NbdConstants.MAX_PAYLOAD_BYTES, ByteBuffer::allocate);

        Limits {
            if (maxInFlightRequests < 1 || maxBufferedBytes < NbdConstants.MAX_PAYLOAD_BYTES) {
                throw new IllegalArgumentException("limits too small: " + maxInFlightRequests + " requests, "
                        + maxBufferedBytes + " bytes");
            }
        }
    }

    private final String peer;
    private final ReadableByteChannel in;
    private final WritableByteChannel out;
    private final ExportCatalog catalog;
    private final MetaContexts metaContexts;
    private final Limits limits;
    private final BooleanSupplier shuttingDown;

    private final Semaphore inFlight;
    private final Semaphore bufferBudget;
    private final ReentrantLock writeLock = new ReentrantLock();
    private final AtomicBoolean closed = new AtomicBoolean();
    private final AtomicLong requestCount = new AtomicLong();
    private ByteBuffer scratch;
    private volatile String exportName;

    Connection(String peer, ReadableByteChannel in, WritableByteChannel out, ExportCatalog catalog,
               MetaContexts metaContexts, Limits limits, BooleanSupplier shuttingDown) {
        this.peer = peer;
        this.in = in;
        this.out = out;
        this.catalog = catalog;
        this.metaContexts = metaContexts;
        this.limits = limits;
        this.shuttingDown = shuttingDown;
        this.inFlight = new Semaphore(limits.maxInFlightRequests());
        this.bufferBudget = new Semaphore(limits.maxBufferedBytes());
    }

    String peer() {
        return peer;
    }

    @Override
    public void run() {
        log.info("{}: connected", peer);
        Transmission transmission = null;
        try {
            transmission = handshake();
            if (transmission != null) {
                transmit(transmission);
            }
        } catch (IOException e) {
            log.debug("{}: connection failed: {}", peer, e.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
            log.error("{}: connection aborted by an internal error", peer, e);
        } finally {
            closeChannels();
            awaitIdle();
            if (transmission != null) {
                closeExport(transmission.export());
            }
            log.info("{}: disconnected from export '{}' after {} requests", peer,
                    exportName == null ? "" : exportName, requestCount.get());
        }
    }

    /** Closes both channels at once; blocked reads and writes fail, and the connection winds down. */
    void close() {
        closeChannels();
    }

    /**
     * Stops reading new requests but lets outstanding ones finish: on a socket the read side is shut
     * down, which the reader sees as end of stream. Other channels cannot be half-closed, so they close.
     */
    void stopReading() {
        if (in instanceof java.nio.channels.SocketChannel socket) {
            try {
                socket.shutdownInput();
                return;
            } catch (IOException e) {
                log.debug("{}: shutdownInput failed: {}", peer, e.toString());
            }
        }
        closeChannels();
    }

    // ---- handshake ----

    /** Runs the handshake; returns the transmission phase, or null if the session ended. */
    private Transmission handshake() throws IOException {
        Handshake handshake = new Handshake(catalog, metaContexts, shuttingDown, peer, limits.allocator());
        try {
            send(handshake.greeting());
            ByteBuffer clientFlags = ByteBuffer.allocate(4);
            if (!readFully(clientFlags) || handshake.onClientFlags(clientFlags.flip().getInt()) == Handshake.Next.CLOSE) {
                return null;
            }
            ByteBuffer header = ByteBuffer.allocate(NbdConstants.OPTION_HEADER_BYTES);
            while (true) {
                if (!readFully(header.clear())) {
                    return null;
                }
                header.flip();
                if (header.getLong() != NbdConstants.IHAVEOPT) {
                    log.debug("{}: bad option magic, closing", peer);
                    return null;
                }
                int option = header.getInt();
                long lengthBytes = Integer.toUnsignedLong(header.getInt());
                List<ByteBuffer> replies = new ArrayList<>();
                Handshake.Next next;
                if (lengthBytes > NbdConstants.MAX_OPTION_BYTES) {
                    if (!skip(lengthBytes)) {
                        return null;
                    }
                    next = handshake.onOversizedOption(option, lengthBytes, replies);
                } else {
                    ByteBuffer data = limits.allocator().apply((int) lengthBytes);
                    if (!readFully(data)) {
                        return null;
                    }
                    next = handshake.onOption(option, data.flip(), replies);
                }
                send(replies.toArray(ByteBuffer[]::new));
                if (next == Handshake.Next.CLOSE) {
                    return null;
                }
                if (next == Handshake.Next.TRANSMISSION) {
                    Transmission transmission = handshake.transmission();
                    exportName = handshake.exportName();
                    log.info("{}: serving export '{}' ({} bytes, flags 0x{}, structured replies {})", peer,
                            exportName, transmission.export().sizeBytes(),
                            Integer.toHexString(transmission.transmissionFlags()), transmission.structuredReplies());
                    return transmission;
                }
            }
        } finally {
            handshake.abandon();
        }
    }

    // ---- transmission ----

    private void transmit(Transmission transmission) throws IOException, InterruptedException {
        ByteBuffer header = ByteBuffer.allocate(NbdConstants.REQUEST_HEADER_BYTES);
        ReplySink sink = this::send;
        while (true) {
            if (!readFully(header.clear())) {
                break;
            }
            header.flip();
            if (!Request.hasRequestMagic(header)) {
                // Spec: a request without the magic cannot be framed; the only safe answer is hanging up
                // (after answering what was already dispatched, like any other end of the stream).
                log.warn("{}: bad request magic 0x{}, closing", peer, Integer.toHexString(header.getInt(0)));
                break;
            }
            Request request = Request.decode(header);
            if (request.type() == NbdConstants.CMD_DISC) {
                log.debug("{}: DISC", peer);
                break;
            }
            requestCount.incrementAndGet();
            int heldBytes = 0;
            ByteBuffer payload = null;
            if (request.type() == NbdConstants.CMD_WRITE) {
                if (request.lengthBytes() > NbdConstants.MAX_PAYLOAD_BYTES) {
                    // Validation refuses it below; the payload must still leave the stream to keep framing.
                    if (!skip(request.lengthBytes())) {
                        break;
                    }
                } else {
                    heldBytes = (int) request.lengthBytes();
                    bufferBudget.acquire(heldBytes);
                    payload = readPayload(heldBytes);
                    if (payload == null) {
                        bufferBudget.release(heldBytes);
                        break;
                    }
                }
            }
            Transmission.Rejection rejection = shuttingDown.getAsBoolean()
                    ? new Transmission.Rejection(NbdConstants.ESHUTDOWN, "server is shutting down")
                    : transmission.validate(request);
            if (rejection != null) {
                bufferBudget.release(heldBytes);
                log.debug("{}: {} refused: {}", peer, Request.commandName(request.type()), rejection.message());
                transmission.reject(request, rejection, sink);
                continue;
            }
            if (request.type() == NbdConstants.CMD_READ) {
                heldBytes = (int) request.lengthBytes();
                bufferBudget.acquire(heldBytes);
            }
            inFlight.acquire();
            dispatch(transmission, request, payload, heldBytes, sink);
        }
        // Outstanding requests are answered before the channels close.
        awaitIdle();
    }

    private void dispatch(Transmission transmission, Request request, ByteBuffer payload, int heldBytes,
                          ReplySink sink) {
        Thread.ofVirtual().name("nbd-request-" + peer).start(() -> {
            try {
                transmission.execute(request, payload, sink);
            } catch (IOException e) {
                log.debug("{}: reply failed: {}", peer, e.toString());
                closeChannels();
            } catch (Throwable t) {
                log.error("{}: request worker failed", peer, t);
                closeChannels();
            } finally {
                bufferBudget.release(heldBytes);
                inFlight.release();
            }
        });
    }

    /** Waits until no worker is running: every in-flight permit is back. */
    private void awaitIdle() {
        boolean interrupted = false;
        while (true) {
            try {
                inFlight.acquire(limits.maxInFlightRequests());
                inFlight.release(limits.maxInFlightRequests());
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    private void closeExport(NbdExport export) {
        try {
            export.close();
        } catch (RuntimeException e) {
            log.warn("{}: closing export '{}' failed", peer, exportName, e);
        }
    }

    // ---- channel I/O ----

    /** Writes whole messages; concurrent callers never interleave. */
    private void send(ByteBuffer... buffers) throws IOException {
        writeLock.lock();
        try {
            if (out instanceof GatheringByteChannel gathering) {
                long remaining = 0;
                for (ByteBuffer buffer : buffers) {
                    remaining += buffer.remaining();
                }
                while (remaining > 0) {
                    remaining -= gathering.write(buffers);
                }
            } else {
                for (ByteBuffer buffer : buffers) {
                    while (buffer.hasRemaining()) {
                        out.write(buffer);
                    }
                }
            }
        } finally {
            writeLock.unlock();
        }
    }

    /**
     * Reads a WRITE payload, flipped for reading; null if the stream ended first. Large payloads
     * start in a small buffer that grows as bytes arrive, so memory follows what the client actually
     * sent rather than what its 28-byte header claimed.
     */
    private ByteBuffer readPayload(int lengthBytes) throws IOException {
        ByteBuffer payload = limits.allocator().apply(Math.min(lengthBytes, INITIAL_PAYLOAD_BYTES));
        while (true) {
            if (!readFully(payload)) {
                return null;
            }
            if (payload.capacity() == lengthBytes) {
                return payload.flip();
            }
            ByteBuffer larger = limits.allocator().apply((int) Math.min(lengthBytes, 4L * payload.capacity()));
            payload = larger.put(payload.flip());
        }
    }

    /** Fills the buffer; false if the stream ended first. */
    private boolean readFully(ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            if (in.read(buffer) < 0) {
                return false;
            }
        }
        return true;
    }

    /** Reads and discards bytes through a small buffer; false if the stream ended first. */
    private boolean skip(long lengthBytes) throws IOException {
        if (scratch == null) {
            scratch = ByteBuffer.allocate(SCRATCH_BYTES);
        }
        long remaining = lengthBytes;
        while (remaining > 0) {
            scratch.clear().limit((int) Math.min(SCRATCH_BYTES, remaining));
            if (!readFully(scratch)) {
                return false;
            }
            remaining -= scratch.limit();
        }
        return true;
    }

    private void closeChannels() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        closeQuietly(in);
        if (out != in) {
            closeQuietly(out);
        }
    }

    private static void closeQuietly(Channel channel) {
        try {
            channel.close();
        } catch (IOException ignored) {
            // Nothing left to do with a channel that will not close.
        }
    }
}
