package io.cairn.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * One opened export: the storage the NBD server serves to one connection.
 *
 * <p>Threading: a connection calls these methods from many threads at once (requests are in flight
 * concurrently), so implementations must be thread-safe. The connection starts a request that
 * overlaps a write still in flight only after that write has returned; other requests run in any order. {@link #close()} is called once, after every other call has returned.
 *
 * <p>Arguments are already validated by the server: every range lies inside {@code [0, sizeBytes())},
 * write operations never reach a {@link #readOnly()} export, and buffers are at most 32 MiB.
 *
 * <p>Failures: throw {@link io.cairn.io.StorageException} (its code picks the NBD error: IO→EIO,
 * NO_SPACE→ENOSPC, READ_ONLY/LOCKED→EPERM, CORRUPT→EIO, CLOSED→ESHUTDOWN),
 * {@link IllegalArgumentException} (EINVAL) or {@link FastZeroUnsupportedException} (ENOTSUP). Any
 * other exception becomes EIO. A failure fails one request, never the connection.
 */
public interface NbdExport extends AutoCloseable {

    /** Size in bytes; constant while the export is open. */
    long sizeBytes();

    /** True if every write, trim and write-zeroes must be refused with EPERM. */
    boolean readOnly();

    /**
     * True if a flush (or FUA write) on one connection makes data written through every other
     * connection to the same export durable and visible; only then is NBD_FLAG_CAN_MULTI_CONN sent.
     */
    boolean canFlushAcrossConnections();

    /** Fills {@code dst} from its position to its limit with the bytes at {@code offsetBytes}. */
    void read(long offsetBytes, ByteBuffer dst);

    /**
     * Lends the bytes of {@code [offsetBytes, offsetBytes + lengthBytes)} in place to {@code user} for the
     * duration of the call, so a reply can be sent from where they live without a copy; returns false without
     * calling the user when they cannot be lent (then {@link #read} them), which the default always does. The
     * bytes come in at most {@code maxViews} pieces. The user must return within a bounded time: the storage
     * may not reuse the bytes' space until it does.
     */
    default boolean lend(long offsetBytes, int lengthBytes, int maxViews, LentUser user) throws IOException {
        return false;
    }

    /** Bytes lent by {@link #lend}, valid while the user's call runs. */
    interface Lent {
        /** Read-only direct views of the bytes, in order. */
        List<ByteBuffer> views();

        /** Copies the bytes from {@code fromBytes} (from the start of the lent range) into {@code destination}, up to its limit. */
        void copyTo(int fromBytes, ByteBuffer destination);
    }

    /** What uses lent bytes. */
    interface LentUser {
        void use(Lent lent) throws IOException;
    }

    /**
     * Writes the bytes of {@code src} (position to limit) at {@code offsetBytes}.
     *
     * @param fua if true, return only once the written data is durable
     */
    void write(long offsetBytes, ByteBuffer src, boolean fua);

    /** Makes every write that has completed so far durable. */
    void flush();

    /** Hint that the range is no longer needed; it may read back as anything until written again. */
    void trim(long offsetBytes, long lengthBytes, boolean fua);

    /**
     * Makes the range read back as zeroes.
     *
     * @param mayPunchHole  false if the client asked for the range to stay allocated (NO_HOLE)
     * @param fastZeroOnly  if true and zeroing would not be faster than writing zeroes, throw
     *                      {@link FastZeroUnsupportedException} without changing anything
     */
    void writeZeroes(long offsetBytes, long lengthBytes, boolean fua, boolean mayPunchHole, boolean fastZeroOnly);

    /** Hint that the client will soon read the range; may do nothing. */
    void cache(long offsetBytes, long lengthBytes);

    /**
     * Allocation status ({@code base:allocation}) of consecutive extents starting at {@code offsetBytes}.
     * The list must not be empty; it may cover less than {@code lengthBytes} (the client asks again for
     * the rest) or more (the server trims it). Flags are {@link Extent#HOLE} and {@link Extent#ZERO}.
     */
    List<Extent> blockStatus(long offsetBytes, long lengthBytes);

    /** Releases the export; no other method is called afterwards. */
    @Override
    void close();
}
