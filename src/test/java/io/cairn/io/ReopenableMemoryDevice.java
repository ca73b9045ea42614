package io.cairn.io;

import java.nio.ByteBuffer;

/**
 * A {@link MemoryBlockDevice} whose content outlives {@code Store.close()}, as a disk outlives the
 * process that used it: closing it only marks it closed, and {@link #reopen()} hands out a fresh
 * handle on the same bytes. Using a closed handle fails, so a test cannot keep writing through a
 * store it closed.
 */
public final class ReopenableMemoryDevice implements BlockDevice {

    private final MemoryBlockDevice medium;
    private volatile boolean closed;

    public ReopenableMemoryDevice() {
        this(new MemoryBlockDevice());
    }

    private ReopenableMemoryDevice(MemoryBlockDevice medium) {
        this.medium = medium;
    }

    /** A new open handle on the same content (the old handle stays closed). */
    public ReopenableMemoryDevice reopen() {
        return new ReopenableMemoryDevice(medium);
    }

    /** The content as it is now (for tests that corrupt it or copy it). */
    public MemoryBlockDevice medium() {
        return medium;
    }

    @Override
    public void read(long offsetBytes, ByteBuffer buffer) {
        checkOpen();
        medium.read(offsetBytes, buffer);
    }

    @Override
    public void write(long offsetBytes, ByteBuffer buffer) {
        checkOpen();
        medium.write(offsetBytes, buffer);
    }

    @Override
    public void flush() {
        checkOpen();
    }

    @Override
    public long sizeBytes() {
        checkOpen();
        return medium.sizeBytes();
    }

    @Override
    public void discard(long offsetBytes, long lengthBytes) {
        checkOpen();
        medium.discard(offsetBytes, lengthBytes);
    }

    @Override
    public void close() {
        closed = true;
    }

    private void checkOpen() {
        if (closed) {
            throw new StorageException(StorageException.Code.CLOSED, "device handle is closed");
        }
    }
}
