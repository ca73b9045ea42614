package io.cairn.format;

import io.cairn.io.CorruptionException;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * A virtual disk image in the VDI table; entry index = VDI id (ids are never reused).
 *
 * <pre>
 * offset size field
 *   0     8   VDI id (0 = empty entry)
 *   8     8   size in bytes
 *  16     8   current root pointer (block number of the root radix node)
 *  24     1   tree height (1..4)
 *  25     1   flags: bit 0 deleted
 *  26     2   name length in bytes
 *  28     4   reserved
 *  32     8   parent snapshot id (0 = created empty, else the snapshot it was cloned from)
 *  40     8   snapshot log head: id of the newest snapshot of this VDI (0 = none)
 *  48     8   created, milliseconds since the epoch
 *  56     8   lock holder node id (0 = none) — single-writer lease for clusters
 *  64     8   lock fencing token of the holder's lease
 *  72    56   reserved, zero
 * 128   128   name, UTF-8
 * </pre>
 */
public record VdiRecord(long id, long sizeBytes, long rootBlock, int height, boolean deleted, String name,
                        long parentSnapshotId, long snapshotLogHead, long createdMillis,
                        long lockHolder, long lockToken) {

    public static final int BYTES = 256;
    public static final int MAX_NAME_BYTES = 128;
    private static final int FLAG_DELETED = 1;

    public VdiRecord withRoot(long newRoot) {
        return new VdiRecord(id, sizeBytes, newRoot, height, deleted, name, parentSnapshotId, snapshotLogHead,
                createdMillis, lockHolder, lockToken);
    }

    public VdiRecord withSnapshotLogHead(long newHead) {
        return new VdiRecord(id, sizeBytes, rootBlock, height, deleted, name, parentSnapshotId, newHead,
                createdMillis, lockHolder, lockToken);
    }

    public VdiRecord asDeleted() {
        return new VdiRecord(id, sizeBytes, 0, height, true, name, parentSnapshotId, snapshotLogHead,
                createdMillis, lockHolder, lockToken);
    }

    public VdiRecord withLock(long holder, long token) {
        return new VdiRecord(id, sizeBytes, rootBlock, height, deleted, name, parentSnapshotId, snapshotLogHead,
                createdMillis, holder, token);
    }

    public void encode(ByteBuffer page, int offset) {
        byte[] nameBytes = name.getBytes(StandardCharsets.UTF_8);
        if (nameBytes.length > MAX_NAME_BYTES) {
            throw new IllegalArgumentException("VDI name longer than " + MAX_NAME_BYTES + " bytes: " + name);
        }
        page.put(offset, new byte[BYTES]);
        page.putLong(offset, id);
        page.putLong(offset + 8, sizeBytes);
        page.putLong(offset + 16, rootBlock);
        page.put(offset + 24, (byte) height);
        page.put(offset + 25, (byte) (deleted ? FLAG_DELETED : 0));
        page.putShort(offset + 26, (short) nameBytes.length);
        page.putLong(offset + 32, parentSnapshotId);
        page.putLong(offset + 40, snapshotLogHead);
        page.putLong(offset + 48, createdMillis);
        page.putLong(offset + 56, lockHolder);
        page.putLong(offset + 64, lockToken);
        page.put(offset + 128, nameBytes);
    }

    /** Decodes the entry at {@code offset}; null for an empty entry. */
    public static VdiRecord decode(ByteBuffer page, int offset, long pageBlock, long expectedId) {
        long id = page.getLong(offset);
        if (id == 0) {
            return null;
        }
        if (id != expectedId) {
            throw new CorruptionException(pageBlock, "VDI entry holds id " + id + " where id " + expectedId + " belongs");
        }
        int height = page.get(offset + 24);
        int nameLength = Short.toUnsignedInt(page.getShort(offset + 26));
        if (height < 1 || height > Layout.MAX_TREE_HEIGHT || nameLength == 0 || nameLength > MAX_NAME_BYTES) {
            throw new CorruptionException(pageBlock, "VDI entry " + id + " has height " + height
                    + " and name length " + nameLength);
        }
        byte[] nameBytes = new byte[nameLength];
        page.get(offset + 128, nameBytes);
        return new VdiRecord(id, page.getLong(offset + 8), page.getLong(offset + 16), height,
                (page.get(offset + 25) & FLAG_DELETED) != 0, new String(nameBytes, StandardCharsets.UTF_8),
                page.getLong(offset + 32), page.getLong(offset + 40), page.getLong(offset + 48),
                page.getLong(offset + 56), page.getLong(offset + 64));
    }
}
