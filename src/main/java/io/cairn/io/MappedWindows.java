package io.cairn.io;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.LongSupplier;

/**
 * A file mapped read-only into memory in windows (1 GiB for a store file), so its bytes can be lent in place
 * ({@link FileBlockDevice#lend}) to a socket send that copies them straight from the page cache.
 *
 * <p>Design notes.
 * <ol>
 *   <li>Windows, not one mapping of the whole file: the file grows, and a mapping made once cannot. A window
 *       maps what of it lies inside the file when it is first used; a lend that reaches past that maps the
 *       window again, and the old mapping goes once its last lender is done.</li>
 *   <li>At most {@link #maxWindows} windows stay mapped. Each mapped page costs a page-table entry (8 bytes
 *       per 4 KiB) until the mapping goes, so a long-running server that reads a large store would otherwise
 *       keep page tables for everything it ever read; past the limit the least recently used idle window is
 *       unmapped.</li>
 *   <li>A window no lend has used for {@link #DEFAULT_IDLE_MILLIS} is unmapped too. Pages a process maps
 *       cannot be dropped from the page cache on request ({@code posix_fadvise(DONTNEED)} skips them) and
 *       count as in use for the kernel's reclaim, so mappings kept forever would pin whatever was last read
 *       in large reads. (On this kernel a later 4 KiB write into a page-cache folio that a sequential read
 *       made large costs several times more, ext4 walking the folio's buffers: 108 against 11 µs of server
 *       CPU per write when a benchmark's cache reset could not drop the mapped pages.)</li>
 *   <li>A window counts its lenders: it is unmapped only at 0, and a lender that finds it retired (count
 *       below 0) maps the window afresh. A window taken out of use (replaced, or the file closed) while lent
 *       is unmapped by its last lender. So memory lent out is never unmapped under its user.</li>
 * </ol>
 *
 * <p>Threading: thread-safe.
 */
final class MappedWindows {

    /** Window size of a store file: 1 GiB. */
    static final long DEFAULT_WINDOW_BYTES = 1L << 30;
    /** Windows mapped at most for a store file: 64 GiB of address space, at most 128 MiB of page tables. */
    static final int DEFAULT_MAX_WINDOWS = 64;
    /** A window unused this long is unmapped (design note 3). */
    static final long DEFAULT_IDLE_MILLIS = 1000;

    /** Unmaps idle windows of every open file; one daemon thread for the process. */
    private static final ScheduledExecutorService IDLE_SWEEPER = Executors.newSingleThreadScheduledExecutor(
            Thread.ofPlatform().name("mapped-windows-sweeper").daemon(true).factory());

    private final long windowBytes;
    private final int maxWindows;

    private final Path path;
    /** The file's size as last seen; refreshed when a lend reaches past it. */
    private final LongSupplier currentSizeBytes;
    private volatile long knownSizeBytes;
    private final ConcurrentHashMap<Long, Window> windows = new ConcurrentHashMap<>();
    private volatile boolean closed;
    private final long idleNanos;
    /** The idle sweep, scheduled when the first window is mapped; guarded by the monitor. */
    private ScheduledFuture<?> sweeping;

    MappedWindows(Path path, LongSupplier currentSizeBytes, long windowBytes, int maxWindows, long idleMillis) {
        if (windowBytes < 4096 || Long.bitCount(windowBytes) != 1 || maxWindows < 1 || idleMillis < 1) {
            throw new IllegalArgumentException("windows of " + windowBytes + " bytes, at most " + maxWindows
                    + ", unmapped after " + idleMillis + " ms");
        }
        this.path = path;
        this.currentSizeBytes = currentSizeBytes;
        this.windowBytes = windowBytes;
        this.maxWindows = maxWindows;
        this.idleNanos = TimeUnit.MILLISECONDS.toNanos(idleMillis);
    }

