package io.cairn.format;

import io.cairn.io.CorruptionException;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A snapshot's sketch blob: a payload of bytes in a chain of metadata pages, named by the snapshot
 * record (offset 56). Each page identifies itself like every metadata block and also names the snapshot
 * it belongs to and its place in the chain, so a pointer to a reused or misdirected block, or a chain
 * that loops, is caught on reading.
 *
 * <pre>
 * page:
 * offset size field
 *   0    32   BlockHeader (magic CSKB, aux 0)
 *  32     8   snapshot id the blob belongs to
 *  40     8   next page of the chain (0 = last); a reference, counted like a pointer
 *  48     4   index of this page in the chain (0 = first)
 *  52     4   payload bytes in this page, 1..4032 (the last page may be partly used)
 *  56     8   reserved, zero
 *  64  4032   payload bytes, unused tail zero
 *
 * payload (the concatenation of the pages' payload bytes), version 1:
 *   0     4   payload version: 1
 *   4     4   reserved, zero
 *   8     8   base snapshot id: the deltas are relative to this snapshot's content (0 = to nothing)
 *  16     8   blocks added: exact number of data blocks in the snapshot and not in the base
 *  24     8   blocks removed: exact number of data blocks in the base and not in the snapshot
 *  32     4   length a of the added sketch
 *  36     4   length r of the removed sketch
 *  40     a   added sketch: an Apache DataSketches compact theta sketch (serial version 3, seed 9001) of the
 *             added data block numbers, each hashed as the 64-bit value {@code update(long)} hashes
 *  40+a   r   removed sketch: the same, of the removed data block numbers
 * </pre>
 * The format package only carries the sketch bytes; the volume layer builds and reads them.
 */
public final class SketchBlobCodec {

    public static final int SNAPSHOT_ID = 32;
    public static final int NEXT_PAGE = 40;
    public static final int PAGE_INDEX = 48;
    public static final int PAYLOAD_LENGTH = 52;
    public static final int PAYLOAD = 64;
    public static final int PAYLOAD_PER_PAGE = Layout.BLOCK_BYTES - PAYLOAD;

    public static final int PAYLOAD_VERSION = 1;
    private static final int PAYLOAD_HEADER = 40;
    /** A blob larger than this is refused as corrupt (about 64 MiB: far above a sketch of 2^16 entries). */
    public static final int MAX_PAGES = 16384;

    private SketchBlobCodec() {
    }

    /** The decoded payload of a blob. */
    public record Blob(long snapshotId, long baseSnapshotId, long addedBlocks, long removedBlocks,
                       byte[] addedSketch, byte[] removedSketch) {

        public byte[] payload() {
            ByteBuffer payload = ByteBuffer.allocate(PAYLOAD_HEADER + addedSketch.length + removedSketch.length)
                    .order(java.nio.ByteOrder.LITTLE_ENDIAN);
            payload.putInt(0, PAYLOAD_VERSION);
            payload.putLong(8, baseSnapshotId);
            payload.putLong(16, addedBlocks);
            payload.putLong(24, removedBlocks);
            payload.putInt(32, addedSketch.length);
            payload.putInt(36, removedSketch.length);
            payload.put(PAYLOAD_HEADER, addedSketch);
            payload.put(PAYLOAD_HEADER + addedSketch.length, removedSketch);
            return payload.array();
        }

        /** Decodes a payload read from the chain starting at {@code firstPage}. */
        public static Blob fromPayload(long snapshotId, byte[] bytes, long firstPage) {
            ByteBuffer payload = ByteBuffer.wrap(bytes).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            if (bytes.length < PAYLOAD_HEADER || payload.getInt(0) != PAYLOAD_VERSION) {
                throw new CorruptionException(firstPage, "sketch blob of snapshot " + snapshotId + " has payload version "
                        + (bytes.length < 4 ? "?" : payload.getInt(0)) + " and " + bytes.length + " bytes");
            }
            int addedLength = payload.getInt(32);
            int removedLength = payload.getInt(36);
            if (addedLength < 0 || removedLength < 0 || (long) PAYLOAD_HEADER + addedLength + removedLength != bytes.length) {
                throw new CorruptionException(firstPage, "sketch blob of snapshot " + snapshotId + " claims sketches of "
                        + addedLength + " and " + removedLength + " bytes in a payload of " + bytes.length);
            }
            return new Blob(snapshotId, payload.getLong(8), payload.getLong(16), payload.getLong(24),
                    Arrays.copyOfRange(bytes, PAYLOAD_HEADER, PAYLOAD_HEADER + addedLength),
                    Arrays.copyOfRange(bytes, PAYLOAD_HEADER + addedLength, bytes.length));
        }
    }

    /** Pages needed for a payload of {@code payloadBytes}. */
    public static int pagesFor(int payloadBytes) {
        return Math.max(1, (payloadBytes + PAYLOAD_PER_PAGE - 1) / PAYLOAD_PER_PAGE);
    }

    /** The page images of a chain holding {@code payload} in {@code pages} (as many as {@link #pagesFor}). */
    public static List<ByteBuffer> encode(long snapshotId, byte[] payload, long[] pages, long generation) {
        if (pages.length != pagesFor(payload.length)) {
            throw new IllegalArgumentException(payload.length + " payload bytes need " + pagesFor(payload.length)
                    + " pages, got " + pages.length);
        }
        List<ByteBuffer> images = new ArrayList<>(pages.length);
        for (int index = 0; index < pages.length; index++) {
            int from = index * PAYLOAD_PER_PAGE;
            int length = Math.min(PAYLOAD_PER_PAGE, payload.length - from);
            ByteBuffer image = BlockHeader.newImage();
            image.putLong(SNAPSHOT_ID, snapshotId);
            image.putLong(NEXT_PAGE, index + 1 < pages.length ? pages[index + 1] : 0);
            image.putInt(PAGE_INDEX, index);
            image.putInt(PAYLOAD_LENGTH, length);
            image.put(PAYLOAD, payload, from, length);
            BlockHeader.seal(image, Layout.MAGIC_SKETCH_BLOB, pages[index], generation, 0);
            images.add(image);
        }
        return images;
    }

    /** One verified page: where the chain goes on, and this page's payload bytes. */
    public record Page(long nextPage, byte[] payload) {
    }

    /**
     * Verifies a page image read from {@code block} as page {@code index} of snapshot {@code snapshotId}'s
     * blob: header (magic, CRC, self-address, version), owner, index, payload length and next page.
     */
    public static Page decodePage(ByteBuffer image, long block, long snapshotId, int index) {
        BlockHeader.verify(image, Layout.MAGIC_SKETCH_BLOB, block);
        long owner = image.getLong(SNAPSHOT_ID);
        if (owner != snapshotId) {
            throw new CorruptionException(block, "sketch blob page of snapshot " + owner + " where snapshot "
                    + snapshotId + "'s was expected");
        }
        int foundIndex = image.getInt(PAGE_INDEX);
        if (foundIndex != index) {
            throw new CorruptionException(block, "sketch blob page " + foundIndex + " where page " + index
                    + " of the chain was expected");
        }
        int length = image.getInt(PAYLOAD_LENGTH);
        long next = image.getLong(NEXT_PAGE);
        if (length < 1 || length > PAYLOAD_PER_PAGE || (next != 0 && length != PAYLOAD_PER_PAGE)
                || next < 0 || next > Pointer.BLOCK_MASK) {
            throw new CorruptionException(block, "sketch blob page holds " + length + " payload bytes and names next page "
                    + next);
        }
        byte[] payload = new byte[length];
        image.get(PAYLOAD, payload);
        return new Page(next, payload);
    }

    /** The payload of a whole chain, given the page images in order (as {@link #decodePage} returns them). */
    public static byte[] join(List<Page> pages) {
        int total = 0;
        for (Page page : pages) {
            total += page.payload().length;
        }
        byte[] payload = new byte[total];
        int at = 0;
        for (Page page : pages) {
            System.arraycopy(page.payload(), 0, payload, at, page.payload().length);
            at += page.payload().length;
        }
        return payload;
    }
}
