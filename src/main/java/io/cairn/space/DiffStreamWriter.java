package io.cairn.space;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32C;

/**
 * Writes a diff stream (docs/DIFF-FORMAT.md): the header, records in increasing offset order, then
 * END. Adjacent ZERO records are merged. Not thread-safe.
 */
public final class DiffStreamWriter implements AutoCloseable {

    private final OutputStream out;
    private final DiffStream.Header header;
    private final CRC32C streamCrc = new CRC32C();
    private long streamBytes;
    private long records;
    private long dataBytes;
    private long zeroBytes;
    private long nextOffset;
    private long pendingZeroStart = -1;
    private long pendingZeroEnd;
    private boolean ended;

    public DiffStreamWriter(OutputStream out, DiffStream.Header header) throws IOException {
        this.out = new BufferedOutputStream(out, 1 << 20);
        this.header = header;
        writeHeader();
    }

    private void writeHeader() throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(DiffStream.HEADER_FIXED_BYTES + 2 * (16 + 2 + 2 * DiffStream.MAX_TEXT_BYTES) + 4);
        buffer.put(DiffStream.MAGIC)
                .putInt(DiffStream.VERSION)
                .putInt(header.incremental() ? DiffStream.FLAG_INCREMENTAL : 0)
                .putLong(header.sizeBytes())
                .putInt(DiffStream.BLOCK_BYTES)
                .putLong(header.storeId().getMostSignificantBits())
                .putLong(header.storeId().getLeastSignificantBits())
                .putLong(header.createdMillis());
        putIdentity(buffer, header.to());
        if (header.incremental()) {
            putIdentity(buffer, header.from());
        }
        CRC32C crc = new CRC32C();
        crc.update(buffer.array(), 0, buffer.position());
        buffer.putInt((int) crc.getValue());
        emit(buffer.array(), 0, buffer.position());
    }

    private static void putIdentity(ByteBuffer buffer, DiffStream.Identity identity) {
        buffer.putLong(identity.vdiId()).putLong(identity.snapshotId());
        putText(buffer, identity.label());
        putText(buffer, identity.diskName());
    }

    private static void putText(ByteBuffer buffer, String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        if (bytes.length > DiffStream.MAX_TEXT_BYTES) {
            throw new IllegalArgumentException("text longer than " + DiffStream.MAX_TEXT_BYTES + " bytes: " + text);
        }
        buffer.put((byte) bytes.length).put(bytes);
    }

    /** Bytes at {@code offsetBytes} of the new version; split into records of at most 4 MiB. */
    public void data(long offsetBytes, ByteBuffer bytes) throws IOException {
        ByteBuffer source = bytes.duplicate();
        long offset = offsetBytes;
        while (source.hasRemaining()) {
            int length = Math.min(source.remaining(), DiffStream.MAX_DATA_BYTES);
            checkRange(offset, length);
            flushZero();
            ByteBuffer record = ByteBuffer.allocate(DiffStream.DATA_RECORD_OVERHEAD_BYTES + length);
            record.put(DiffStream.TYPE_DATA).putLong(offset).putInt(length);
            record.put(source.slice(source.position(), length));
            source.position(source.position() + length);
            sealAndEmit(record);
            records++;
            dataBytes += length;
            offset += length;
            nextOffset = offset;
        }
    }

    /** Bytes at {@code offsetBytes} that read as zeros in the new version. */
    public void zero(long offsetBytes, long lengthBytes) throws IOException {
        if (lengthBytes == 0) {
            return;
        }
        checkRange(offsetBytes, lengthBytes);
        if (pendingZeroStart >= 0 && pendingZeroEnd == offsetBytes) {
            pendingZeroEnd += lengthBytes;
        } else {
            flushZero();
            pendingZeroStart = offsetBytes;
            pendingZeroEnd = offsetBytes + lengthBytes;
        }
        nextOffset = offsetBytes + lengthBytes;
    }

    private void flushZero() throws IOException {
        if (pendingZeroStart < 0) {
            return;
        }
        ByteBuffer record = ByteBuffer.allocate(DiffStream.ZERO_RECORD_BYTES);
        record.put(DiffStream.TYPE_ZERO).putLong(pendingZeroStart).putLong(pendingZeroEnd - pendingZeroStart);
        sealAndEmit(record);
        records++;
        zeroBytes += pendingZeroEnd - pendingZeroStart;
        pendingZeroStart = -1;
    }

    private void checkRange(long offsetBytes, long lengthBytes) {
        if (ended) {
            throw new IllegalStateException("the stream has ended");
        }
        if (offsetBytes < nextOffset || lengthBytes <= 0 || offsetBytes + lengthBytes > header.sizeBytes()
                || offsetBytes % DiffStream.SECTOR_BYTES != 0 || lengthBytes % DiffStream.SECTOR_BYTES != 0) {
            throw new IllegalArgumentException("record [" + offsetBytes + ", +" + lengthBytes + ") is out of order, empty,"
                    + " unaligned or past the disk's end (" + header.sizeBytes() + " bytes); the last record ended at " + nextOffset);
        }
    }

    /** Writes END and flushes; the underlying stream stays open. */
    public DiffStream.Summary end() throws IOException {
        flushZero();
        ByteBuffer record = ByteBuffer.allocate(DiffStream.END_RECORD_BYTES);
        record.put(DiffStream.TYPE_END).putLong(records).putLong(dataBytes).putInt((int) streamCrc.getValue());
        sealAndEmit(record);
        out.flush();
        ended = true;
        return new DiffStream.Summary(header, records, dataBytes, zeroBytes, streamBytes);
    }

    /** Fills the record's last four bytes with the CRC32C of the others and writes it. */
    private void sealAndEmit(ByteBuffer record) throws IOException {
        CRC32C crc = new CRC32C();
        crc.update(record.array(), 0, record.capacity() - 4);
        record.putInt(record.capacity() - 4, (int) crc.getValue());
        emit(record.array(), 0, record.capacity());
    }

    private void emit(byte[] bytes, int offset, int length) throws IOException {
        out.write(bytes, offset, length);
        streamCrc.update(bytes, offset, length);
        streamBytes += length;
    }

    @Override
    public void close() throws IOException {
        out.flush();
    }
}
