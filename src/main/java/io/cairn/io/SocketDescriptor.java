package io.cairn.io;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.nio.channels.Channel;
import java.nio.channels.SocketChannel;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The descriptor of a connected socket channel, for sending straight to it: file bytes with
 * {@code sendfile} ({@link FileBlockDevice#sendTo}), which never copies them through user memory, and
 * small buffers and zeros with {@code send}. The owner writes to the channel and to this descriptor
 * from one thread at a time, so the two never interleave.
 *
 * <p>Design notes.
 * <ol>
 *   <li>The JDK does not publish a channel's descriptor. It is read through the JDK's internal
 *       {@code sun.nio.ch.SelChImpl#getFDVal}, which the JVM allows only with
 *       {@code --add-exports java.base/sun.nio.ch=ALL-UNNAMED} (bin/cairn and the test runs pass it).
 *       Without that flag, or on another system than Linux, {@link #of} returns null and callers copy
 *       through the channel as before.</li>
 *   <li>A raw call bypasses the channel's own bookkeeping, so the channel must not close its descriptor
 *       while one runs or starts: the number could at once belong to another file, and a late call would
 *       send bytes there. Every raw call holds the read side of {@link #guard}; {@link #close} takes the
 *       write side, so it waits for the calls in flight and refuses any later one. The owner closes the
 *       channel only after {@link #close} has returned.</li>
 *   <li>Every raw send is bounded in time: {@link #of} sets the socket's send timeout
 *       ({@code SO_SNDTIMEO}), so a send to a client that does not make room within it returns short, or
 *       with nothing sent. A caller holding a resource while it sends (the store's I/O gate) gives up then,
 *       and {@link #close} never waits longer than one timeout. The channel's own blocking writes are not
 *       affected: the JDK retries a write that returned EAGAIN once the socket is writable.</li>
 *   <li>Raw sends pass {@code MSG_NOSIGNAL}: a peer that has gone gives EPIPE, not a signal.</li>
 * </ol>
 *
 * <p>Threading: every method may be called from any thread; raw sends from two threads at once would
 * interleave their bytes, which the owner prevents.
 */
public final class SocketDescriptor {

    private static final Logger log = LoggerFactory.getLogger(SocketDescriptor.class);

    /** What a send returns when the socket took nothing before its timeout. */
    public static final long TIMED_OUT = PosixFile.SEND_TIMED_OUT;

    private static final int SOL_SOCKET = 1;
    private static final int SO_SNDTIMEO = 21;
    private static final int SHUT_RDWR = 2;
    private static final int MSG_MORE = 0x8000;
    private static final int MSG_NOSIGNAL = 0x4000;
    /** Zeros sent for holes, from one shared native buffer. */
    private static final int ZEROS_BYTES = 64 * 1024;
    /** Native copies of small heap buffers (reply headers) are made through this per-thread buffer. */
    private static final int BOUNCE_BYTES = 4096;

    private static final boolean LINUX = System.getProperty("os.name", "").startsWith("Linux");
    private static final Method FD_VALUE = fdValueMethod();
    private static volatile boolean unavailableLogged;

    private static final MethodHandle SEND = LINUX ? PosixFile.downcall("send", FunctionDescriptor.of(
            ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT),
            PosixFile.CAPTURE_ERRNO) : null;
    private static final MethodHandle SETSOCKOPT = LINUX ? PosixFile.downcall("setsockopt", FunctionDescriptor.of(
            ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
            ValueLayout.JAVA_INT), PosixFile.CAPTURE_ERRNO) : null;
    private static final MethodHandle SHUTDOWN = LINUX ? PosixFile.downcall("shutdown", FunctionDescriptor.of(
            ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT), PosixFile.CAPTURE_ERRNO) : null;
    private static final MemorySegment ZEROS = Arena.global().allocate(ZEROS_BYTES);
    private static final ThreadLocal<MemorySegment> BOUNCE_OF_THREAD =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(BOUNCE_BYTES));

    private final int fd;
    /** Read side: a raw call in flight; write side: {@link #close} (design note 2). */
    private final ReentrantReadWriteLock guard = new ReentrantReadWriteLock();
    /** Set under the write side of {@link #guard}; read under either side. */
    private boolean closed;

    private SocketDescriptor(int fd) {
        this.fd = fd;
    }

    /** I/O that runs with the raw descriptor while it is known to be open. */
    interface RawCall {
        long run(int fd) throws IOException;
    }

    /**
     * The descriptor of {@code channel}, with its send timeout set to {@code sendWaitMillis}; null if the
     * channel is not a connected socket or its descriptor cannot be had (design note 1).
     */
    public static SocketDescriptor of(Channel channel, int sendWaitMillis) {
        if (sendWaitMillis <= 0) {
            throw new IllegalArgumentException("send wait must be positive: " + sendWaitMillis + " ms");
        }
        if (!(channel instanceof SocketChannel socket) || !socket.isConnected() || !socket.isBlocking()) {
            return null;
        }
        if (!LINUX || FD_VALUE == null) {
            if (!unavailableLogged) {
                unavailableLogged = true;
                log.info("sending without copies is off: {}", LINUX
                        ? "the JVM needs --add-exports java.base/sun.nio.ch=ALL-UNNAMED"
                        : "it needs Linux");
            }
            return null;
        }
        int fd;
        try {
            fd = (int) FD_VALUE.invoke(socket);
        } catch (ReflectiveOperationException | RuntimeException e) {
            log.debug("cannot read the descriptor of {}: {}", socket, e.toString());
            return null;
        }
        SocketDescriptor descriptor = new SocketDescriptor(fd);
        try {
            descriptor.setSendTimeout(sendWaitMillis);
        } catch (IOException e) {
            log.debug("cannot set the send timeout of {}: {}", socket, e.toString());
            return null;
        }
        return descriptor;
    }

    /**
     * Sends the bytes of {@code buffer} (position to limit) and advances its position by the count sent.
     * Returns that count, short when the send timeout expired part way, or {@link #TIMED_OUT} when
     * nothing went.
     *
     * @param more more of the same message follows at once: the kernel may hold these bytes back to
     *             send them in one segment with what follows ({@code MSG_MORE})
     */
    public long send(ByteBuffer buffer, boolean more) throws IOException {
        int length = buffer.remaining();
        if (length == 0) {
            return 0;
        }
        long sent;
        if (buffer.isDirect()) {
            MemorySegment memory = MemorySegment.ofBuffer(buffer);
            sent = call(descriptor -> sendOnce(descriptor, memory, length, more));
        } else {
            int chunk = Math.min(length, BOUNCE_BYTES);
            MemorySegment bounce = BOUNCE_OF_THREAD.get();
            MemorySegment.copy(MemorySegment.ofBuffer(buffer), 0, bounce, 0, chunk);
            sent = call(descriptor -> sendOnce(descriptor, bounce, chunk, more || chunk < length));
        }
        if (sent > 0) {
            buffer.position(buffer.position() + (int) sent);
        }
        return sent;
    }

    /**
     * Sends {@code count} zero bytes; returns the count sent, short when the send timeout expired part
     * way, or {@link #TIMED_OUT} when nothing went. {@code more} as for {@link #send}.
     */
    public long sendZeros(long count, boolean more) throws IOException {
        long sentBytes = 0;
        while (sentBytes < count) {
            long chunk = Math.min(count - sentBytes, ZEROS_BYTES);
            boolean last = sentBytes + chunk == count;
            long sent = call(descriptor -> sendOnce(descriptor, ZEROS, chunk, more || !last));
            if (sent == TIMED_OUT) {
                return sentBytes == 0 ? TIMED_OUT : sentBytes;
            }
            sentBytes += sent;
            if (sent < chunk) {
                break;
            }
        }
        return sentBytes;
    }

    /** Runs a raw call if the descriptor is still open (design note 2); fails with EPIPE-like IOException if not. */
    long call(RawCall rawCall) throws IOException {
        guard.readLock().lock();
        try {
            if (closed) {
                throw new IOException("socket is closed");
            }
            return rawCall.run(fd);
        } finally {
            guard.readLock().unlock();
        }
    }

    /**
     * Stops raw calls before the owner closes the channel: shuts the socket down (a blocked send returns at
     * once), waits for the calls in flight, and refuses later ones. Idempotent.
     */
    public void close() {
        if (SHUTDOWN != null) {
            try {
                call(SocketDescriptor::shutdown);
            } catch (IOException alreadyClosed) {
                // Nothing to wake.
            }
        }
        guard.writeLock().lock();
        try {
            closed = true;
        } finally {
            guard.writeLock().unlock();
        }
    }

    @Override
    public String toString() {
        return "SocketDescriptor[" + fd + "]";
    }

    private long sendOnce(int descriptor, MemorySegment memory, long length, boolean more) throws IOException {
        MemorySegment state = PosixFile.CALL_STATE_OF_THREAD.get();
        try {
            long sent;
            do {
                sent = (long) SEND.invokeExact(state, descriptor, memory, length, (more ? MSG_MORE : 0) | MSG_NOSIGNAL);
            } while (sent < 0 && PosixFile.errno(state) == PosixFile.EINTR);
            if (sent < 0) {
                if (PosixFile.errno(state) == PosixFile.EAGAIN) {
                    return TIMED_OUT;
                }
                throw new IOException("send failed: " + PosixFile.describe(PosixFile.errno(state)));
            }
            return sent;
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** shutdown(2) both ways; its result does not matter (the channel closes next either way). */
    private static long shutdown(int descriptor) {
        try {
            return (int) SHUTDOWN.invokeExact(PosixFile.CALL_STATE_OF_THREAD.get(), descriptor, SHUT_RDWR);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private void setSendTimeout(int millis) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            // struct timeval on 64-bit Linux: seconds and microseconds, both longs.
            MemorySegment timeout = arena.allocate(16);
            timeout.set(ValueLayout.JAVA_LONG, 0, millis / 1000);
            timeout.set(ValueLayout.JAVA_LONG, 8, (millis % 1000) * 1000L);
            MemorySegment state = arena.allocate(PosixFile.CALL_STATE);
            int result = (int) SETSOCKOPT.invokeExact(state, fd, SOL_SOCKET, SO_SNDTIMEO, timeout, 16);
            if (result < 0) {
                throw new IOException("setsockopt(SO_SNDTIMEO): " + PosixFile.describe(PosixFile.errno(state)));
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static Method fdValueMethod() {
        try {
            Method method = Class.forName("sun.nio.ch.SelChImpl").getMethod("getFDVal");
            // Fails unless java.base exports the package to us (design note 1).
            Module ours = SocketDescriptor.class.getModule();
            if (!method.getDeclaringClass().getModule().isExported("sun.nio.ch", ours)) {
                return null;
            }
            return method;
        } catch (ReflectiveOperationException | RuntimeException e) {
            return null;
        }
    }
}
