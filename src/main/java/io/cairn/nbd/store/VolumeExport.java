package io.cairn.nbd.store;

import io.cairn.nbd.Extent;
import io.cairn.nbd.FastZeroUnsupportedException;
import io.cairn.nbd.NbdExport;
import io.cairn.volume.MappedRange;
import io.cairn.volume.Volume;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * One volume served to one NBD connection.
 *
 * <p>Block status ({@code base:allocation}) keeps the spec's promise that a write to a range reported
 * as allocated never fails with ENOSPC: only blocks the disk alone owns, which are overwritten in
 * place, are reported allocated. Blocks shared with snapshots or clones are reported as holes whose
 * content is not known to be zero (HOLE without ZERO, which the spec allows), so clients still copy
 * them as data; true holes are HOLE|ZERO.
 */
final class VolumeExport implements NbdExport {

    private final Volume volume;
    /** Every write, trim and zeroing is durable before it is acknowledged. */
    private final boolean writeThrough;

    VolumeExport(Volume volume, boolean writeThrough) {
        this.volume = volume;
        this.writeThrough = writeThrough;
    }

    Volume volume() {
        return volume;
    }

    @Override
    public long sizeBytes() {
        return volume.sizeBytes();
    }

    @Override
    public boolean readOnly() {
        return volume.readOnly();
    }

    /** A commit is store-wide: a flush on any connection makes every completed write durable. */
    @Override
    public boolean canFlushAcrossConnections() {
        return true;
    }

    @Override
    public void read(long offsetBytes, ByteBuffer dst) {
        volume.read(offsetBytes, dst);
    }

    @Override
    public boolean lend(long offsetBytes, int lengthBytes, int maxViews, LentUser user) throws IOException {
        return volume.lend(offsetBytes, lengthBytes, maxViews, bytes -> user.use(new Lent() {
            @Override
            public List<ByteBuffer> views() {
                return bytes.views();
            }

            @Override
            public void copyTo(int fromBytes, ByteBuffer destination) {
                bytes.copyTo(fromBytes, destination);
            }
        }));
    }

    @Override
    public void write(long offsetBytes, ByteBuffer src, boolean fua) {
        volume.write(offsetBytes, src, fua || writeThrough);
    }

    @Override
    public void flush() {
        volume.flush();
    }

    @Override
    public void trim(long offsetBytes, long lengthBytes, boolean fua) {
        volume.trim(offsetBytes, lengthBytes, fua || writeThrough);
    }

    @Override
    public void writeZeroes(long offsetBytes, long lengthBytes, boolean fua, boolean mayPunchHole, boolean fastZeroOnly) {
        if (fastZeroOnly && !mayPunchHole) {
            // Keeping the blocks allocated means writing zeros: no faster than the client doing it.
            throw new FastZeroUnsupportedException("zeroing without punching holes writes every block");
        }
        volume.writeZeroes(offsetBytes, lengthBytes, mayPunchHole, fua || writeThrough);
    }

    @Override
    public void cache(long offsetBytes, long lengthBytes) {
        // Data blocks are read straight from the device (and its page cache); nothing to prefetch.
    }

    @Override
    public List<Extent> blockStatus(long offsetBytes, long lengthBytes) {
        List<MappedRange> ranges = volume.mapping(offsetBytes, lengthBytes);
        List<Extent> extents = new ArrayList<>(ranges.size());
        for (MappedRange range : ranges) {
            long start = Math.max(range.offsetBytes(), offsetBytes);
            long length = range.offsetBytes() + range.lengthBytes() - start;
            if (length <= 0) {
                continue;
            }
            extents.add(switch (range.state()) {
                case HOLE -> Extent.hole(length);
                case SHARED -> new Extent(length, Extent.HOLE);
                case OWNED -> Extent.data(length);
            });
        }
        return extents;
    }

    @Override
    public void close() {
        volume.close();
    }
}
