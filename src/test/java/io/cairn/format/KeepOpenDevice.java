package io.cairn.format;

import io.cairn.io.BlockDevice;
import io.cairn.io.MemoryBlockDevice;

import java.nio.ByteBuffer;

/** A memory device that stays readable after a store closes it, so a test can keep the image. */
final class KeepOpenDevice implements BlockDevice {

    final MemoryBlockDevice memory = new MemoryBlockDevice();

    @Override
    public void read(long offsetBytes, ByteBuffer buffer) {
        memory.read(offsetBytes, buffer);
    }

    @Override
    public void write(long offsetBytes, ByteBuffer buffer) {
        memory.write(offsetBytes, buffer);
    }

    @Override
    public void flush() {
        memory.flush();
    }

    @Override
    public long sizeBytes() {
        return memory.sizeBytes();
    }

    @Override
    public void discard(long offsetBytes, long lengthBytes) {
        memory.discard(offsetBytes, lengthBytes);
    }

    @Override
    public void close() {
    }
}
