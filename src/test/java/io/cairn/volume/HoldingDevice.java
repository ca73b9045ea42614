package io.cairn.volume;

import io.cairn.format.Layout;
import io.cairn.io.BlockDevice;
import io.cairn.io.ForwardingBlockDevice;
import java.nio.ByteBuffer;
import java.util.concurrent.CountDownLatch;

/**
 * Holds the next read of one block inside the device call until released: a test stops a volume read, or a
 * node-cache miss under the store's metadata lock, at a known point.
 */
final class HoldingDevice extends ForwardingBlockDevice {
    private volatile long heldOffset = -1;
    private final CountDownLatch release = new CountDownLatch(1);
    private CountDownLatch entered;

    HoldingDevice(BlockDevice inner) {
        super(inner);
    }

    CountDownLatch holdNextReadOf(long block) {
        entered = new CountDownLatch(1);
        heldOffset = block * Layout.BLOCK_BYTES;
        return entered;
    }

    void releaseHeldRead() {
        release.countDown();
    }

    @Override
    public void read(long offsetBytes, ByteBuffer buffer) {
        if (offsetBytes == heldOffset) {
            heldOffset = -1;
            entered.countDown();
            try {
                release.await();
            } catch (InterruptedException interrupted) {
                Thread.currentThread().interrupt();
            }
        }
        inner.read(offsetBytes, buffer);
    }
}
