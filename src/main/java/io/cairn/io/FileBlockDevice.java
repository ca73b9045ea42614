package io.cairn.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Objects;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * A {@link BlockDevice} over a regular file (sparse, grows on write) or a block device node.
 *
 * <p>Design notes.
 * <ol>
 *   <li><b>Interruption cannot close the device.</b> A {@code FileChannel} is an
 *       {@code InterruptibleChannel}: if any thread is interrupted while it is inside a read or write,
 *       the channel closes for every thread (and, through POSIX lock semantics, releases the store's
 *       owner lock). So this device does its I/O with plain system calls on a descriptor of its own
 *       ({@link PosixFile}), which an interrupt does not affect: the call completes, and the caller
 *       returns with its interrupt status still set.</li>
 *   <li><b>Platform threads do their own I/O; virtual threads hand it over.</b> A platform caller (the
 *       NBD request workers) makes the system call itself: no hand-off, and a direct buffer goes to the
 *       kernel without a copy. A virtual thread blocked in a system call would hold its carrier, so a
 *       virtual caller's I/O runs on this device's own pool of platform threads while it waits.</li>
 *   <li><b>A caller never leaves while its I/O is in flight.</b> An interrupted virtual caller keeps
 *       waiting until the pool has finished its read or write, then returns with its interrupt status
 *       set. Returning early would let the caller reuse a buffer the pool is still writing from, and
 *       would turn a completed write into one the caller believes failed.</li>
 *   <li>{@link #close()} waits for the I/O already in flight, then closes the descriptor; I/O that
 *       starts after it fails with {@code CLOSED}. (A descriptor closed under a running call could be
 *       reused by another file.)</li>
 *   <li>Reads past the end of the file return zeros, like a hole. Writes past the end grow a regular
 *       file sparsely; on a block device they fail with an I/O error.</li>
 *   <li>{@link #flush()} is {@code fsync} (data and metadata, so a grown file's size is durable too).</li>
 *   <li>{@link #discard} is a no-op: the Java file API cannot punch holes. Discard is a hint
 *       (see {@link BlockDevice}), so this is correct, only less thrifty with space.</li>
 *   <li>Every I/O failure is a {@link StorageException} with code {@code IO} naming the path, the
 *       offset and the length; use after {@link #close()} is code {@code CLOSED}; a write to a
 *       read-only device is code {@code READ_ONLY}.</li>
 *   <li>The store's owner lock is {@link StoreFileLock}; {@link #openLocked} takes it and releases it
 *       on close. {@link #open} refuses a file whose owner lock this process holds through someone
 *       else, because closing a second descriptor would release that lock.</li>
 * </ol>
 *
 * <p>Threading: every method may be called from any thread, concurrently. Reads and writes do not
 * share a file position; overlapping concurrent writes land in an unspecified order.
 */
public final class FileBlockDevice implements BlockDevice {

    /**
     * Platform threads that perform the system calls of virtual callers. Enough to keep an SSD's
     * queue busy; requests beyond this wait in the pool's queue rather than spawning threads.
     */
    static final int IO_THREADS = 16;

    private static final long IDLE_THREAD_KEEP_ALIVE_SECONDS = 30;

    private static final byte[] ZEROS = new byte[4096];

    /** Operations that may throw; run on the caller's thread or on the pool. */
    private interface Io<T> {
        T run() throws IOException;
    }

    private final Path path;
    private final boolean readOnly;
    private final ExecutorService ioThreads;
    private final PosixFile file;
    private final StoreFileLock ownerLock;
    /** Calls inside {@link #file} right now; {@link #close()} waits for them to leave. */
    private final AtomicInteger callsInFlight = new AtomicInteger();
    private volatile boolean closed;
    /** Mappings of the file for {@link #lend}; made on first use. */
    private final MappedWindows windows;

    private FileBlockDevice(Path path, boolean readOnly, ExecutorService ioThreads, PosixFile file,
                            StoreFileLock ownerLock) {
        this.path = path;
        this.readOnly = readOnly;
        this.ioThreads = ioThreads;
        this.file = file;
        this.ownerLock = ownerLock;
        this.windows = new MappedWindows(path, this::sizeBytes, MappedWindows.DEFAULT_WINDOW_BYTES,
                MappedWindows.DEFAULT_MAX_WINDOWS, MappedWindows.DEFAULT_IDLE_MILLIS);
    }

    /**
     * Opens an existing file or block device without taking the owner lock, for tools that read
     * images and for tests. A store that is being served is opened with {@link #openLocked}.
     */
    public static FileBlockDevice open(Path path, boolean readOnly) {
        Path absolutePath = path.toAbsolutePath();
        StoreFileLock.checkNotHeldElsewhereInThisProcess(absolutePath, null);
        return openFile(absolutePath, readOnly, null);
    }

    /**
     * Takes the store's owner lock (exclusive, or shared when {@code readOnly}) and opens the device.
     * Closing the device releases the lock.
     *
     * @throws StorageException {@code LOCKED} when another process or holder has the store
     */
    public static FileBlockDevice openLocked(Path path, boolean readOnly) {
        return openWithOwnerLock(path, readOnly, readOnly);
    }

    /**
     * Takes the owner lock shared and opens the device writable: for the node processes that serve one
     * store together (each writes only what it holds; the store's shared mode coordinates them). They and a
     * process serving the store alone (which locks it exclusively) exclude each other.
     */
    public static FileBlockDevice openSharedWritable(Path path) {
        return openWithOwnerLock(path, true, false);
    }

    private static FileBlockDevice openWithOwnerLock(Path path, boolean sharedLock, boolean readOnly) {
        StoreFileLock ownerLock = StoreFileLock.acquire(path, sharedLock);
        try {
            return openFile(ownerLock.path(), readOnly, ownerLock);
        } catch (RuntimeException problem) {
            ownerLock.close();
            throw problem;
        }
    }

    /**
     * Creates a new sparse regular file of {@code sizeBytes} (zeros, no space allocated) and opens it
     * for writing, without the owner lock. Fails if the file exists.
     */
    public static FileBlockDevice create(Path path, long sizeBytes) {
        if (sizeBytes < 0) {
            throw new IllegalArgumentException("sizeBytes must not be negative: " + sizeBytes);
        }
        Path absolutePath = path.toAbsolutePath();
        try {
            Files.createFile(absolutePath);
        } catch (IOException e) {
            throw new StorageException(StorageException.Code.IO, "cannot create " + absolutePath + ": " + e, e);
        }
        FileBlockDevice device = openFile(absolutePath, false, null);
        if (sizeBytes > 0) {
            // Writing the last byte sets the size without allocating the bytes before it.
            device.write(sizeBytes - 1, ByteBuffer.allocate(1));
        }
        return device;
    }

    public Path path() {
        return path;
    }

    public boolean readOnly() {
        return readOnly;
    }

    @Override
    public void read(long offsetBytes, ByteBuffer buffer) {
        checkRange(offsetBytes, buffer);
        int lengthBytes = buffer.remaining();
        try {
            perform(() -> {
                long position = offsetBytes;
                while (buffer.hasRemaining()) {
                    int bytesRead = file.read(buffer, position);
                    if (bytesRead == 0) {
                        zeroFill(buffer); // past the end of the file: a hole
                        break;
                    }
                    position += bytesRead;
                }
                return null;
            });
        } catch (IOException e) {
            throw failure("read", offsetBytes, lengthBytes, e);
        }
    }

    @Override
    public Lent lend(long offsetBytes, int lengthBytes) {
        return closed ? null : windows.lend(offsetBytes, lengthBytes);
    }

    @Override
    public void write(long offsetBytes, ByteBuffer buffer) {
        checkRange(offsetBytes, buffer);
        if (readOnly) {
            checkOpen();
            throw new StorageException(StorageException.Code.READ_ONLY, path + " is open read-only");
        }
        int lengthBytes = buffer.remaining();
        try {
            perform(() -> {
                long position = offsetBytes;
                while (buffer.hasRemaining()) {
                    position += file.write(buffer, position);
                }
                return null;
            });
        } catch (IOException e) {
            throw failure("write", offsetBytes, lengthBytes, e);
        }
    }

    @Override
    public void flush() {
        if (readOnly) {
            checkOpen();
            return;
        }
        try {
            perform(() -> {
                file.sync();
                return null;
            });
        } catch (IOException e) {
            throw failure("fsync", 0, 0, e);
        }
    }

    @Override
    public long sizeBytes() {
        try {
            return perform(file::size);
        } catch (IOException e) {
            throw failure("size of", 0, 0, e);
        }
    }

    /**
     * Closes the device once the I/O in flight has finished, and releases the owner lock if it holds
     * one. Does not flush. Idempotent.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            while (callsInFlight.get() != 0) {
                LockSupport.parkNanos(100_000);
            }
            windows.close();
            file.close();
        } catch (IOException e) {
            throw new StorageException(StorageException.Code.IO, "cannot close " + path + ": " + e.getMessage(), e);
        } finally {
            ioThreads.shutdown();
            if (ownerLock != null) {
                ownerLock.close();
            }
        }
    }

    @Override
    public String toString() {
        return "FileBlockDevice[" + path + (readOnly ? ", read-only" : "") + (ownerLock != null ? ", locked" : "") + "]";
    }

    private static FileBlockDevice openFile(Path path, boolean readOnly, StoreFileLock ownerLock) {
        PosixFile file;
        try {
            file = PosixFile.open(path, readOnly);
        } catch (IOException | RuntimeException e) {
            if (!Files.exists(path)) {
                throw new StorageException(StorageException.Code.IO, "cannot open " + path + ": no such file", e);
            }
            throw new StorageException(StorageException.Code.IO, "cannot open " + path + ": " + e, e);
        }
        return new FileBlockDevice(path, readOnly, newIoThreads(path), file, ownerLock);
    }

    private static ExecutorService newIoThreads(Path path) {
        String namePrefix = "cairn-io-" + path.getFileName() + "-";
        AtomicInteger threadNumber = new AtomicInteger();
        ThreadFactory factory = task -> Thread.ofPlatform()
                .name(namePrefix + threadNumber.incrementAndGet())
                .daemon(true)
                .unstarted(task);
        ThreadPoolExecutor pool = new ThreadPoolExecutor(IO_THREADS, IO_THREADS,
                IDLE_THREAD_KEEP_ALIVE_SECONDS, TimeUnit.SECONDS, new LinkedBlockingQueue<>(), factory);
        pool.allowCoreThreadTimeOut(true);
        return pool;
    }

    /**
     * Runs {@code io} against the open descriptor: on this thread if it is a platform thread, on the
     * pool for a virtual thread (design note 2). Close waits for it (design note 4).
     */
    private <T> T perform(Io<T> io) throws IOException {
        callsInFlight.incrementAndGet();
        try {
            checkOpen();
            if (!Thread.currentThread().isVirtual()) {
                return io.run();
            }
            return await(ioThreads.submit(io::run));
        } finally {
            callsInFlight.decrementAndGet();
        }
    }

    /** Waits for {@code operation} without giving up on interruption (design note 3). */
    private static <T> T await(Future<T> operation) throws IOException {
        boolean interrupted = false;
        try {
            while (true) {
                try {
                    return operation.get();
                } catch (InterruptedException e) {
                    interrupted = true;
                } catch (ExecutionException e) {
                    Throwable cause = e.getCause();
                    if (cause instanceof IOException ioException) {
                        throw ioException;
                    }
                    if (cause instanceof RuntimeException runtimeException) {
                        throw runtimeException;
                    }
                    if (cause instanceof Error error) {
                        throw error;
                    }
                    throw new IOException(cause);
                }
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private StorageException failure(String operation, long offsetBytes, int lengthBytes, IOException cause) {
        String range = lengthBytes > 0 ? " (" + lengthBytes + " bytes at offset " + offsetBytes + ")" : "";
        return new StorageException(StorageException.Code.IO,
                operation + " " + path + range + " failed: " + cause.getMessage(), cause);
    }

    private void checkOpen() {
        if (closed) {
            throw new StorageException(StorageException.Code.CLOSED, path + " is closed");
        }
    }

    private static void checkRange(long offsetBytes, ByteBuffer buffer) {
        Objects.requireNonNull(buffer, "buffer");
        if (offsetBytes < 0 || offsetBytes + buffer.remaining() < offsetBytes) {
            throw new IllegalArgumentException("bad range: offsetBytes=" + offsetBytes + " lengthBytes=" + buffer.remaining());
        }
    }

    private static void zeroFill(ByteBuffer buffer) {
        while (buffer.hasRemaining()) {
            buffer.put(ZEROS, 0, Math.min(ZEROS.length, buffer.remaining()));
        }
    }
}
