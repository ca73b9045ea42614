package io.cairn.nbd;

import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntFunction;

/**
 * Where the server gets its READ and WRITE payload buffers, and gives them back once a reply is on
 * the wire or a payload has been stored.
 *
 * <p>A buffer from {@link #apply} has exactly the requested {@code limit}, position 0, and possibly a
 * larger capacity. Giving a buffer back is optional (one that is not is simply garbage), but a buffer
 * must be given back at most once, and never used again afterwards.
 */
@FunctionalInterface
interface PayloadBuffers extends IntFunction<ByteBuffer> {

    /** Takes back a buffer that {@link #apply} returned; the default does nothing. */
    default void release(ByteBuffer buffer) {
    }

    /**
     * Direct buffers, recycled. Socket and file I/O on a heap buffer go through a temporary native
     * buffer and a copy in the JDK, and a fresh direct buffer costs an allocation, zeroing and page
     * faults; recycled direct buffers go to the kernel as they are. Buffers come in power-of-two
     * capacities from 4 KiB; at most {@code maxPooledBytes} wait for reuse, the rest are dropped.
     */
    final class DirectPool implements PayloadBuffers {

        private static final int MIN_SHIFT = 12;
        private static final int MAX_SHIFT = 31;

        @SuppressWarnings("unchecked")
        private final ConcurrentLinkedQueue<ByteBuffer>[] free = new ConcurrentLinkedQueue[MAX_SHIFT + 1];
        private final AtomicLong pooledBytes = new AtomicLong();
        private final long maxPooledBytes;

        DirectPool(long maxPooledBytes) {
            this.maxPooledBytes = maxPooledBytes;
            for (int shift = MIN_SHIFT; shift <= MAX_SHIFT; shift++) {
                free[shift] = new ConcurrentLinkedQueue<>();
            }
        }

        @Override
        public ByteBuffer apply(int lengthBytes) {
            if (lengthBytes < 0) {
                throw new IllegalArgumentException("negative buffer size " + lengthBytes);
            }
            int shift = shiftFor(lengthBytes);
            ByteBuffer buffer = free[shift].poll();
            if (buffer != null) {
                pooledBytes.addAndGet(-buffer.capacity());
            } else {
                buffer = ByteBuffer.allocateDirect(1 << shift);
            }
            return buffer.clear().limit(lengthBytes);
        }

        @Override
        public void release(ByteBuffer buffer) {
            int capacity = buffer.capacity();
            if (!buffer.isDirect() || Integer.bitCount(capacity) != 1 || capacity < 1 << MIN_SHIFT) {
                return; // not one of ours
            }
            if (pooledBytes.addAndGet(capacity) > maxPooledBytes) {
                pooledBytes.addAndGet(-capacity);
                return;
            }
            free[Integer.numberOfTrailingZeros(capacity)].offer(buffer);
        }

        long pooledBytes() {
            return pooledBytes.get();
        }

        private static int shiftFor(int lengthBytes) {
            if (lengthBytes <= 1 << MIN_SHIFT) {
                return MIN_SHIFT;
            }
            return 32 - Integer.numberOfLeadingZeros(lengthBytes - 1);
        }
    }
}
