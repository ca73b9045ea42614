package io.cairn.nbd;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * A sparse in-memory export for tests: 4 KiB pages, absent pages are holes that read as zeroes.
 *
 * <p>One instance is the disk; {@link MemoryCatalog#open} hands out the same instance to every
 * connection and counts opens and closes, so tests can check that the server closes what it opens.
 * Reads share a lock, writes take it exclusively. {@link #failWith} injects a failure into the next
 * export call for error-path tests.
 */
final class MemoryExport implements NbdExport {

    static final int PAGE_BYTES = 4096;

    private final long sizeBytes;
    private final boolean readOnly;
    private final ConcurrentHashMap<Long, byte[]> pages = new ConcurrentHashMap<>();
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private final AtomicReference<RuntimeException> nextFailure = new AtomicReference<>();
    private volatile boolean fastZeroSupported = true;

    final AtomicInteger opens = new AtomicInteger();
    final AtomicInteger closes = new AtomicInteger();
    final AtomicInteger flushes = new AtomicInteger();
    final AtomicInteger fuaWrites = new AtomicInteger();
    final AtomicInteger caches = new AtomicInteger();
    /** Calls the server's gate should have refused; must stay 0. */
    final AtomicInteger gateViolations = new AtomicInteger();

    MemoryExport(long sizeBytes, boolean readOnly) {
        this.sizeBytes = sizeBytes;
        this.readOnly = readOnly;
    }

    /** An export whose every byte is {@link #pattern}(seed), optionally read-only. */
    static MemoryExport filled(long sizeBytes, boolean readOnly, long seed) {
        MemoryExport export = new MemoryExport(sizeBytes, false);
        byte[] data = pattern(seed, (int) sizeBytes);
        export.write(0, ByteBuffer.wrap(data), false);
        return readOnly ? export.asReadOnly() : export;
    }

    /** Deterministic test content. */
    static byte[] pattern(long seed, int lengthBytes) {
        byte[] data = new byte[lengthBytes];
        new java.util.Random(seed).nextBytes(data);
        return data;
    }

    /** A read-only export sharing this one's pages as they are now. */
    private MemoryExport asReadOnly() {
        MemoryExport copy = new MemoryExport(sizeBytes, true);
        copy.pages.putAll(pages);
        return copy;
    }

    void failWith(RuntimeException failure) {
        nextFailure.set(failure);
    }

    void setFastZeroSupported(boolean supported) {
        fastZeroSupported = supported;
    }

    int allocatedPages() {
        return pages.size();
    }

    /** Test-side direct access, bypassing the protocol. */
    byte[] contents(long offsetBytes, int lengthBytes) {
        ByteBuffer buffer = ByteBuffer.allocate(lengthBytes);
        readPages(offsetBytes, buffer);
        return buffer.array();
    }

    private void maybeFail() {
        RuntimeException failure = nextFailure.getAndSet(null);
        if (failure != null) {
            throw failure;
        }
    }

    @Override
    public long sizeBytes() {
        return sizeBytes;
    }

    @Override
    public boolean readOnly() {
        return readOnly;
    }

    @Override
    public boolean canFlushAcrossConnections() {
        return true;
    }

    @Override
    public void read(long offsetBytes, ByteBuffer dst) {
        maybeFail();
        checkRange(offsetBytes, dst.remaining());
        readPages(offsetBytes, dst);
    }

    private void readPages(long offsetBytes, ByteBuffer dst) {
        lock.readLock().lock();
        try {
            long position = offsetBytes;
            while (dst.hasRemaining()) {
                long page = position / PAGE_BYTES;
                int within = (int) (position % PAGE_BYTES);
                int chunk = Math.min(PAGE_BYTES - within, dst.remaining());
                byte[] data = pages.get(page);
                if (data == null) {
                    dst.put(new byte[chunk]);
                } else {
                    dst.put(data, within, chunk);
                }
                position += chunk;
            }
        } finally {
            lock.readLock().unlock();
        }
    }

    @Override
    public void write(long offsetBytes, ByteBuffer src, boolean fua) {
        maybeFail();
        checkWritable();
        checkRange(offsetBytes, src.remaining());
        if (fua) {
            fuaWrites.incrementAndGet();
        }
        lock.writeLock().lock();
        try {
            long position = offsetBytes;
            while (src.hasRemaining()) {
                long page = position / PAGE_BYTES;
                int within = (int) (position % PAGE_BYTES);
                int chunk = Math.min(PAGE_BYTES - within, src.remaining());
                src.get(pages.computeIfAbsent(page, p -> new byte[PAGE_BYTES]), within, chunk);
                position += chunk;
            }
        } finally {
            lock.writeLock().unlock();
        }
    }

    @Override
    public void flush() {
        maybeFail();
        flushes.incrementAndGet();
    }

    @Override
    public void trim(long offsetBytes, long lengthBytes, boolean fua) {
        maybeFail();
        checkWritable();
        checkRange(offsetBytes, lengthBytes);
        zeroRange(offsetBytes, lengthBytes, true);
    }

    @Override
    public void writeZeroes(long offsetBytes, long lengthBytes, boolean fua, boolean mayPunchHole, boolean fastZeroOnly) {
        maybeFail();
        checkWritable();
        checkRange(offsetBytes, lengthBytes);
        if (fastZeroOnly && !fastZeroSupported) {
            throw new FastZeroUnsupportedException("fast zeroing is switched off");
        }
        zeroRange(offsetBytes, lengthBytes, mayPunchHole);
    }

    /** Zeroes a range; whole pages become holes if allowed, otherwise stay allocated as zeroes. */
    private void zeroRange(long offsetBytes, long lengthBytes, boolean punchHoles) {
        lock.writeLock().lock();
        try {
            long position = offsetBytes;
            long end = offsetBytes + lengthBytes;
            while (position < end) {
                long page = position / PAGE_BYTES;
                int within = (int) (position % PAGE_BYTES);
                int chunk = (int) Math.min(PAGE_BYTES - within, end - position);
                if (chunk == PAGE_BYTES && punchHoles) {
                    pages.remove(page);
                } else if (chunk == PAGE_BYTES) {
                    pages.put(page, new byte[PAGE_BYTES]);
                } else {
                    byte[] data = punchHoles ? pages.get(page) : pages.computeIfAbsent(page, p -> new byte[PAGE_BYTES]);
                    if (data != null) {
                        Arrays.fill(data, within, within + chunk, (byte) 0);
                    }
                }
                position += chunk;
            }
        } finally {
            lock.writeLock().unlock();
        }
    }

    @Override
    public void cache(long offsetBytes, long lengthBytes) {
        maybeFail();
        checkRange(offsetBytes, lengthBytes);
        caches.incrementAndGet();
    }

    @Override
    public List<Extent> blockStatus(long offsetBytes, long lengthBytes) {
        maybeFail();
        checkRange(offsetBytes, lengthBytes);
        lock.readLock().lock();
        try {
            List<Extent> extents = new ArrayList<>();
            long position = offsetBytes;
            long end = offsetBytes + lengthBytes;
            int runFlags = -1;
            long runBytes = 0;
            while (position < end && extents.size() < 100_000) {
                long page = position / PAGE_BYTES;
                long chunk = Math.min(PAGE_BYTES - position % PAGE_BYTES, end - position);
                byte[] data = pages.get(page);
                int flags = data == null ? Extent.HOLE | Extent.ZERO : isZero(data) ? Extent.ZERO : 0;
                if (flags != runFlags && runBytes > 0) {
                    extents.add(new Extent(runBytes, runFlags));
                    runBytes = 0;
                }
                runFlags = flags;
                runBytes += chunk;
                position += chunk;
            }
            if (runBytes > 0) {
                extents.add(new Extent(runBytes, runFlags));
            }
            return extents;
        } finally {
            lock.readLock().unlock();
        }
    }

    private static boolean isZero(byte[] data) {
        for (byte b : data) {
            if (b != 0) {
                return false;
            }
        }
        return true;
    }

    @Override
    public void close() {
        closes.incrementAndGet();
    }

    private void checkWritable() {
        if (readOnly) {
            gateViolations.incrementAndGet();
            throw new io.cairn.io.StorageException(io.cairn.io.StorageException.Code.READ_ONLY, "read-only");
        }
    }

    /** The server validates ranges; this double-checks so a gate bug shows up as a test failure. */
    private void checkRange(long offsetBytes, long lengthBytes) {
        if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes > sizeBytes || lengthBytes > sizeBytes - offsetBytes) {
            gateViolations.incrementAndGet();
            throw new AssertionError("server let an out-of-range request through: offset " + offsetBytes
                    + " length " + lengthBytes + " size " + sizeBytes);
        }
    }
}
