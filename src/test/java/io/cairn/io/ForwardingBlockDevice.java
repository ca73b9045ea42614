package io.cairn.io;

import java.nio.ByteBuffer;

/** A device that passes every call to another; tests override the calls they want to hold or observe. */
public abstract class ForwardingBlockDevice implements BlockDevice {

    protected final BlockDevice inner;

    protected ForwardingBlockDevice(BlockDevice inner) {
        this.inner = inner;
    }

    @Override
    public void read(long offsetBytes, ByteBuffer buffer) {
        inner.read(offsetBytes, buffer);
    }

    @Override
    public void write(long offsetBytes, ByteBuffer buffer) {
        inner.write(offsetBytes, buffer);
    }

    @Override
    public void flush() {
        inner.flush();
    }

    @Override
    public long sizeBytes() {
        return inner.sizeBytes();
    }

    @Override
    public void discard(long offsetBytes, long lengthBytes) {
        inner.discard(offsetBytes, lengthBytes);
    }

    @Override
    public void close() {
        inner.close();
    }
}