    /** Lends {@code [offsetBytes, offsetBytes + lengthBytes)}; null if it lies past the file's end or across windows. */
    BlockDevice.Lent lend(long offsetBytes, int lengthBytes) {
        if (closed || offsetBytes < 0 || lengthBytes <= 0) {
            return null;
        }
        long endBytes = offsetBytes + lengthBytes;
        long index = offsetBytes / windowBytes;
        if ((endBytes - 1) / windowBytes != index) {
            return null;
        }
        if (endBytes > knownSizeBytes) {
            knownSizeBytes = currentSizeBytes.getAsLong();
            if (endBytes > knownSizeBytes) {
                return null;
            }
        }
        while (true) {
            Window window = windows.get(index);
            if (window == null || window.segment.byteSize() < endBytes - index * windowBytes) {
                window = mapWindow(index, endBytes);
                if (window == null) {
                    return null;
                }
            }
            int lenders = window.lenders.get();
            if (lenders < 0) {
                windows.remove(index, window); // retired: map it afresh
                continue;
            }
            if (window.lenders.compareAndSet(lenders, lenders + 1)) {
                window.lastUsedNanos = System.nanoTime();
                Window lentWindow = window;
                ByteBuffer view = window.segment.asSlice(offsetBytes - index * windowBytes, lengthBytes)
                        .asByteBuffer().asReadOnlyBuffer();
                return new BlockDevice.Lent() {
                    private boolean returned;

                    @Override
                    public ByteBuffer view() {
                        return view;
                    }

                    @Override
                    public void close() {
                        if (!returned) {
                            returned = true;
                            if (lentWindow.lenders.decrementAndGet() == 0 && lentWindow.detached) {
                                lentWindow.retire();
                            }
                        }
                    }
                };
            }
        }
    }

    /** Unmaps every window now, or, if it is lent out, when its last lender is done; lends no more. */
    synchronized void close() {
        closed = true;
        if (sweeping != null) {
            sweeping.cancel(false);
        }
        for (Window window : windows.values()) {
            window.detach();
        }
        windows.clear();
    }

    /** Maps window {@code index} as far as the file reaches, which must be at least {@code endBytes}. */
    private synchronized Window mapWindow(long index, long endBytes) {
        if (closed) {
            return null;
        }
        long startBytes = index * windowBytes;
        Window existing = windows.get(index);
        if (existing != null && existing.lenders.get() >= 0 && existing.segment.byteSize() >= endBytes - startBytes) {
            return existing;
        }
        if (existing != null) {
            windows.remove(index, existing);
            existing.detach();
        }
        while (windows.size() >= maxWindows && retireLeastRecentlyUsed()) {
            // down to the limit, as far as idle windows allow
        }
        long mappedBytes = Math.min(windowBytes, knownSizeBytes - startBytes);
        if (mappedBytes < endBytes - startBytes) {
            return null;
        }
        Arena arena = Arena.ofShared();
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            MemorySegment segment = channel.map(FileChannel.MapMode.READ_ONLY, startBytes, mappedBytes, arena);
            Window window = new Window(arena, segment);
            windows.put(index, window);
            if (sweeping == null) {
                long sweepMillis = Math.max(1, TimeUnit.NANOSECONDS.toMillis(idleNanos) / 2);
                sweeping = IDLE_SWEEPER.scheduleWithFixedDelay(this::retireIdle, sweepMillis, sweepMillis, TimeUnit.MILLISECONDS);
            }
            return window;
        } catch (IOException | RuntimeException e) {
            arena.close();
            return null;
        }
    }

    /** Unmaps the windows no lend has used for the idle time (design note 3). */
    private synchronized void retireIdle() {
        long now = System.nanoTime();
        for (var entry : windows.entrySet()) {
            Window window = entry.getValue();
            if (window.lenders.get() == 0 && now - window.lastUsedNanos >= idleNanos) {
                windows.remove(entry.getKey(), window);
                window.detach();
            }
        }
    }

    /** Under the monitor: unmaps the idle window used longest ago; false if no window is idle. */
    private boolean retireLeastRecentlyUsed() {
        Long oldestIndex = null;
        Window oldest = null;
        for (var entry : windows.entrySet()) {
            Window window = entry.getValue();
            if (window.lenders.get() == 0 && (oldest == null || window.lastUsedNanos - oldest.lastUsedNanos < 0)) {
                oldest = window;
                oldestIndex = entry.getKey();
            }
        }
        if (oldest == null) {
            return false;
        }
        windows.remove(oldestIndex, oldest);
        oldest.detach();
        return true;
    }

    int mappedWindows() {
        return windows.size();
    }

    private static final class Window {
        final Arena arena;
        final MemorySegment segment;
        /** Lenders using the window now; -1 once retired (design note 3). */
        final AtomicInteger lenders = new AtomicInteger();
        volatile long lastUsedNanos = System.nanoTime();
        /** Out of the map: the last lender unmaps it (design note 3). */
        volatile boolean detached;

        Window(Arena arena, MemorySegment segment) {
            this.arena = arena;
            this.segment = segment;
        }

        /** Takes the window out of use: unmapped now if idle, else by its last lender. */
        void detach() {
            detached = true;
            retire();
        }

        /** Unmaps the window if nobody uses it. */
        void retire() {
            if (lenders.compareAndSet(0, -1)) {
                arena.close();
            }
        }
    }
}
