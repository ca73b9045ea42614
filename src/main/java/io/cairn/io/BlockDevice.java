package io.cairn.io;

import java.io.Closeable;
import java.nio.ByteBuffer;

/**
 * Positional I/O over the blockstore: a file or a block device.
 *
 * <p>Design notes.
 * <ol>
 *   <li>Offsets and lengths are in bytes; callers align them to the 4 KiB block size,
 *       the device does not enforce alignment.</li>
 *   <li>A write is durable only after {@link #flush()} returns. Until then the device may
 *       keep it, drop it, or persist only some of its 512-byte sectors (that is what a disk
 *       with a volatile cache does, and what {@code FaultInjectingBlockDevice} simulates).</li>
 *   <li>Reads see every completed write, flushed or not.</li>
 *   <li>Thread-safe: any thread may read, write and flush concurrently; positional calls
 *       do not share a file position.</li>
 * </ol>
 */
public interface BlockDevice extends Closeable {

    /** Bytes of one sector, the unit a torn write preserves or loses. */
    int SECTOR_BYTES = 512;

    /** Reads exactly {@code buffer.remaining()} bytes at {@code offsetBytes}; past the end reads zeros. */
    void read(long offsetBytes, ByteBuffer buffer);

    /** Writes all of {@code buffer.remaining()} bytes at {@code offsetBytes}, growing the device if it is a file. */
    void write(long offsetBytes, ByteBuffer buffer);

    /**
     * Lends the device's bytes {@code [offsetBytes, offsetBytes + lengthBytes)} in place: a read-only view of
     * memory that maps them, which sees later writes, valid until the lend is closed. Null when the device
     * cannot lend that range (not a file, past its end, or not mappable); callers then {@link #read} it.
     * Touching the view may fault the bytes in from the disk: a disk error there is not reported as this
     * device's failure, so a user that must report read errors precisely reads instead.
     */
    default Lent lend(long offsetBytes, int lengthBytes) {
        return null;
    }

    /** Bytes lent in place by {@link #lend}. */
    interface Lent extends AutoCloseable {
        /** A read-only direct view of the bytes. */
        ByteBuffer view();

        /** Ends the lend; the view must not be used afterwards. Idempotent for one thread. */
        @Override
        void close();
    }

    /** Makes every completed write durable. */
    void flush();

    /** Current size of the device in bytes. */
    long sizeBytes();

    /**
     * Tells the device that a byte range no longer holds data (punches a hole in a sparse file).
     * A hint: the range reads back as zeros or as its old content; callers never rely on either.
     */
    default void discard(long offsetBytes, long lengthBytes) {
    }

    @Override
    void close();
}
