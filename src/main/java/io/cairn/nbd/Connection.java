package io.cairn.nbd;

import io.cairn.io.SocketDescriptor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.Channel;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client connection over a pair of byte channels (a socket, or stdin/stdout in inetd mode, or
 * in-memory channels in tests): reads and bounds every message, drives {@link Handshake} and then
 * {@link Transmission}, and writes replies.
 *
 * <p>Threading: {@link #run()} runs the handshake on the connection's own thread. In transmission,
 * platform threads take turns as the reader (leader/follower, as in nbdkit): the thread holding
 * {@link #readTurn} reads and validates one request, passes the turn on, then executes that request
 * and writes its reply itself, or leaves it to the thread writing replies at that moment (design
 * note 8). So a request never waits for a hand-off to another thread before it runs, and several run
 * at once; replies may complete out of order, and the client matches them by cookie. One thread at a
 * time writes replies ({@link #writing}), so messages never interleave. (Platform threads, because
 * the block device does its system calls on platform threads without a hand-off.)
 *
 * <p>Design notes:
 * <ol>
 *   <li>Memory is bounded before it is allocated: option data above 64 KiB and WRITE payloads above
 *       32 MiB are skipped through a small scratch buffer, never stored.</li>
 *   <li>Backpressure: every server thread holds a permit from {@link #inFlight}, so at most that many
 *       requests run at once; a thread is added only when nobody is waiting for the reader's turn.
 *       The reader takes buffer bytes from {@link #bufferBudget} before allocating a payload, and
 *       gives them back after the reply is written. A client that floods requests stalls itself only.</li>
 *   <li>DISC, EOF or a bad request magic ends reading; outstanding requests complete and are
 *       answered before the channels close (spec: the server MUST handle all outstanding requests).
 *       A failed reply write closes the channels at once, so the other workers fail fast.</li>
 *   <li>Whatever happens, the export opened for this connection is closed exactly once, after the
 *       last worker has finished.</li>
 *   <li>Requests run concurrently, but one that overlaps an earlier write, trim or zeroing still in
 *       flight waits for it: overlapping requests take effect in the order they arrived. (The
 *       protocol does not promise this; clients and tests that pipeline a write and a read of the
 *       same bytes get what they expect, and it costs a scan of the few writes in flight.)</li>
 *   <li>Payload buffers come from {@link Limits#allocator()} and go back to it once stored or sent;
 *       by default they are recycled direct buffers ({@link PayloadBuffers.DirectPool}).</li>
 *   <li>Receiving is buffered: one read takes in every request the client has pipelined so far (up to
 *       128 KiB), so a queue of small writes costs one system call, not two per request (header, then
 *       payload). Payloads of 128 KiB or more skip the buffer and go straight into their own; and after
 *       such a WRITE the next refill takes only the next request's header, since the next request is
 *       likely another large WRITE, whose payload bytes caught in the buffer would have to be copied
 *       out again (a profile of 1 MiB writes found that copy at 5% of the server's CPU).</li>
 *   <li>Sending is combined and never waits for another sender: a finished request queues its reply
 *       and, unless another thread is writing already, becomes the writer, which writes every queued
 *       reply with one gathering write until the queue is empty. A thread that finds a writer at work
 *       leaves its reply to it and goes on to the next request instead of parking: on a loaded machine
 *       each park and wake-up costs a context switch, and under 1 MiB reads a reply waited for the one
 *       before it to cross the socket. The writer looks at the queue again after it stops writing, so a
 *       reply queued just as it stopped is never stranded. A reply's buffers stay untouched until its
 *       completion has run on the writer's thread (which gives them and the request's share of
 *       {@link #bufferBudget} back), and at most {@link #unsentReplies} replies wait, so a client that
 *       stops reading stalls the reader, not the heap.</li>
 *   <li>Large READ data goes from the store to the socket with one copy, not two: the request leaves a
 *       {@link LentRead} instead of reading, and the writer, when it comes to it, has the export lend the
 *       bytes in place (mapped memory of the store file) and sends them with one gathering send, the kernel
 *       copying them from the page cache straight into the socket. The lend keeps the blocks from being
 *       freed and reused only while it lasts, and the send copies the bytes before it returns (unlike
 *       {@code sendfile}, which leaves the socket referring to page-cache pages until the client has read
 *       them), so a reply never carries bytes of a block reused meanwhile. The lend is bounded in time: each
 *       raw send waits at most {@link #SEND_WAIT_MILLIS} for room, and after {@link #LEND_MAX_NANOS} (more
 *       for large replies) or a send that took nothing, the rest of the data is copied out (with a device read, whose errors are
 *       precise) and the lend ends before the writer blocks on a slow client. A failure before any byte of
 *       the reply is sent becomes its error reply; after, the connection closes (the client cannot be told
 *       otherwise that data already sent is incomplete). The data is taken when the reply is sent, after
 *       every earlier overlapping write (design note 5 held the READ back until they were done); a write
 *       that arrived after the READ may show in it, as the protocol allows (commands may be processed out
 *       of order). Where the socket's descriptor cannot be had
 *       ({@link SocketDescriptor}) or the export does not lend, READs are copied as they run.</li>
 * </ol>
 */
final class Connection implements Runnable {

    private static final Logger log = LoggerFactory.getLogger(Connection.class);
    private static final int SCRATCH_BYTES = 64 * 1024;
    /** Receive buffer: a few dozen pipelined requests with 4 KiB payloads arrive in one system call. */
    private static final int READ_AHEAD_BYTES = 128 * 1024;
    /** Buffers per gathering write of combined replies (Linux takes up to 1024 per call). */
    private static final int MAX_BATCH_BUFFERS = 256;
    /**
     * Bytes after which a batch is written without taking more replies. Under 1 MiB reads, batches cut here beat
     * writes of many megabytes at once (bench/builds-ab.sh read, 4 alternating rounds: 1,842 against 1,723 MiB/s,
     * 547 against 574 µs of server CPU per MiB, ahead in every round). Small replies are never cut: at most a few
     * dozen are in flight.
     */
    private static final long MAX_BATCH_BYTES = 256 * 1024;
    /** Longest wait of one raw send for room in the socket while bytes are lent (design note 9). */
    private static final int SEND_WAIT_MILLIS = 5;
    /**
     * Longest a lend lasts while the writer sends from it (design note 9): this, plus a nanosecond per byte
     * (a client taking 1 GB/s finishes a 32 MiB reply in time).
     */
    private static final long LEND_MAX_NANOS = 10_000_000;
    /** First buffer for a WRITE payload; larger payloads grow from here as their bytes arrive. */
    private static final int INITIAL_PAYLOAD_BYTES = 1024 * 1024;

    /**
     * Per-connection resource limits.
     *
     * @param maxInFlightRequests requests dispatched but not yet answered
     * @param maxBufferedBytes    payload bytes held by those requests; at least one maximal payload
     * @param allocator           allocates payload buffers and takes them back; tests wrap it to watch sizes
     */
    record Limits(int maxInFlightRequests, int maxBufferedBytes, PayloadBuffers allocator) {
        static final Limits DEFAULT = new Limits(64, 2 * NbdConstants.MAX_PAYLOAD_BYTES,
                new PayloadBuffers.DirectPool(2L * NbdConstants.MAX_PAYLOAD_BYTES));

        Limits {
            if (maxInFlightRequests < 1 || maxBufferedBytes < NbdConstants.MAX_PAYLOAD_BYTES) {
                throw new IllegalArgumentException("limits too small: " + maxInFlightRequests + " requests, "
                        + maxBufferedBytes + " bytes");
            }
        }
    }

    /** Platform threads that serve requests, shared by all connections and reused between them. */
    private static final ExecutorService WORKERS = Executors.newCachedThreadPool(
            Thread.ofPlatform().name("nbd-request-", 0).daemon(true).factory());

    private final String peer;
    private final ReadableByteChannel in;
    private final WritableByteChannel out;
    private final ExportCatalog catalog;
    private final MetaContexts metaContexts;
    private final Limits limits;
    private final BooleanSupplier shuttingDown;

    private final Semaphore inFlight;
    private final Semaphore bufferBudget;
    /** Set while one thread writes queued replies (design note 8). */
    private final AtomicBoolean writing = new AtomicBoolean();
    /** Replies queued and not yet written: bounded like the requests in flight. */
    private final Semaphore unsentReplies;
    /** Replies handed to {@link #send} and not yet taken by a writer. */
    private final ConcurrentLinkedQueue<PendingReply> pendingReplies = new ConcurrentLinkedQueue<>();
    /** The reader's turn: held by the one server thread that reads the next request. */
    private final ReentrantLock readTurn = new ReentrantLock();
    private final ByteBuffer requestHeader = ByteBuffer.allocateDirect(NbdConstants.REQUEST_HEADER_BYTES);
    /** Bytes received but not yet consumed; touched only by the thread that holds the reader's turn. */
    private final ByteBuffer readAhead = ByteBuffer.allocateDirect(READ_AHEAD_BYTES).flip();
    /** The last request was a WRITE too large for {@link #readAhead}: refill it with no more than asked for. */
    private boolean refillExactly;
    private volatile boolean readingEnded;
    /** Writes dispatched and not yet finished, in arrival order. Guarded by itself. */
    private final List<WriteRange> writesInFlight = new ArrayList<>();
    /**
     * The size of {@link #writesInFlight}, written under its lock and read without it: a read that finds 0
     * has no earlier write to wait for (writes are added only by the reader, which holds the turn) and skips
     * the lock.
     */
    private volatile int writesInFlightCount;
    private volatile IOException readFailure;
    private final AtomicBoolean closed = new AtomicBoolean();
    /**
     * Requests read: counted by the thread holding the reader's turn, read once every server thread has
     * given its permit back (the semaphore orders it after every count).
     */
    private long requestCount;
    private ByteBuffer scratch;
    private volatile String exportName;
    /** The socket, for sends of lent bytes (design note 9); null where it cannot be had. Set before transmission. */
    private volatile SocketDescriptor descriptor;
    private final LentReadCounts lentReads;
    /** This connection's share of {@link #lentReads}. */
    private final LentReadCounts ownLentReads = new LentReadCounts();

    Connection(String peer, ReadableByteChannel in, WritableByteChannel out, ExportCatalog catalog,
               MetaContexts metaContexts, Limits limits, BooleanSupplier shuttingDown) {
        this(peer, in, out, catalog, metaContexts, limits, shuttingDown, new LentReadCounts());
    }

    /** @param lentReads where the bytes of lent READs are counted, by how they went (design note 9) */
    Connection(String peer, ReadableByteChannel in, WritableByteChannel out, ExportCatalog catalog,
               MetaContexts metaContexts, Limits limits, BooleanSupplier shuttingDown, LentReadCounts lentReads) {
        this.lentReads = lentReads;
        this.peer = peer;
        this.in = in;
        this.out = out;
        this.catalog = catalog;
        this.metaContexts = metaContexts;
        this.limits = limits;
        this.shuttingDown = shuttingDown;
        this.inFlight = new Semaphore(limits.maxInFlightRequests());
        this.unsentReplies = new Semaphore(limits.maxInFlightRequests());
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
            long inPlaceBytes = ownLentReads.inPlaceBytes.sum();
            long copiedBytes = ownLentReads.copiedBytes.sum();
            if (inPlaceBytes + copiedBytes > 0) {
                log.info("{}: disconnected from export '{}' after {} requests; large READs: {} MiB sent in place, {} MiB copied",
                        peer, exportName == null ? "" : exportName, requestCount, inPlaceBytes >> 20, copiedBytes >> 20);
            } else {
                log.info("{}: disconnected from export '{}' after {} requests", peer,
                        exportName == null ? "" : exportName, requestCount);
            }
        }
    }

    /** Closes both channels at once; blocked reads and writes fail, and the connection winds down. */
    /** The export this connection chose in its handshake, or null before. */
    String exportName() {
        return exportName;
    }

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
            ByteBuffer clientFlagsBytes = ByteBuffer.allocate(4);
            if (!readFully(clientFlagsBytes)) {
                return null;
            }
            int clientFlags = clientFlagsBytes.flip().getInt();
            if (handshake.onClientFlags(clientFlags) == Handshake.Next.CLOSE) {
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
                    if (next == Handshake.Next.RELAY) {
                        next = relay(handshake, clientFlags, header.rewind(), data.rewind(), option, replies);
                        if (next == Handshake.Next.CLOSE && replies.isEmpty()) {
                            return null; // relayed to its end
                        }
                    }
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

    /**
     * Relays the rest of the session to the server that serves the export the option named ({@link Relay}).
     * Returns CLOSE with no replies once the relayed session has ended, or what the handshake says after an
     * error reply to the option, with the reply in {@code replies}, if that server could not take it.
     */
    private Handshake.Next relay(Handshake handshake, int clientFlags, ByteBuffer optionHeader, ByteBuffer optionData,
                                 int option, List<ByteBuffer> replies) {
        ServedElsewhereException elsewhere = handshake.servedElsewhere();
        java.net.InetSocketAddress target = elsewhere.server();
        Relay relay;
        try {
            relay = Relay.connect(target, clientFlags, handshake.structuredReplies());
        } catch (IOException unreachable) {
            log.warn("{}: export '{}' is served at {}, which cannot take the connection: {}", peer,
                    elsewhere.exportName(), target, unreachable.getMessage());
            return handshake.relayFailed(option, "export '" + elsewhere.exportName() + "' is served at "
                    + target.getHostString() + ":" + target.getPort() + ", which cannot be reached: " + unreachable.getMessage(),
                    replies);
        }
        exportName = elsewhere.exportName();
        log.info("{}: relaying export '{}' to {}", peer, exportName, target);
        // The option that named the export, then whatever the client sent after it.
        ByteBuffer pending = ByteBuffer.allocate(optionHeader.remaining() + optionData.remaining() + readAhead.remaining());
        pending.put(optionHeader).put(optionData).put(readAhead).flip();
        try (relay) {
            long[] bytes = relay.run(peer, pending, in, out, this::closeChannels);
            log.info("{}: relayed export '{}' to {} ({} bytes to it, {} back)", peer, exportName, target, bytes[0], bytes[1]);
        }
        return Handshake.Next.CLOSE;
    }

    // ---- transmission ----

    /**
     * Serves requests until the stream ends, then waits for every other server thread (design note 3).
     * The connection's own thread is the first one; it holds an in-flight permit while it serves.
     */
    private void transmit(Transmission transmission) throws IOException, InterruptedException {
        descriptor = SocketDescriptor.of(out, SEND_WAIT_MILLIS);
        ReplySink sink = descriptor == null ? this::send : new ReplySink() {
            @Override
            public void send(Runnable afterSent, ByteBuffer... buffers) throws IOException {
                Connection.this.send(afterSent, buffers);
            }

            @Override
            public boolean lendsInPlace() {
                return true;
            }

            @Override
            public void sendLentRead(LentRead read, Runnable afterSent) throws IOException {
                queue(new PendingReply(new ByteBuffer[0], read, afterSent));
            }
        };
        inFlight.acquire();
        try {
            serve(transmission, sink);
        } finally {
            inFlight.release();
        }
        // Outstanding requests are answered before the channels close.
        awaitIdle();
        IOException failure = readFailure;
        if (failure != null) {
            throw failure;
        }
    }

    /**
     * One server thread: takes the reader's turn, reads and validates one request, hands the turn on,
     * then executes the request and sends its reply. Returns when the stream has ended.
     */
    private void serve(Transmission transmission, ReplySink sink) {
        while (true) {
            Work work;
            readTurn.lock();
            try {
                if (readingEnded) {
                    return;
                }
                work = readRequest(transmission, sink);
                if (work == null) {
                    readingEnded = true;
                    return;
                }
                if (!readTurn.hasQueuedThreads() && inFlight.tryAcquire()) {
                    // Nobody is waiting to read the next request while this one runs: add a thread.
                    startServer(transmission, sink);
                }
            } catch (IOException e) {
                readingEnded = true;
                readFailure = e;
                closeChannels();
                return;
            } catch (InterruptedException e) {
                readingEnded = true;
                Thread.currentThread().interrupt();
                return;
            } finally {
                readTurn.unlock();
            }
            execute(transmission, work, sink);
        }
    }

    private void startServer(Transmission transmission, ReplySink sink) {
        try {
            WORKERS.execute(() -> {
                try {
                    serve(transmission, sink);
                } finally {
                    inFlight.release();
                }
            });
        } catch (RuntimeException e) {
            inFlight.release();
            log.warn("{}: cannot start another request thread: {}", peer, e.toString());
        }
    }

    /**
     * A validated request with its payload and the buffer budget it holds; {@code after} are the
     * earlier writes it overlaps, {@code range} is its own entry if it writes.
     */
    private record Work(Request request, ByteBuffer payload, int heldBytes, List<WriteRange> after, WriteRange range) {
    }

    /** A write, trim or zeroing in flight: requests read after it that overlap it wait for {@link #done}. */
    private record WriteRange(long start, long end, CountDownLatch done) {
        boolean overlaps(long otherStart, long otherEnd) {
            return start < otherEnd && otherStart < end;
        }
    }

    /**
     * Registers a request in arrival order (called under the reader's turn): returns the writes in
     * flight that it overlaps, and records it if it writes (design note 6).
     */
    private Work ordered(Request request, ByteBuffer payload, int heldBytes) {
        long start = request.offsetBytes();
        long end = start + request.lengthBytes();
        int type = request.type();
        boolean writes = type == NbdConstants.CMD_WRITE || type == NbdConstants.CMD_TRIM
                || type == NbdConstants.CMD_WRITE_ZEROES;
        if (type == NbdConstants.CMD_FLUSH || end <= start || !writes && writesInFlightCount == 0) {
            return new Work(request, payload, heldBytes, List.of(), null);
        }
        synchronized (writesInFlight) {
            List<WriteRange> after = List.of();
            for (WriteRange earlier : writesInFlight) {
                if (earlier.overlaps(start, end)) {
                    if (after.isEmpty()) {
                        after = new ArrayList<>(2);
                    }
                    after.add(earlier);
                }
            }
            WriteRange range = null;
            if (writes) {
                range = new WriteRange(start, end, new CountDownLatch(1));
                writesInFlight.add(range);
                writesInFlightCount = writesInFlight.size();
            }
            return new Work(request, payload, heldBytes, after, range);
        }
    }

    /**
     * Reads requests until one may run (refused ones are answered here); null when the stream ended:
     * EOF, DISC, or a request without the magic.
     */
    private Work readRequest(Transmission transmission, ReplySink sink) throws IOException, InterruptedException {
        ByteBuffer header = requestHeader;
        while (true) {
            if (!readFully(header.clear())) {
                return null;
            }
            header.flip();
            if (!Request.hasRequestMagic(header)) {
                // Spec: a request without the magic cannot be framed; the only safe answer is hanging up
                // (after answering what was already dispatched, like any other end of the stream).
                log.warn("{}: bad request magic 0x{}, closing", peer, Integer.toHexString(header.getInt(0)));
                return null;
            }
            Request request = Request.decode(header);
            if (request.type() == NbdConstants.CMD_DISC) {
                log.debug("{}: DISC", peer);
                return null;
            }
            requestCount++;
            int heldBytes = 0;
            ByteBuffer payload = null;
            refillExactly = request.type() == NbdConstants.CMD_WRITE && request.lengthBytes() >= READ_AHEAD_BYTES;
            if (request.type() == NbdConstants.CMD_WRITE) {
                if (request.lengthBytes() > NbdConstants.MAX_PAYLOAD_BYTES) {
                    // Validation refuses it below; the payload must still leave the stream to keep framing.
                    if (!skip(request.lengthBytes())) {
                        return null;
                    }
                } else {
                    heldBytes = (int) request.lengthBytes();
                    bufferBudget.acquire(heldBytes);
                    payload = readPayload(heldBytes);
                    if (payload == null) {
                        bufferBudget.release(heldBytes);
                        return null;
                    }
                }
            }
            Transmission.Rejection rejection = shuttingDown.getAsBoolean()
                    ? new Transmission.Rejection(NbdConstants.ESHUTDOWN, "server is shutting down")
                    : transmission.validate(request);
            if (rejection != null) {
                bufferBudget.release(heldBytes);
                if (payload != null) {
                    limits.allocator().release(payload);
                }
                log.debug("{}: {} refused: {}", peer, Request.commandName(request.type()), rejection.message());
                transmission.reject(request, rejection, sink);
                continue;
            }
            if (request.type() == NbdConstants.CMD_READ) {
                heldBytes = (int) request.lengthBytes();
                bufferBudget.acquire(heldBytes);
            }
            return ordered(request, payload, heldBytes);
        }
    }

    private void execute(Transmission transmission, Work work, ReplySink sink) {
        // The budget is the READ data buffer's (or a WRITE payload's): it comes back once the reply is
        // written; by the writer, or here if the request failed before its reply was handed over.
        AtomicBoolean budgetReturned = new AtomicBoolean();
        Runnable returnBudget = () -> {
            if (budgetReturned.compareAndSet(false, true)) {
                bufferBudget.release(work.heldBytes());
            }
        };
        try {
            for (WriteRange earlier : work.after()) {
                awaitUninterruptibly(earlier.done());
            }
            transmission.execute(work.request(), work.payload(), sink, returnBudget);
        } catch (IOException e) {
            log.debug("{}: reply failed: {}", peer, e.toString());
            closeChannels();
        } catch (Throwable t) {
            log.error("{}: request worker failed", peer, t);
            closeChannels();
            returnBudget.run();
        } finally {
            if (work.range() != null) {
                synchronized (writesInFlight) {
                    writesInFlight.remove(work.range());
                    writesInFlightCount = writesInFlight.size();
                }
                work.range().done().countDown();
            }
            if (work.payload() != null) {
                limits.allocator().release(work.payload());
            }
        }
    }

    private static void awaitUninterruptibly(CountDownLatch latch) {
        boolean interrupted = false;
        while (true) {
            try {
                latch.await();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
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

    /**
     * Handshake messages: the connection's thread is the only sender then, so they are written before
     * this returns.
     */
    private void send(ByteBuffer... buffers) throws IOException {
        send(ReplySink.NOTHING, buffers);
    }

    /** Queues whole messages and writes the queue unless another thread is writing it (design note 8). */
    private void send(Runnable afterSent, ByteBuffer... buffers) throws IOException {
        queue(new PendingReply(buffers, null, afterSent));
    }

    private void queue(PendingReply mine) throws IOException {
        unsentReplies.acquireUninterruptibly();
        pendingReplies.add(mine);
        writeQueued();
        IOException failure = mine.failure;
        if (failure != null) {
            throw failure;
        }
    }

    /**
     * Becomes the writer unless there is one, and writes until the queue is empty. The check after
     * letting go closes the race with a sender that queued its reply while this thread was finishing:
     * that sender saw the flag set and left, so whoever lets go last looks once more.
     */
    private void writeQueued() {
        while (!pendingReplies.isEmpty() && writing.compareAndSet(false, true)) {
            try {
                while (!pendingReplies.isEmpty()) {
                    writeBatch();
                }
            } finally {
                writing.set(false);
            }
        }
    }

    /**
     * As the writer: takes queued replies (up to a bound), writes them with one gathering write, completes them.
     * A lent READ goes alone (design note 9). Only the writer takes replies, so a peek is what the poll returns.
     */
    private void writeBatch() {
        PendingReply first = pendingReplies.peek();
        if (first != null && first.lent != null) {
            pendingReplies.poll();
            writeLent(first);
            return;
        }
        List<PendingReply> batch = new ArrayList<>();
        List<ByteBuffer> buffers = new ArrayList<>();
        PendingReply next;
        long batchBytes = 0;
        while (buffers.size() < MAX_BATCH_BUFFERS && batchBytes < MAX_BATCH_BYTES
                && (next = pendingReplies.peek()) != null && next.lent == null) {
            pendingReplies.poll();
            batch.add(next);
            for (ByteBuffer buffer : next.buffers) {
                buffers.add(buffer);
                batchBytes += buffer.remaining();
            }
        }
        IOException failure = null;
        try {
            writeAll(buffers.toArray(ByteBuffer[]::new));
        } catch (IOException e) {
            failure = e;
            log.debug("{}: reply failed: {}", peer, e.toString());
            // The other threads' replies cannot follow a broken stream: end the connection.
            closeChannels();
        }
        unsentReplies.release(batch.size());
        for (PendingReply reply : batch) {
            reply.failure = failure;
            try {
                reply.afterSent.run();
            } catch (RuntimeException e) {
                log.error("{}: completing a reply failed", peer, e);
            }
        }
    }

    /** As the writer: sends one lent READ's reply (design note 9) and completes it. */
    private void writeLent(PendingReply reply) {
        List<ByteBuffer> copies = new ArrayList<>(1);
        IOException failure = null;
        try {
            writeAll(sendInPlace(reply.lent, copies));
        } catch (IOException e) {
            failure = e;
            log.debug("{}: reply failed: {}", peer, e.toString());
            closeChannels();
        } catch (RuntimeException e) {
            failure = new IOException("READ reply failed part way", e);
            log.error("{}: a READ reply failed after part of it was sent; closing the connection", peer, e);
            closeChannels();
        }
        for (ByteBuffer copy : copies) {
            limits.allocator().release(copy);
        }
        unsentReplies.release();
        reply.failure = failure;
        try {
            reply.afterSent.run();
        } catch (RuntimeException e) {
            log.error("{}: completing a reply failed", peer, e);
        }
    }

    /**
     * Sends what it can of a lent READ's reply straight from the export's bytes, within the lend's time bound,
     * and returns what is left to write: the rest of the header and a copy of the rest of the data (added to
     * {@code copies}), or the whole error reply when the data could not be had. Throws once part of the reply
     * has gone and the rest cannot follow.
     */
    private ByteBuffer[] sendInPlace(LentRead read, List<ByteBuffer> copies) throws IOException {
        ByteBuffer header = read.header().duplicate();
        int lengthBytes = read.lengthBytes();
        boolean lent;
        try {
            lent = read.export().lend(read.offsetBytes(), lengthBytes, SocketDescriptor.MAX_BUFFERS - 1, bytes -> {
                List<ByteBuffer> message = new ArrayList<>(bytes.views().size() + 1);
                message.add(header);
                for (ByteBuffer view : bytes.views()) {
                    message.add(view.duplicate());
                }
                long unsentBytes = header.remaining() + (long) lengthBytes;
                long deadline = System.nanoTime() + LEND_MAX_NANOS + lengthBytes;
                while (unsentBytes > 0) {
                    long sent = descriptor.send(message);
                    if (sent == SocketDescriptor.TIMED_OUT) {
                        break;
                    }
                    unsentBytes -= sent;
                    if (System.nanoTime() - deadline > 0) {
                        break;
                    }
                }
                int dataSent = (int) (lengthBytes - Math.min(unsentBytes, lengthBytes));
                countLentRead(dataSent, lengthBytes - dataSent);
                if (dataSent < lengthBytes) {
                    ByteBuffer rest = limits.allocator().apply(lengthBytes - dataSent);
                    copies.add(rest);
                    bytes.copyTo(dataSent, rest);
                }
            });
        } catch (RuntimeException failure) {
            if (header.position() > 0) {
                throw failure;
            }
            return read.failureReply().apply(failure);
        }
        if (!lent) {
            countLentRead(0, lengthBytes);
            ByteBuffer data = limits.allocator().apply(lengthBytes);
            copies.add(data);
            try {
                read.export().read(read.offsetBytes(), data);
            } catch (RuntimeException failure) {
                return read.failureReply().apply(failure);
            }
            data.clear().limit(lengthBytes);
            return new ByteBuffer[] {header, data};
        }
        return copies.isEmpty() ? new ByteBuffer[] {header} : new ByteBuffer[] {header, copies.getFirst()};
    }

    private void countLentRead(long inPlaceBytes, long copiedBytes) {
        for (LentReadCounts counts : List.of(lentReads, ownLentReads)) {
            counts.inPlaceBytes.add(inPlaceBytes);
            counts.copiedBytes.add(copiedBytes);
        }
    }

    private void writeAll(ByteBuffer[] buffers) throws IOException {
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
    }

    /** A reply waiting for the writer; {@code failure} is set by the writer, before it completes the reply. */
    private static final class PendingReply {
        final ByteBuffer[] buffers;
        /** A READ whose data the writer takes from the export (design note 9); null for ready messages. */
        final LentRead lent;
        final Runnable afterSent;
        volatile IOException failure;

        PendingReply(ByteBuffer[] buffers, LentRead lent, Runnable afterSent) {
            this.buffers = buffers;
            this.lent = lent;
            this.afterSent = afterSent;
        }
    }

    /**
     * Reads a WRITE payload, flipped for reading; null if the stream ended first. Large payloads
     * start in a small buffer that grows as bytes arrive, so memory follows what the client actually
     * sent rather than what its 28-byte header claimed.
     */
    private ByteBuffer readPayload(int lengthBytes) throws IOException {
        PayloadBuffers allocator = limits.allocator();
        ByteBuffer payload = allocator.apply(Math.min(lengthBytes, INITIAL_PAYLOAD_BYTES));
        while (true) {
            if (!readFully(payload)) {
                allocator.release(payload);
                return null;
            }
            if (payload.limit() == lengthBytes) {
                return payload.flip();
            }
            ByteBuffer larger = allocator.apply((int) Math.min(lengthBytes, 4L * payload.limit()));
            larger.put(payload.flip());
            allocator.release(payload);
            payload = larger;
        }
    }

    /**
     * Fills the buffer; false if the stream ended first. Small reads are served from {@link #readAhead},
     * refilled by one system call with whatever the client has sent (design note 7); a read at least as
     * large as that buffer goes straight into the destination.
     */
    private boolean readFully(ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            int buffered = readAhead.remaining();
            if (buffered > 0) {
                int take = Math.min(buffered, buffer.remaining());
                buffer.put(buffer.position(), readAhead, readAhead.position(), take);
                buffer.position(buffer.position() + take);
                readAhead.position(readAhead.position() + take);
            } else if (buffer.remaining() >= READ_AHEAD_BYTES) {
                if (in.read(buffer) < 0) {
                    return false;
                }
            } else {
                readAhead.clear();
                if (refillExactly) {
                    readAhead.limit(buffer.remaining());
                }
                int read = in.read(readAhead);
                readAhead.flip();
                if (read < 0) {
                    return false;
                }
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
        SocketDescriptor socket = descriptor;
        if (socket != null) {
            socket.close(); // before the channel: no raw send may reach a reused descriptor number
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
