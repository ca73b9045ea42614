package io.cairn.io;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * A file descriptor driven by the C library's {@code open}, {@code pread}, {@code pwrite},
 * {@code fsync} and {@code close}, called through the foreign function API.
 *
 * <p>Why not a {@code FileChannel}: a {@code FileChannel} is interruptible, so an interrupt delivered
 * to any thread inside a read or write closes the channel for everybody, and with it (POSIX record
 * locks belong to the process) the store's owner lock. A plain system call is not affected by
 * {@link Thread#interrupt()}: the call completes and the caller's interrupt status stays set. And a
 * direct {@link ByteBuffer} goes to the kernel as it is, without the JDK's copy through a temporary
 * native buffer.
 *
 * <p>The caller guarantees that nobody uses the descriptor once {@link #close()} has been called (the
 * number could belong to another file by then). Heap buffers (and read-only direct ones) go through
 * a native bounce buffer.
 * Threading: every method except {@link #close()} may run concurrently.
 */
final class PosixFile {

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO =
            CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");
    /**
     * Where each thread's reads and writes leave errno: allocated once per thread instead of once per
     * call (a confined arena per call costs a malloc, a free and two objects on every 4 KiB request).
     */
    static final ThreadLocal<MemorySegment> CALL_STATE_OF_THREAD =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(CALL_STATE));

    private static final int O_RDONLY = 0;
    private static final int O_RDWR = 2;
    private static final int O_CLOEXEC = cloexecFlag();
    private static final int SEEK_END = 2;
    static final int EINTR = 4;
    /** EAGAIN (= EWOULDBLOCK) on Linux: a socket's send timeout expired, or it is full. */
    static final int EAGAIN = 11;

    private static final MethodHandle OPEN = downcall("open", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT), CAPTURE_ERRNO, Linker.Option.firstVariadicArg(2));
    private static final MethodHandle PREAD = downcall("pread", FunctionDescriptor.of(ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG), CAPTURE_ERRNO);
    private static final MethodHandle PWRITE = downcall("pwrite", FunctionDescriptor.of(ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG), CAPTURE_ERRNO);
    private static final MethodHandle FSYNC = downcall("fsync", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle LSEEK = downcall("lseek", FunctionDescriptor.of(ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle CLOSE = downcall("close", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle STRERROR = downcall("strerror", FunctionDescriptor.of(ValueLayout.ADDRESS,
            ValueLayout.JAVA_INT));

    /** Largest single transfer; Linux moves at most about 2 GiB per call anyway. */
    private static final int MAX_TRANSFER_BYTES = 1 << 30;

    private final int fd;

    private PosixFile(int fd) {
        this.fd = fd;
    }

    /** Opens an existing file or device node, never creating it. */
    static PosixFile open(Path path, boolean readOnly) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment cPath = arena.allocateFrom(path.toString());
            int flags = (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
            while (true) {
                int fd = (int) OPEN.invokeExact(state, cPath, flags, 0);
                if (fd >= 0) {
                    return new PosixFile(fd);
                }
                int errno = errno(state);
                if (errno != EINTR) {
                    throw new IOException(describe(errno));
                }
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * Reads up to {@code buffer.remaining()} bytes at {@code offset} into the buffer, advancing its
     * position; returns the count, 0 at the end of the file.
     */
    int read(ByteBuffer buffer, long offset) throws IOException {
        int length = Math.min(buffer.remaining(), MAX_TRANSFER_BYTES);
        if (!buffer.isDirect()) {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment bounce = arena.allocate(length);
                int count = transfer(PREAD, bounce, length, offset);
                MemorySegment.ofBuffer(buffer).copyFrom(bounce.asSlice(0, count));
                buffer.position(buffer.position() + count);
                return count;
            }
        }
        int count = transfer(PREAD, MemorySegment.ofBuffer(buffer), length, offset);
        buffer.position(buffer.position() + count);
        return count;
    }

    /**
     * One {@code pread} or {@code pwrite} (same signature: descriptor, memory, length, offset), retried
     * on EINTR; returns the count.
     */
    private int transfer(MethodHandle call, MemorySegment memory, int length, long offset) throws IOException {
        MemorySegment state = CALL_STATE_OF_THREAD.get();
        try {
            long count;
            do {
                count = (long) call.invokeExact(state, fd, memory, (long) length, offset);
            } while (count < 0 && errno(state) == EINTR);
            if (count < 0) {
                throw new IOException(describe(errno(state)));
            }
            return (int) count;
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Writes up to {@code buffer.remaining()} bytes at {@code offset}, advancing the buffer; returns the count. */
    int write(ByteBuffer buffer, long offset) throws IOException {
        int length = Math.min(buffer.remaining(), MAX_TRANSFER_BYTES);
        int count;
        if (buffer.isDirect() && !buffer.isReadOnly()) {
            count = transfer(PWRITE, MemorySegment.ofBuffer(buffer), length, offset);
        } else {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment bounce = arena.allocate(length);
                bounce.copyFrom(MemorySegment.ofBuffer(buffer).asSlice(0, length));
                count = transfer(PWRITE, bounce, length, offset);
            }
        }
        buffer.position(buffer.position() + count);
        return count;
    }

    /** {@code fsync}: data and metadata (a grown file's size) are durable on return. */
    void sync() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            int result;
            do {
                result = (int) FSYNC.invokeExact(state, fd);
            } while (result < 0 && errno(state) == EINTR);
            if (result < 0) {
                throw new IOException(describe(errno(state)));
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Size in bytes of the file, or of the device behind a device node. */
    long size() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            long size = (long) LSEEK.invokeExact(state, fd, 0L, SEEK_END);
            if (size < 0) {
                throw new IOException(describe(errno(state)));
            }
            return size;
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Closes the descriptor (once; the caller makes sure no call is in flight). */
    void close() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            // Linux releases the descriptor even when close fails with EINTR; never retry.
            int result = (int) CLOSE.invokeExact(state, fd);
            if (result < 0 && errno(state) != EINTR) {
                throw new IOException(describe(errno(state)));
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    static String describe(int errno) {
        try {
            MemorySegment message = (MemorySegment) STRERROR.invokeExact(errno);
            String text = message.equals(MemorySegment.NULL) ? "" : message.reinterpret(1024).getString(0);
            return text.isEmpty() ? "errno " + errno : text + " (errno " + errno + ")";
        } catch (Throwable t) {
            return "errno " + errno;
        }
    }

    static MethodHandle downcall(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        MemorySegment symbol = LIBC.find(name)
                .orElseThrow(() -> new UnsatisfiedLinkError("C library function " + name + " not found"));
        return LINKER.downcallHandle(symbol, descriptor, options);
    }

    private static int cloexecFlag() {
        String os = System.getProperty("os.name", "");
        if (os.startsWith("Linux")) {
            return 0x80000;
        }
        if (os.startsWith("Mac")) {
            return 0x1000000;
        }
        return 0;
    }
}
