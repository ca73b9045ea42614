package io.cairn.io;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A sparse {@link BlockDevice} in memory, for tests, crash images and benchmarks.
 *
 * <p>Design notes.
 * <ol>
 *   <li>Storage is a map from page number to a 4 KiB page; a page that was never written (or was
 *       discarded whole) is absent and reads as zeros, so a terabyte device costs only what is
 *       written.</li>
 *   <li>Like a sparse file, the size is the larger of the size given at construction and the end of
 *       the furthest write; reads past it return zeros.</li>
 *   <li>Everything is durable at once; {@link #flush()} only checks that the device is open.
 *       {@link FaultInjectingBlockDevice} adds a volatile cache on top.</li>
 *   <li>{@link #discard} really zeroes the range, so tests see a deterministic result.</li>
 * </ol>
 *
 * <p>Threading: any thread may call any method. Each page is copied under its own monitor, so a
 * read overlapping a concurrent write sees each page either before or after it (the per-sector
 * atomicity of a disk, and a little more); operations on different pages never contend.
 */
public final class MemoryBlockDevice implements BlockDevice {

    /** Bytes per page of the map: the block size of the store. */
    public static final int PAGE_BYTES = 4096;

    private static final byte[] ZERO_PAGE = new byte[PAGE_BYTES];

    private final Map<Long, byte[]> pagesByNumber = new ConcurrentHashMap<>();
    private final AtomicLong sizeBytes;
    private volatile boolean closed;

    /** An empty device that grows as it is written. */
    public MemoryBlockDevice() {
        this(0);
    }

    /** A device of {@code sizeBytes} zeros (no memory used until written). */
    public MemoryBlockDevice(long sizeBytes) {
        if (sizeBytes < 0) {
            throw new IllegalArgumentException("sizeBytes must not be negative: " + sizeBytes);
        }
        this.sizeBytes = new AtomicLong(sizeBytes);
    }

    @Override
    public void read(long offsetBytes, ByteBuffer buffer) {
        checkRange(offsetBytes, buffer);
        checkOpen();
        long position = offsetBytes;
        while (buffer.hasRemaining()) {
            long pageNumber = position / PAGE_BYTES;
            int offsetInPage = (int) (position % PAGE_BYTES);
            int chunkBytes = Math.min(PAGE_BYTES - offsetInPage, buffer.remaining());
            byte[] page = pagesByNumber.get(pageNumber);
            if (page == null) {
                buffer.put(ZERO_PAGE, 0, chunkBytes);
            } else {
                synchronized (page) {
                    buffer.put(page, offsetInPage, chunkBytes);
                }
            }
            position += chunkBytes;
        }
    }

    @Override
    public void write(long offsetBytes, ByteBuffer buffer) {
        checkRange(offsetBytes, buffer);
        checkOpen();
        long endBytes = offsetBytes + buffer.remaining();
        long position = offsetBytes;
        while (buffer.hasRemaining()) {
            long pageNumber = position / PAGE_BYTES;
            int offsetInPage = (int) (position % PAGE_BYTES);
            int chunkBytes = Math.min(PAGE_BYTES - offsetInPage, buffer.remaining());
            byte[] page = pagesByNumber.computeIfAbsent(pageNumber, unused -> new byte[PAGE_BYTES]);
            synchronized (page) {
                buffer.get(page, offsetInPage, chunkBytes);
            }
            position += chunkBytes;
        }
        sizeBytes.accumulateAndGet(endBytes, Math::max);
    }

    @Override
    public void flush() {
        checkOpen();
    }

    @Override
    public long sizeBytes() {
        checkOpen();
        return sizeBytes.get();
    }

    /** Zeroes the range; pages it covers whole are freed. */
    @Override
    public void discard(long offsetBytes, long lengthBytes) {
        if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes + lengthBytes < offsetBytes) {
            throw new IllegalArgumentException("bad range: offsetBytes=" + offsetBytes + " lengthBytes=" + lengthBytes);
        }
        checkOpen();
        long position = offsetBytes;
        long endBytes = offsetBytes + lengthBytes;
        while (position < endBytes) {
            long pageNumber = position / PAGE_BYTES;
            int offsetInPage = (int) (position % PAGE_BYTES);
            int chunkBytes = (int) Math.min(PAGE_BYTES - offsetInPage, endBytes - position);
            if (chunkBytes == PAGE_BYTES) {
                pagesByNumber.remove(pageNumber);
            } else {
                byte[] page = pagesByNumber.get(pageNumber);
                if (page != null) {
                    synchronized (page) {
                        Arrays.fill(page, offsetInPage, offsetInPage + chunkBytes, (byte) 0);
                    }
                }
            }
            position += chunkBytes;
        }
    }

    @Override
    public void close() {
        closed = true;
    }

    /** Bytes of memory held by written pages. */
    public long allocatedBytes() {
        return (long) pagesByNumber.size() * PAGE_BYTES;
    }

    /** An independent copy of the current content and size. Concurrent writes land in it or not, page by page. */
    public MemoryBlockDevice copy() {
        checkOpen();
        MemoryBlockDevice copy = new MemoryBlockDevice(sizeBytes.get());
        pagesByNumber.forEach((pageNumber, page) -> {
            synchronized (page) {
                copy.pagesByNumber.put(pageNumber, page.clone());
            }
        });
        return copy;
    }

    /** True if both devices have the same size and read back the same bytes everywhere. */
    public boolean sameContent(MemoryBlockDevice other) {
        Objects.requireNonNull(other, "other");
        if (sizeBytes() != other.sizeBytes()) {
            return false;
        }
        for (long pageNumber : union(pagesByNumber, other.pagesByNumber)) {
            if (!Arrays.equals(pageOrZeros(pageNumber), other.pageOrZeros(pageNumber))) {
                return false;
            }
        }
        return true;
    }

    @Override
    public String toString() {
        return "MemoryBlockDevice[sizeBytes=" + sizeBytes.get() + ", allocatedBytes=" + allocatedBytes() + "]";
    }

    private byte[] pageOrZeros(long pageNumber) {
        byte[] page = pagesByNumber.get(pageNumber);
        if (page == null) {
            return ZERO_PAGE;
        }
        synchronized (page) {
            return page.clone();
        }
    }

    private static Set<Long> union(Map<Long, byte[]> first, Map<Long, byte[]> second) {
        Set<Long> pageNumbers = new HashSet<>(first.keySet());
        pageNumbers.addAll(second.keySet());
        return pageNumbers;
    }

    private void checkOpen() {
        if (closed) {
            throw new StorageException(StorageException.Code.CLOSED, "memory device is closed");
        }
    }

    private static void checkRange(long offsetBytes, ByteBuffer buffer) {
        Objects.requireNonNull(buffer, "buffer");
        if (offsetBytes < 0 || offsetBytes + buffer.remaining() < offsetBytes) {
            throw new IllegalArgumentException("bad range: offsetBytes=" + offsetBytes + " lengthBytes=" + buffer.remaining());
        }
    }
}
