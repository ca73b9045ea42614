package io.cairn.volume;

import io.cairn.io.BlockDevice;

import java.nio.ByteBuffer;
import java.util.Arrays;

/** A growable byte-array device for engine tests (no crash simulation). */
final class SimpleMemoryDevice implements BlockDevice {
    private byte[] bytes = new byte[0];
    private long size;
    int flushes;

    @Override
    public synchronized void read(long offsetBytes, ByteBuffer buffer) {
        int length = buffer.remaining();
        for (int i = 0; i < length; i++) {
            long at = offsetBytes + i;
            buffer.put(at < bytes.length ? bytes[(int) at] : 0);
        }
    }

    @Override
    public synchronized void write(long offsetBytes, ByteBuffer buffer) {
        int length = buffer.remaining();
        long end = offsetBytes + length;
        if (end > bytes.length) {
            bytes = Arrays.copyOf(bytes, (int) Math.max(end, bytes.length * 2L));
        }
        buffer.get(bytes, (int) offsetBytes, length);
        size = Math.max(size, end);
    }

    @Override
    public synchronized void flush() {
        flushes++;
    }

    @Override
    public synchronized long sizeBytes() {
        return size;
    }

    @Override
    public void close() {
    }

    synchronized byte[] image() {
        return Arrays.copyOf(bytes, (int) size);
    }
}
