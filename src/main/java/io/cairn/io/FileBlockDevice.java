package io.cairn.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.AsynchronousFileChannel;
import java.nio.channels.ClosedChannelException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.EnumSet;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A {@link BlockDevice} over a regular file (sparse, grows on write) or a block device node.
 *
 * <p>Design notes.
 * <ol>
 *   <li><b>Interruption cannot close the device.</b> A {@code FileChannel} is an
 *       {@code InterruptibleChannel}: if any thread is interrupted while it is inside a read or write,
 *       the channel closes for every thread (and, through POSIX lock semantics, releases the store's
 *       owner lock). Cairn serves requests on virtual threads that are interrupted when a client
 *       disconnects, so this device does all I/O through an {@link AsynchronousFileChannel}, which is
 *       not interruptible: the operating-system call runs on this device's own pool of platform
 *       threads, which nobody else can reach, and the caller waits for it.</li>
 *   <li><b>A caller never leaves while its I/O is in flight.</b> An interrupted caller keeps waiting
 *       until the read or write completes, then returns with its interrupt status set. Returning early
 *       would let the caller reuse a buffer the pool is still writing from, and would turn a completed
 *       write into one the caller believes failed.</li>
 *   <li>Reads past the end of the file return zeros, like a hole. Writes past the end grow a regular
 *       file sparsely; on a block device they fail with an I/O error.</li>
 *   <li>{@link #flush()} is {@code fsync} (force with metadata, so a grown file's size is durable too).
 *       It also runs on the pool: a virtual thread blocked in {@code fsync} would hold its carrier.</li>
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
     * Platform threads that perform the operating-system calls of one device. Enough to keep an SSD's
     * queue busy; requests beyond this wait in the pool's queue rather than spawning threads.
     */
    static final int IO_THREADS = 16;

    private static final long IDLE_THREAD_KEEP_ALIVE_SECONDS = 30;

    private static final byte[] ZEROS = new byte[4096];

    private final Path path;
    private final boolean readOnly;
    private final ExecutorService ioThreads;
    private final AsynchronousFileChannel channel;
    private final StoreFileLock ownerLock;
    private volatile boolean closed;

    private FileBlockDevice(Path path, boolean readOnly, ExecutorService ioThreads, AsynchronousFileChannel channel,
                            StoreFileLock ownerLock) {
        this.path = path;
        this.readOnly = readOnly;
        this.ioThreads = ioThreads;
        this.channel = channel;
        this.ownerLock = ownerLock;
    }

    /**
     * Opens an existing file or block device without taking the owner lock, for tools that read
     * images and for tests. A store that is being served is opened with {@link #openLocked}.
     */
    public static FileBlockDevice open(Path path, boolean readOnly) {
        Path absolutePath = path.toAbsolutePath();
        StoreFileLock.checkNotHeldElsewhereInThisProcess(absolutePath, null);
        return openChannel(absolutePath, readOnly, null);
    }

    /**
     * Takes the store's owner lock (exclusive, or shared when {@code readOnly}) and opens the device.
     * Closing the device releases the lock.
     *
     * @throws StorageException {@code LOCKED} when another process or holder has the store
     */
    public static FileBlockDevice openLocked(Path path, boolean readOnly) {
        StoreFileLock ownerLock = StoreFileLock.acquire(path, readOnly);
        try {
            return openChannel(ownerLock.path(), readOnly, ownerLock);
        } catch (RuntimeException e) {
            ownerLock.close();
            throw e;
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
        FileBlockDevice device = openChannel(absolutePath, false, null);
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
        checkOpen();
        int lengthBytes = buffer.remaining();
        long position = offsetBytes;
        try {
            while (buffer.hasRemaining()) {
                int bytesRead = await(channel.read(buffer, position));
                if (bytesRead < 0) {
                    zeroFill(buffer); // past the end of the file: a hole
                    break;
                }
                position += bytesRead;
            }
        } catch (IOException e) {
            throw failure("read", offsetBytes, lengthBytes, e);
        }
    }

    @Override
    public void write(long offsetBytes, ByteBuffer buffer) {
        checkRange(offsetBytes, buffer);
        checkOpen();
        if (readOnly) {
            throw new StorageException(StorageException.Code.READ_ONLY, path + " is open read-only");
        }
        int lengthBytes = buffer.remaining();
        long position = offsetBytes;
        try {
            while (buffer.hasRemaining()) {
                position += await(channel.write(buffer, position));
            }
        } catch (IOException e) {
            throw failure("write", offsetBytes, lengthBytes, e);
        }
    }

    @Override
    public void flush() {
        checkOpen();
        if (readOnly) {
            return;
        }
        try {
            await(ioThreads.submit(() -> {
                channel.force(true);
                return null;
            }));
        } catch (IOException e) {
            throw failure("fsync", 0, 0, e);
        }
    }

    @Override
    public long sizeBytes() {
        checkOpen();
        try {
            return channel.size();
        } catch (IOException e) {
            throw failure("size of", 0, 0, e);
        }
    }

    /** Closes the device and releases the owner lock if it holds one. Does not flush. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            channel.close();
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

    private static FileBlockDevice openChannel(Path path, boolean readOnly, StoreFileLock ownerLock) {
        Set<StandardOpenOption> options = readOnly
                ? EnumSet.of(StandardOpenOption.READ)
                : EnumSet.of(StandardOpenOption.READ, StandardOpenOption.WRITE);
        ExecutorService ioThreads = newIoThreads(path);
        try {
            AsynchronousFileChannel channel = AsynchronousFileChannel.open(path, options, ioThreads);
            return new FileBlockDevice(path, readOnly, ioThreads, channel, ownerLock);
        } catch (NoSuchFileException e) {
            ioThreads.shutdown();
            throw new StorageException(StorageException.Code.IO, "cannot open " + path + ": no such file", e);
        } catch (IOException | RuntimeException e) {
            ioThreads.shutdown();
            throw new StorageException(StorageException.Code.IO, "cannot open " + path + ": " + e, e);
        }
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

    /** Waits for {@code operation} without giving up on interruption (design note 2). */
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
        if (closed || cause instanceof AsynchronousCloseException || cause instanceof ClosedChannelException) {
            return new StorageException(StorageException.Code.CLOSED, path + " was closed during " + operation, cause);
        }
        String range = lengthBytes > 0 ? " (" + lengthBytes + " bytes at offset " + offsetBytes + ")" : "";
        return new StorageException(StorageException.Code.IO,
                operation + " " + path + range + " failed: " + cause, cause);
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
