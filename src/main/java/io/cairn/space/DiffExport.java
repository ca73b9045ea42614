package io.cairn.space;

import io.cairn.format.Layout;
import io.cairn.volume.Store;
import io.cairn.volume.Volume;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.util.function.LongConsumer;

/**
 * Writes the changes between two versions of a disk as a diff stream, or a whole version as a full
 * stream. DATA records carry the new version's bytes; ranges that read as zeros there (holes, and
 * blocks written with zeros) become ZERO records, so a stream never carries zeros.
 *
 * <p>Both versions are opened for the whole export, so neither can be deleted while it runs. Export
 * a snapshot, not the live disk, when something may be writing the disk: the changed ranges are
 * found first and read afterwards.
 */
public final class DiffExport {

    private static final int CHUNK_BYTES = 1 << 20;
    private static final ByteBuffer ZERO_BLOCK = ByteBuffer.allocate(Layout.BLOCK_BYTES).asReadOnlyBuffer();

    private DiffExport() {
    }

    /**
     * Writes the stream from {@code fromReference} (null: a full stream) to {@code toReference}.
     *
     * @param progress told the offset reached, in bytes of the disk
     */
    public static DiffStream.Summary write(Store store, String fromReference, String toReference, OutputStream out,
                                           LongConsumer progress) throws IOException {
        try (Volume to = store.openVolume(toReference);
             Volume from = fromReference == null ? null : store.openVolume(fromReference)) {
            Changes.ChangeSet changes = fromReference == null
                    ? Changes.fromEmpty(store, toReference)
                    : Changes.between(store, fromReference, toReference);
            DiffStream.Header header = new DiffStream.Header(to.sizeBytes(), store.storeId(), System.currentTimeMillis(),
                    changes.from() == null ? null : DiffStream.Identity.of(changes.from()),
                    DiffStream.Identity.of(changes.to()));
            DiffStreamWriter writer = new DiffStreamWriter(out, header);
            long covered = 0;
            for (Changes.ChangedRange range : changes.ranges()) {
                if (from == null) {
                    writer.zero(covered, range.offsetBytes() - covered); // a full stream says where the holes are
                }
                if (range.zero()) {
                    writer.zero(range.offsetBytes(), range.lengthBytes());
                } else {
                    copy(to, range, writer, progress);
                }
                covered = range.offsetBytes() + range.lengthBytes();
                progress.accept(covered);
            }
            if (from == null) {
                writer.zero(covered, to.sizeBytes() - covered);
            }
            DiffStream.Summary summary = writer.end();
            progress.accept(to.sizeBytes());
            return summary;
        }
    }

    /** Reads a changed range in chunks and writes its non-zero blocks as DATA, its zero blocks as ZERO. */
    private static void copy(Volume to, Changes.ChangedRange range, DiffStreamWriter writer, LongConsumer progress)
            throws IOException {
        ByteBuffer chunk = ByteBuffer.allocate(CHUNK_BYTES);
        long end = range.offsetBytes() + range.lengthBytes();
        for (long offset = range.offsetBytes(); offset < end; offset += chunk.limit()) {
            chunk.clear().limit((int) Math.min(CHUNK_BYTES, end - offset));
            to.read(offset, chunk);
            chunk.flip();
            int blocks = (chunk.limit() + Layout.BLOCK_BYTES - 1) / Layout.BLOCK_BYTES;
            int runStart = 0;
            boolean runZero = isZero(chunk, 0);
            for (int block = 1; block <= blocks; block++) {
                boolean zero = block < blocks && isZero(chunk, block * Layout.BLOCK_BYTES);
                if (block == blocks || zero != runZero) {
                    int start = runStart * Layout.BLOCK_BYTES;
                    int stop = Math.min(block * Layout.BLOCK_BYTES, chunk.limit());
                    emit(writer, offset + start, chunk.slice(start, stop - start), runZero);
                    runStart = block;
                    runZero = zero;
                }
            }
            progress.accept(offset + chunk.limit());
        }
    }

    private static void emit(DiffStreamWriter writer, long offset, ByteBuffer run, boolean zero) throws IOException {
        if (zero) {
            writer.zero(offset, run.remaining());
        } else {
            writer.data(offset, run);
        }
    }

    private static boolean isZero(ByteBuffer chunk, int position) {
        int length = Math.min(Layout.BLOCK_BYTES, chunk.limit() - position);
        return chunk.slice(position, length).mismatch(ZERO_BLOCK.slice(0, length)) < 0;
    }
}
