package io.cairn.cli;

import io.cairn.format.Layout;
import io.cairn.volume.MappedRange;
import io.cairn.volume.Volume;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;

/**
 * Copies between raw disk images and volumes, keeping holes: a 4 KiB block of zeros is never
 * written, so it stays a hole in the volume (import) or in the sparse file (export).
 */
final class RawImage {

    static final int BLOCK_BYTES = Layout.BLOCK_BYTES;
    /** Bytes per read; big enough for sequential speed, small enough to stay out of the way of the heap. */
    private static final int CHUNK_BYTES = 1 << 20;
    private static final ByteBuffer ZERO_BLOCK = ByteBuffer.allocate(BLOCK_BYTES).asReadOnlyBuffer();

    /** What a copy wrote and what it left as holes; together they cover the source. */
    record Copied(long dataBytes, long holeBytes) {
    }

    private RawImage() {
    }

    /** Copies the first {@code lengthBytes} of {@code image} to the start of {@code volume}. */
    static Copied importInto(FileChannel image, long lengthBytes, Volume volume, Progress progress) throws IOException {
        ByteBuffer chunk = ByteBuffer.allocate(CHUNK_BYTES);
        long dataBytes = 0;
        for (long offset = 0; offset < lengthBytes; offset += chunk.limit()) {
            chunk.clear().limit((int) Math.min(CHUNK_BYTES, lengthBytes - offset));
            readFully(image, chunk, offset);
            dataBytes += writeNonZeroRuns(chunk.flip(), offset, (position, run) -> volume.write(position, run, false));
            progress.advanceTo(offset + chunk.limit());
        }
        return new Copied(dataBytes, lengthBytes - dataBytes);
    }

    /** Copies every mapped, non-zero block of {@code volume} to the same offset of {@code image}. */
    static Copied exportFrom(Volume volume, FileChannel image, Progress progress) throws IOException {
        ByteBuffer chunk = ByteBuffer.allocate(CHUNK_BYTES);
        long dataBytes = 0;
        for (MappedRange range : volume.mapping(0, volume.sizeBytes())) {
            if (range.mapped()) {
                long end = range.offsetBytes() + range.lengthBytes();
                for (long offset = range.offsetBytes(); offset < end; offset += chunk.limit()) {
                    chunk.clear().limit((int) Math.min(CHUNK_BYTES, end - offset));
                    volume.read(offset, chunk);
                    dataBytes += writeNonZeroRuns(chunk.flip(), offset, (position, run) -> writeFully(image, run, position));
                    progress.advanceTo(offset + chunk.limit());
                }
            }
            progress.advanceTo(range.offsetBytes() + range.lengthBytes());
        }
        return new Copied(dataBytes, volume.sizeBytes() - dataBytes);
    }

    /** Where a run of non-zero blocks goes. */
    @FunctionalInterface
    private interface RunWriter {
        void write(long offsetBytes, ByteBuffer run) throws IOException;
    }

    /**
     * Hands each run of consecutive non-zero blocks of {@code chunk} (which starts at {@code chunkOffset},
     * a block boundary) to {@code writer} in one call; returns the bytes handed over.
     */
    private static long writeNonZeroRuns(ByteBuffer chunk, long chunkOffset, RunWriter writer) throws IOException {
        long written = 0;
        int runStart = -1;
        int blocks = (chunk.limit() + BLOCK_BYTES - 1) / BLOCK_BYTES;
        // One step past the last block, which counts as zero, ends a run that reaches the end.
        for (int block = 0; block <= blocks; block++) {
            int position = block * BLOCK_BYTES;
            boolean zero = block == blocks || isZero(chunk, position);
            if (!zero && runStart < 0) {
                runStart = position;
            } else if (zero && runStart >= 0) {
                int runEnd = Math.min(position, chunk.limit());
                writer.write(chunkOffset + runStart, chunk.slice(runStart, runEnd - runStart));
                written += runEnd - runStart;
                runStart = -1;
            }
        }
        return written;
    }

    /** True if the block at {@code position} (possibly cut short by the limit) holds only zeros. */
    static boolean isZero(ByteBuffer chunk, int position) {
        int length = Math.min(BLOCK_BYTES, chunk.limit() - position);
        return chunk.slice(position, length).mismatch(ZERO_BLOCK.slice(0, length)) < 0;
    }

    private static void readFully(FileChannel channel, ByteBuffer buffer, long offset) throws IOException {
        long position = offset;
        while (buffer.hasRemaining()) {
            int read = channel.read(buffer, position);
            if (read < 0) {
                throw new IOException("the image ended early at byte " + position + "; was it changed during the import?");
            }
            position += read;
        }
    }

    private static void writeFully(FileChannel channel, ByteBuffer buffer, long offset) throws IOException {
        long position = offset;
        while (buffer.hasRemaining()) {
            position += channel.write(buffer, position);
        }
    }
}
