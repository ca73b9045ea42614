package io.cairn.format;

import io.cairn.io.CorruptionException;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * A snapshot in the snapshot table; entry index = snapshot id (global, never reused). The
 * records of one VDI form its append-only snapshot log, newest first, through
 * {@code previousSnapshotId}; the VDI record holds the head. A record is written once, except
 * for its label and deleted flag. The root it names is immutable.
 *
 * <pre>
 * offset size field
 *   0     8   snapshot id (0 = empty entry)
 *   8     8   VDI id it was taken of
 *  16     8   root block (0 once deleted)
 *  24     8   previous snapshot id of the same VDI (0 = oldest)
 *  32     8   taken, milliseconds since the epoch
 *  40     8   size of the VDI in bytes when taken
 *  48     1   tree height
 *  49     1   flags: bit 0 deleted
 *  50     1   label length in bytes
 *  51     5   reserved, zero
 *  56     8   first page of the snapshot's sketch blob (0 = none yet); compatible feature
 *             {@link Superblock#FEATURE_SNAPSHOT_SKETCHES}, see {@link SketchBlobCodec}
 *  64    64   label, UTF-8
 * </pre>
 *
 * <p>The sketch blob is a reference like the root: the snapshot record holds one reference to the
 * blob's first page. Deleting the snapshot clears it (the blob is freed with the snapshot).
 */
public record SnapshotRecord(long id, long vdiId, long rootBlock, long previousSnapshotId, long takenMillis,
                             long sizeBytes, int height, boolean deleted, String label, long sketchBlock) {

    public static final int BYTES = 128;
    public static final int MAX_LABEL_BYTES = 64;
    /** Offset of the sketch blob's first page within the record. */
    public static final int SKETCH_BLOCK = 56;
    private static final int FLAG_DELETED = 1;

    /** A record without a sketch blob (as every record of a store without the sketch feature). */
    public SnapshotRecord(long id, long vdiId, long rootBlock, long previousSnapshotId, long takenMillis,
                          long sizeBytes, int height, boolean deleted, String label) {
        this(id, vdiId, rootBlock, previousSnapshotId, takenMillis, sizeBytes, height, deleted, label, 0);
    }

    public SnapshotRecord withLabel(String newLabel) {
        return new SnapshotRecord(id, vdiId, rootBlock, previousSnapshotId, takenMillis, sizeBytes, height, deleted, newLabel,
                sketchBlock);
    }

    public SnapshotRecord withSketchBlock(long block) {
        return new SnapshotRecord(id, vdiId, rootBlock, previousSnapshotId, takenMillis, sizeBytes, height, deleted, label,
                block);
    }

    /** Deleting drops the root and the sketch blob: both references go with the snapshot. */
    public SnapshotRecord asDeleted() {
        return new SnapshotRecord(id, vdiId, 0, previousSnapshotId, takenMillis, sizeBytes, height, true, label, 0);
    }

    public void encode(ByteBuffer page, int offset) {
        byte[] labelBytes = label.getBytes(StandardCharsets.UTF_8);
        if (labelBytes.length > MAX_LABEL_BYTES) {
            throw new IllegalArgumentException("snapshot label longer than " + MAX_LABEL_BYTES + " bytes: " + label);
        }
        page.put(offset, new byte[BYTES]);
        page.putLong(offset, id);
        page.putLong(offset + 8, vdiId);
        page.putLong(offset + 16, rootBlock);
        page.putLong(offset + 24, previousSnapshotId);
        page.putLong(offset + 32, takenMillis);
        page.putLong(offset + 40, sizeBytes);
        page.put(offset + 48, (byte) height);
        page.put(offset + 49, (byte) (deleted ? FLAG_DELETED : 0));
        page.put(offset + 50, (byte) labelBytes.length);
        page.putLong(offset + SKETCH_BLOCK, sketchBlock);
        page.put(offset + 64, labelBytes);
    }

    public static SnapshotRecord decode(ByteBuffer page, int offset, long pageBlock, long expectedId) {
        long id = page.getLong(offset);
        if (id == 0) {
            return null;
        }
        if (id != expectedId) {
            throw new CorruptionException(pageBlock, "snapshot entry holds id " + id + " where id " + expectedId + " belongs");
        }
        int height = page.get(offset + 48);
        int labelLength = Byte.toUnsignedInt(page.get(offset + 50));
        if (height < 1 || height > Layout.MAX_TREE_HEIGHT || labelLength > MAX_LABEL_BYTES) {
            throw new CorruptionException(pageBlock, "snapshot entry " + id + " has height " + height
                    + " and label length " + labelLength);
        }
        byte[] labelBytes = new byte[labelLength];
        page.get(offset + 64, labelBytes);
        return new SnapshotRecord(id, page.getLong(offset + 8), page.getLong(offset + 16), page.getLong(offset + 24),
                page.getLong(offset + 32), page.getLong(offset + 40), height,
                (page.get(offset + 49) & FLAG_DELETED) != 0, new String(labelBytes, StandardCharsets.UTF_8),
                page.getLong(offset + SKETCH_BLOCK));
    }
}
