package io.cairn.nbd;

import java.nio.ByteBuffer;
import java.util.List;

/** Passes every call to another export; tests override single methods to inject behaviour. */
class ForwardingExport implements NbdExport {

    private final NbdExport delegate;

    ForwardingExport(NbdExport delegate) {
        this.delegate = delegate;
    }

    @Override
    public long sizeBytes() {
        return delegate.sizeBytes();
    }

    @Override
    public boolean readOnly() {
        return delegate.readOnly();
    }

    @Override
    public boolean canFlushAcrossConnections() {
        return delegate.canFlushAcrossConnections();
    }

    @Override
    public void read(long offsetBytes, ByteBuffer dst) {
        delegate.read(offsetBytes, dst);
    }

    @Override
    public void write(long offsetBytes, ByteBuffer src, boolean fua) {
        delegate.write(offsetBytes, src, fua);
    }

    @Override
    public void flush() {
        delegate.flush();
    }

    @Override
    public void trim(long offsetBytes, long lengthBytes, boolean fua) {
        delegate.trim(offsetBytes, lengthBytes, fua);
    }

    @Override
    public void writeZeroes(long offsetBytes, long lengthBytes, boolean fua, boolean mayPunchHole, boolean fastZeroOnly) {
        delegate.writeZeroes(offsetBytes, lengthBytes, fua, mayPunchHole, fastZeroOnly);
    }

    @Override
    public void cache(long offsetBytes, long lengthBytes) {
        delegate.cache(offsetBytes, lengthBytes);
    }

    @Override
    public List<Extent> blockStatus(long offsetBytes, long lengthBytes) {
        return delegate.blockStatus(offsetBytes, lengthBytes);
    }

    @Override
    public void close() {
        delegate.close();
    }
}
