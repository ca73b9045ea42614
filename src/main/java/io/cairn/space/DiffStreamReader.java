package io.cairn.space;

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.UUID;
import java.util.zip.CRC32C;

/**
 * Reads and checks a diff stream (docs/DIFF-FORMAT.md). Every record is checked (checksum, type,
 * order, bounds) before {@link #next()} returns it, and the END record's totals and whole-stream
 * checksum before it reports the end; anything wrong is a {@link DiffStreamException} naming the
 * byte. Not thread-safe.
 */
public final class DiffStreamReader implements AutoCloseable {

    /** A checked record: DATA (with its bytes) or ZERO. */
    public record Record(boolean zero, long offsetBytes, long lengthBytes, byte[] data) {
    }

    private final DataInputStream in;
    private final String source;
    private final CRC32C streamCrc = new CRC32C();
    private final DiffStream.Header header;
    private long position;
    private long records;
    private long dataBytes;
    private long zeroBytes;
    private long nextOffset;
    private boolean ended;

    /** Reads and checks the header; {@code source} names the stream in messages. */
    public DiffStreamReader(InputStream in, String source) throws IOException {
        this.in = new DataInputStream(new BufferedInputStream(in, 64 << 10));
        this.source = source;
        this.header = readHeader();
    }

    public DiffStream.Header header() {
        return header;
    }

    private DiffStream.Header readHeader() throws IOException {
        CRC32C crc = new CRC32C();
        byte[] magic = bytes(DiffStream.MAGIC.length, crc);
        if (!Arrays.equals(magic, DiffStream.MAGIC)) {
            throw corrupt(0, "not a Cairn diff stream (no CAIRNDIF magic)");
        }
        int version = readInt(crc);
        if (version != DiffStream.VERSION) {
            throw corrupt(8, "diff stream version " + version + " is not supported (this version reads version "
                    + DiffStream.VERSION + ")");
        }
        int flags = readInt(crc);
        if ((flags & ~DiffStream.KNOWN_FLAGS) != 0) {
            throw corrupt(12, "unknown header flags 0x" + Integer.toHexString(flags & ~DiffStream.KNOWN_FLAGS));
        }
        long sizeBytes = readLong(crc);
        int blockBytes = readInt(crc);
        UUID storeId = new UUID(readLong(crc), readLong(crc));
        long created = readLong(crc);
        DiffStream.Identity to = readIdentity(crc);
        DiffStream.Identity from = (flags & DiffStream.FLAG_INCREMENTAL) != 0 ? readIdentity(crc) : null;
        long crcAt = position;
        int expected = (int) crc.getValue();
        int stored = readInt(null);
        if (stored != expected) {
            throw corrupt(crcAt, "header checksum mismatch");
        }
        if (sizeBytes <= 0 || sizeBytes % DiffStream.SECTOR_BYTES != 0 || blockBytes != DiffStream.BLOCK_BYTES) {
            throw corrupt(16, "header names a disk of " + sizeBytes + " bytes with blocks of " + blockBytes + " bytes");
        }
        return new DiffStream.Header(sizeBytes, storeId, created, from, to);
    }

    private DiffStream.Identity readIdentity(CRC32C crc) throws IOException {
        long vdiId = readLong(crc);
        long snapshotId = readLong(crc);
        String label = readText(crc);
        String name = readText(crc);
        return new DiffStream.Identity(vdiId, snapshotId, label, name);
    }

    private String readText(CRC32C crc) throws IOException {
        int length = Byte.toUnsignedInt(bytes(1, crc)[0]);
        return new String(bytes(length, crc), StandardCharsets.UTF_8);
    }

    /**
     * The next record, checked; null after a valid END (and nothing after it).
     *
     * @throws DiffStreamException if the stream is corrupt or truncated
     */
    public Record next() throws IOException {
        if (ended) {
            return null;
        }
        long start = position;
        int streamCrcBefore = (int) streamCrc.getValue();
        CRC32C crc = new CRC32C();
        byte type = bytes(1, crc)[0];
        switch (type) {
            case DiffStream.TYPE_DATA -> {
                long offset = readLong(crc);
                int length = readInt(crc);
                checkRange(start, offset, length, length > DiffStream.MAX_DATA_BYTES);
                byte[] data = bytes(length, crc);
                checkCrc(start, crc);
                records++;
                dataBytes += length;
                nextOffset = offset + length;
                return new Record(false, offset, length, data);
            }
            case DiffStream.TYPE_ZERO -> {
                long offset = readLong(crc);
                long length = readLong(crc);
                checkRange(start, offset, length, false);
                checkCrc(start, crc);
                records++;
                zeroBytes += length;
                nextOffset = offset + length;
                return new Record(true, offset, length, null);
            }
            case DiffStream.TYPE_END -> {
                long recordCount = readLong(crc);
                long totalData = readLong(crc);
                int totalCrc = readInt(crc);
                checkCrc(start, crc);
                if (recordCount != records || totalData != dataBytes) {
                    throw corrupt(start, "END counts " + recordCount + " records and " + totalData
                            + " data bytes, but the stream holds " + records + " and " + dataBytes);
                }
                if (totalCrc != streamCrcBefore) {
                    throw corrupt(start, "whole-stream checksum mismatch");
                }
                if (!header.incremental() && nextOffset != header.sizeBytes()) {
                    throw corrupt(start, "a full stream must cover the whole disk, but its records end at byte " + nextOffset);
                }
                if (in.read() >= 0) {
                    throw corrupt(position, "bytes after the END record");
                }
                ended = true;
                return null;
            }
            default -> throw corrupt(start, "unknown record type 0x" + Integer.toHexString(type & 0xff));
        }
    }

    private void checkRange(long at, long offset, long length, boolean tooLong) throws DiffStreamException {
        boolean gap = !header.incremental() && offset != nextOffset;
        if (tooLong || length <= 0 || offset < nextOffset || offset > header.sizeBytes() - length || gap
                || offset % DiffStream.SECTOR_BYTES != 0 || length % DiffStream.SECTOR_BYTES != 0) {
            throw corrupt(at, "record [" + offset + ", +" + length + ") is out of order, "
                    + (gap ? "leaves a gap in a full stream, " : "") + "empty, too long, unaligned or past the disk's end ("
                    + header.sizeBytes() + " bytes)");
        }
    }

    private void checkCrc(long at, CRC32C crc) throws IOException {
        int expected = (int) crc.getValue();
        if (readInt(null) != expected) {
            throw corrupt(at, "record checksum mismatch");
        }
    }

    /** Summary so far; complete once {@link #next()} has returned null. */
    public DiffStream.Summary summary() {
        return new DiffStream.Summary(header, records, dataBytes, zeroBytes, position);
    }

    private byte[] bytes(int length, CRC32C crc) throws IOException {
        byte[] bytes = new byte[length];
        try {
            in.readFully(bytes);
        } catch (EOFException truncated) {
            throw corrupt(position, "the stream ends early (truncated?)");
        }
        position += length;
        streamCrc.update(bytes);
        if (crc != null) {
            crc.update(bytes);
        }
        return bytes;
    }

    private int readInt(CRC32C crc) throws IOException {
        return java.nio.ByteBuffer.wrap(bytes(4, crc)).getInt();
    }

    private long readLong(CRC32C crc) throws IOException {
        return java.nio.ByteBuffer.wrap(bytes(8, crc)).getLong();
    }

    private DiffStreamException corrupt(long at, String what) {
        return new DiffStreamException("corrupt diff stream " + source + " at byte " + at + ": " + what);
    }

    @Override
    public void close() throws IOException {
        in.close();
    }
}
