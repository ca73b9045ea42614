package io.cairn.volume;

import io.cairn.format.Layout;
import io.cairn.io.BlockDevice;
import io.cairn.io.ForwardingBlockDevice;
import java.nio.ByteBuffer;
import java.util.concurrent.CountDownLatch;

/**
 * Holds the next read of one block, or the next single-block write, inside the device call until released: a
 * test stops a volume read, a node-cache miss under the store's metadata lock, or a data write at a known point.
 */
final class HoldingDevice extends ForwardingBlockDevice {
    private volatile long heldOffset = -1;
    private final CountDownLatch release = new CountDownLatch(1);
    private CountDownLatch entered;
    private volatile CountDownLatch writeEntered;

    HoldingDevice(BlockDevice inner) {
        super(inner);
    }

    CountDownLatch holdNextReadOf(long block) {
        entered = new CountDownLatch(1);
        heldOffset = block * Layout.BLOCK_BYTES;
        return entered;
    }

    /** Holds the next write of exactly one block (a data block: metadata is written by commits, in other calls too). */
    CountDownLatch holdNextWrite() {
        CountDownLatch latch = new CountDownLatch(1);
        writeEntered = latch;
        return latch;
    }

    void release() {
        release.countDown();
    }

    @Override
    public void read(long offsetBytes, ByteBuffer buffer) {
        if (offsetBytes == heldOffset) {
            heldOffset = -1;
            hold(entered);
        }
        inner.read(offsetBytes, buffer);
    }

    @Override
    public void write(long offsetBytes, ByteBuffer buffer) {
        CountDownLatch latch = writeEntered;
        if (latch != null && buffer.remaining() == Layout.BLOCK_BYTES) {
            writeEntered = null;
            hold(latch);
        }
        inner.write(offsetBytes, buffer);
    }

    private void hold(CountDownLatch entered) {
        entered.countDown();
        try {
            release.await();
        } catch (InterruptedException interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
