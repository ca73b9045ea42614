package io.cairn.format;

import io.cairn.io.CorruptionException;

import java.nio.ByteBuffer;

/**
 * One extent in the extent catalogue; entry index = extent number.
 *
 * <pre>
 * offset size field
 *  0     1   type: 0 free, 1 system, 2 metadata, 3 data
 *  1     3   reserved, zero
 *  4     4   holder node id (0 = the single local node / none)
 *  8     8   fencing token of the holder's lease
 * </pre>
 * Extent 0 is always system: it holds the superblock slots, and its free blocks hold metadata.
 * A free extent's counter blocks are not initialised; they are written when it is claimed.
 */
public record ExtentRecord(Type type, int holder, long fencingToken) {

    public static final int BYTES = 16;

    public enum Type {
        FREE, SYSTEM, METADATA, DATA;

        /** May radix nodes and table pages be allocated here? */
        public boolean holdsMetadata() {
            return this == SYSTEM || this == METADATA;
        }
    }

    public static final ExtentRecord FREE = new ExtentRecord(Type.FREE, 0, 0);

    public void encode(ByteBuffer page, int offset) {
        page.put(offset, new byte[BYTES]);
        page.put(offset, (byte) type.ordinal());
        page.putInt(offset + 4, holder);
        page.putLong(offset + 8, fencingToken);
    }

    public static ExtentRecord decode(ByteBuffer page, int offset, long pageBlock) {
        int type = page.get(offset);
        if (type < 0 || type >= Type.values().length) {
            throw new CorruptionException(pageBlock, "extent entry has unknown type " + type);
        }
        return new ExtentRecord(Type.values()[type], page.getInt(offset + 4), page.getLong(offset + 8));
    }
}
