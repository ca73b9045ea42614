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
import java.util.List;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The descriptor of a connected socket channel, for gathering sends that take their bytes straight from
 * where they live (a mapped store file) and give up after a bounded wait. The owner writes to the channel
 * and through this descriptor from one thread at a time, so the two never interleave.
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
 *       with nothing sent. A caller holding a resource while it sends gives up then, and {@link #close}
 *       never waits longer than one timeout. The channel's own blocking writes are not affected: the JDK
 *       retries a write that returned EAGAIN once the socket is writable.</li>
 *   <li>Raw sends pass {@code MSG_NOSIGNAL}: a peer that has gone gives EPIPE, not a signal.</li>
 * </ol>
 *
 * <p>Threading: every method may be called from any thread; raw sends from two threads at once would
 * interleave their bytes, which the owner prevents.
 */
public final class SocketDescriptor {

    private static final Logger log = LoggerFactory.getLogger(SocketDescriptor.class);

    /** What {@link #send} returns when the socket took nothing before its timeout. */
    public static final long TIMED_OUT = -1;
    /** Buffers one gathering send takes at most (Linux takes up to 1024). */
    public static final int MAX_BUFFERS = 64;

    private static final int SOL_SOCKET = 1;
    private static final int SO_SNDTIMEO = 21;
    private static final int SHUT_RDWR = 2;
    private static final int MSG_NOSIGNAL = 0x4000;
    /** struct msghdr on 64-bit Linux: name, namelen (+pad), iov, iovlen, control, controllen, flags (+pad). */
    private static final int MSGHDR_BYTES = 56;
    private static final int MSGHDR_IOV_OFFSET = 16;
    private static final int MSGHDR_IOVLEN_OFFSET = 24;
    /** struct iovec: base and length. */
    private static final int IOVEC_BYTES = 16;
    /** Heap buffers (reply headers) are copied into this much native memory per thread first. */
    private static final int BOUNCE_BYTES = 4096;

    private static final boolean LINUX = System.getProperty("os.name", "").startsWith("Linux");
    private static final Method FD_VALUE = fdValueMethod();
    private static volatile boolean unavailableLogged;

    private static final MethodHandle SENDMSG = LINUX ? PosixFile.downcall("sendmsg", FunctionDescriptor.of(
            ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT),
            PosixFile.CAPTURE_ERRNO) : null;
    private static final MethodHandle SETSOCKOPT = LINUX ? PosixFile.downcall("setsockopt", FunctionDescriptor.of(
            ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
            ValueLayout.JAVA_INT), PosixFile.CAPTURE_ERRNO) : null;
    private static final MethodHandle SHUTDOWN = LINUX ? PosixFile.downcall("shutdown", FunctionDescriptor.of(
            ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT), PosixFile.CAPTURE_ERRNO) : null;

    /** A thread's message header, iovec array and bounce buffer for heap bytes, in one allocation. */
    private static final ThreadLocal<MemorySegment> SCRATCH_OF_THREAD = ThreadLocal.withInitial(
            () -> Arena.ofAuto().allocate(MSGHDR_BYTES + (long) IOVEC_BYTES * MAX_BUFFERS + BOUNCE_BYTES, 16));

    private final int fd;
    /** Read side: a raw call in flight; write side: {@link #close} (design note 2). */
    private final ReentrantReadWriteLock guard = new ReentrantReadWriteLock();
    /** Set under the write side of {@link #guard}; read under either side. */
    private boolean closed;

    private SocketDescriptor(int fd) {
        this.fd = fd;
    }

    /**
     * The descriptor of {@code channel}, with its send timeout set to {@code sendWaitMillis}; null if the
     * channel is not a connected blocking socket or its descriptor cannot be had (design note 1).
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
                log.info("READ replies are copied before they are sent: {}", LINUX
                        ? "sending them from the store in place needs the JVM option --add-exports java.base/sun.nio.ch=ALL-UNNAMED"
                        : "sending them from the store in place needs Linux");
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
     * One gathering send of the buffers' remaining bytes, in order, advancing each buffer's position by what
     * went. Returns the count sent: short when the send timeout expired part way, or {@link #TIMED_OUT} when
     * nothing went. Direct buffers go as they are; heap buffers (at most {@value #BOUNCE_BYTES} bytes of them
     * per call) are copied first. The caller keeps the direct buffers' memory alive during the call.
     *
     * @throws IllegalArgumentException for more than {@value #MAX_BUFFERS} buffers
     * @throws IOException              when the socket failed or is closed
     */
    public long send(List<ByteBuffer> buffers) throws IOException {
        if (buffers.size() > MAX_BUFFERS) {
            throw new IllegalArgumentException("at most " + MAX_BUFFERS + " buffers per send, not " + buffers.size());
        }
        MemorySegment scratch = SCRATCH_OF_THREAD.get();
        long iovecs = MSGHDR_BYTES;
        long bounceOffset = MSGHDR_BYTES + (long) IOVEC_BYTES * MAX_BUFFERS;
        int count = 0;
        long total = 0;
        for (ByteBuffer buffer : buffers) {
            int length = buffer.remaining();
            if (length == 0) {
                continue;
            }
            long address;
            if (buffer.isDirect()) {
                address = MemorySegment.ofBuffer(buffer).address();
            } else {
                if (bounceOffset + length > scratch.byteSize()) {
                    throw new IllegalArgumentException("more than " + BOUNCE_BYTES + " bytes of heap buffers in one send");
                }
                MemorySegment.copy(MemorySegment.ofBuffer(buffer), 0, scratch, bounceOffset, length);
                address = scratch.address() + bounceOffset;
                bounceOffset += length;
            }
            long iovec = iovecs + (long) IOVEC_BYTES * count;
            scratch.set(ValueLayout.JAVA_LONG, iovec, address);
            scratch.set(ValueLayout.JAVA_LONG, iovec + 8, length);
            count++;
            total += length;
        }
        if (total == 0) {
            return 0;
        }
        scratch.asSlice(0, MSGHDR_BYTES).fill((byte) 0);
        scratch.set(ValueLayout.JAVA_LONG, MSGHDR_IOV_OFFSET, scratch.address() + iovecs);
        scratch.set(ValueLayout.JAVA_LONG, MSGHDR_IOVLEN_OFFSET, count);
        long sent = call(descriptor -> sendOnce(descriptor, scratch));
        if (sent > 0) {
            long left = sent;
            for (ByteBuffer buffer : buffers) {
                int step = (int) Math.min(left, buffer.remaining());
                buffer.position(buffer.position() + step);
                left -= step;
            }
        }
        return sent;
    }

    /**
     * Stops raw calls before the owner closes the channel: shuts the socket down (a blocked send returns at
     * once), waits for the calls in flight, and refuses later ones. Idempotent.
     */
    public void close() {
        try {
            call(SocketDescriptor::shutdown);
        } catch (IOException alreadyClosed) {
            // Nothing to wake.
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

    private interface RawCall {
        long run(int fd) throws IOException;
    }

    /** Runs a raw call if the descriptor is still open (design note 2). */
    private long call(RawCall rawCall) throws IOException {
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

    private static long sendOnce(int descriptor, MemorySegment message) throws IOException {
        MemorySegment state = PosixFile.CALL_STATE_OF_THREAD.get();
        try {
            long sent;
            do {
                sent = (long) SENDMSG.invokeExact(state, descriptor, message, MSG_NOSIGNAL);
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
