package io.cairn.io;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The owner lock of a store file: one writer, or any number of read-only processes, per store.
 *
 * <p>Design notes.
 * <ol>
 *   <li>The lock is an operating-system record lock over the whole file ({@link FileChannel#tryLock}),
 *       exclusive for a writable store and shared for a read-only one. The kernel drops it when the
 *       process dies, so a crashed server never leaves a stale lock behind.</li>
 *   <li>Record locks belong to the process, not to the descriptor: closing <em>any</em> descriptor of
 *       the file in this process releases the lock (POSIX semantics; the JDK documents the same for
 *       {@link FileLock}). So this class keeps a registry of the files it holds, keyed by file
 *       identity (device and inode, read with stat, without opening the file), and refuses a second
 *       holder in this process <em>before</em> opening a descriptor whose close would silently
 *       release the first holder's lock. {@link FileBlockDevice#open} consults the same registry.</li>
 *   <li>A second holder in this process is refused even for two read-only opens: the JDK allows one
 *       lock per file per process, and two shared locks would still be released by either close.
 *       Readers in one process share one device instead.</li>
 *   <li>The holder's pid, when the operating system tells it ({@code /proc/locks} on Linux), is named
 *       in the refusal so an operator knows which process to look at.</li>
 *   <li>Locks on a block device are locks on its device node: two different nodes for one disk do
 *       not see each other's locks.</li>
 * </ol>
 *
 * <p>Threading: {@link #acquire} and {@link #close} may be called from any thread; the registry is
 * guarded by its own monitor.
 */
public final class StoreFileLock implements AutoCloseable {

    private static final Path PROC_LOCKS = Path.of("/proc/locks");

    /** File identity → the lock held on it by this process. Guarded by itself. */
    private static final Map<Object, StoreFileLock> HELD_IN_THIS_PROCESS = new HashMap<>();

    private final Path path;
    private final Object fileIdentity;
    private final boolean shared;
    private final FileChannel channel;
    private final FileLock lock;
    private boolean closed;

    private StoreFileLock(Path path, Object fileIdentity, boolean shared, FileChannel channel, FileLock lock) {
        this.path = path;
        this.fileIdentity = fileIdentity;
        this.shared = shared;
        this.channel = channel;
        this.lock = lock;
    }

    /**
     * Takes the owner lock of {@code storePath}: exclusive unless {@code shared}, which is the mode for
     * read-only use. Never blocks.
     *
     * @throws StorageException {@link StorageException.Code#LOCKED} when another process, or another
     *     holder in this process, has the file; {@link StorageException.Code#IO} when it cannot be opened
     */
    public static StoreFileLock acquire(Path storePath, boolean shared) {
        Path path = storePath.toAbsolutePath();
        Object fileIdentity = fileIdentity(path);
        synchronized (HELD_IN_THIS_PROCESS) {
            StoreFileLock holder = HELD_IN_THIS_PROCESS.get(fileIdentity);
            if (holder != null) {
                throw heldInThisProcess(path, holder);
            }
            StoreFileLock acquired = lockFile(path, fileIdentity, shared);
            HELD_IN_THIS_PROCESS.put(fileIdentity, acquired);
            return acquired;
        }
    }

    /**
     * Throws {@link StorageException.Code#LOCKED} if this process holds an owner lock on {@code path}
     * through a holder other than {@code allowedHolder} (which may be null). Called before opening
     * another descriptor of the file, whose close would release that lock.
     */
    static void checkNotHeldElsewhereInThisProcess(Path path, StoreFileLock allowedHolder) {
        Object fileIdentity;
        try {
            fileIdentity = Files.readAttributes(path, BasicFileAttributes.class).fileKey();
        } catch (IOException e) {
            return; // the open that follows reports the real problem with the path
        }
        if (fileIdentity == null) {
            return;
        }
        synchronized (HELD_IN_THIS_PROCESS) {
            StoreFileLock holder = HELD_IN_THIS_PROCESS.get(fileIdentity);
            if (holder != null && holder != allowedHolder) {
                throw heldInThisProcess(path, holder);
            }
        }
    }

    public Path path() {
        return path;
    }

    public boolean shared() {
        return shared;
    }

    /** Releases the lock. Idempotent. */
    @Override
    public void close() {
        // Under the registry monitor, so that a new holder in this process cannot open the file
        // between our leaving the registry and the operating system dropping the lock.
        synchronized (HELD_IN_THIS_PROCESS) {
            if (closed) {
                return;
            }
            closed = true;
            HELD_IN_THIS_PROCESS.remove(fileIdentity, this);
            try {
                if (lock.isValid()) {
                    lock.release();
                }
                channel.close();
            } catch (IOException e) {
                throw new StorageException(StorageException.Code.IO, "cannot release the lock on " + path + ": " + e.getMessage(), e);
            }
        }
    }

    @Override
    public String toString() {
        return "StoreFileLock[" + path + (shared ? ", shared" : ", exclusive") + (closed ? ", released]" : "]");
    }

    private static StoreFileLock lockFile(Path path, Object fileIdentity, boolean shared) {
        FileChannel channel;
        try {
            channel = shared
                    ? FileChannel.open(path, StandardOpenOption.READ)
                    : FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE);
        } catch (IOException e) {
            throw new StorageException(StorageException.Code.IO, "cannot open " + path + " to lock it: " + e.getMessage(), e);
        }
        FileLock lock;
        try {
            lock = channel.tryLock(0, Long.MAX_VALUE, shared);
        } catch (OverlappingFileLockException e) {
            // Someone in this process locked the file without this class. Closing our descriptor
            // releases their lock too (note 2), but leaking it would be worse; say so loudly.
            closeQuietly(channel);
            throw new StorageException(StorageException.Code.LOCKED,
                    path + " is in use by this process (locked outside StoreFileLock, pid " + ProcessHandle.current().pid() + ")", e);
        } catch (IOException e) {
            closeQuietly(channel);
            throw new StorageException(StorageException.Code.IO, "cannot lock " + path + ": " + e.getMessage(), e);
        }
        if (lock == null) {
            // Nobody in this process holds the file (the registry said so), so this close is safe.
            closeQuietly(channel);
            throw new StorageException(StorageException.Code.LOCKED,
                    path + " is in use by another process (" + describeHolder(path) + ")");
        }
        return new StoreFileLock(path, fileIdentity, shared, channel, lock);
    }

    private static Object fileIdentity(Path path) {
        try {
            Object fileKey = Files.readAttributes(path, BasicFileAttributes.class).fileKey();
            return fileKey != null ? fileKey : path.toRealPath();
        } catch (NoSuchFileException e) {
            throw new StorageException(StorageException.Code.IO, "cannot lock " + path + ": no such file", e);
        } catch (IOException e) {
            throw new StorageException(StorageException.Code.IO, "cannot lock " + path + ": " + e.getMessage(), e);
        }
    }

    private static StorageException heldInThisProcess(Path path, StoreFileLock holder) {
        return new StorageException(StorageException.Code.LOCKED,
                path + " is in use by this process (pid " + ProcessHandle.current().pid() + ", held as " + holder.path + ")");
    }

    /** "pid N" from /proc/locks, or "pid unknown" where the operating system does not say. */
    static String describeHolder(Path path) {
        try {
            long device = ((Number) Files.getAttribute(path, "unix:dev")).longValue();
            long inode = ((Number) Files.getAttribute(path, "unix:ino")).longValue();
            long pid = holderPid(Files.readAllLines(PROC_LOCKS), device, inode);
            return pid > 0 ? "pid " + pid : "pid unknown";
        } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
            return "pid unknown";
        }
    }

    /**
     * Finds the pid holding a lock on the file from the lines of {@code /proc/locks}, or -1.
     * A line reads {@code "1: POSIX  ADVISORY  WRITE 3943 fe:00:2146331 0 EOF"}: the pid, then
     * major:minor (hex) of the file system's device and the inode (decimal). Waiters ({@code "->"})
     * and open-file-description locks (pid -1) do not name a holder.
     */
    static long holderPid(List<String> procLocksLines, long device, long inode) {
        // glibc's encoding of st_dev: 12 bits of major above 8 bits of minor, the rest higher up.
        long major = ((device >>> 8) & 0xfffL) | ((device >>> 32) & ~0xfffL);
        long minor = (device & 0xffL) | ((device >>> 12) & ~0xffL);
        for (String line : procLocksLines) {
            String[] fields = line.trim().split("\\s+");
            if (fields.length < 6 || fields[1].equals("->")) {
                continue;
            }
            String[] deviceAndInode = fields[5].split(":");
            if (deviceAndInode.length != 3) {
                continue;
            }
            try {
                if (Long.parseLong(deviceAndInode[0], 16) == major
                        && Long.parseLong(deviceAndInode[1], 16) == minor
                        && Long.parseLong(deviceAndInode[2]) == inode) {
                    long pid = Long.parseLong(fields[4]);
                    if (pid > 0) {
                        return pid;
                    }
                }
            } catch (NumberFormatException e) {
                // A line in a format this parser does not know; keep looking.
            }
        }
        return -1;
    }

    private static void closeQuietly(FileChannel channel) {
        try {
            channel.close();
        } catch (IOException ignored) {
            // Nothing was written through this channel; there is nothing to lose.
        }
    }
}
