package io.cairn.format;

import java.nio.ByteBuffer;

/**
 * One slot of a reference-counter block: a {@link BlockHeader} (magic CREF, aux = slot 0 or 1)
 * followed by 2032 little-endian unsigned 16-bit counters, one per block of the extent range it
 * covers. Each counter block has two slots; a commit writes the slot that does not hold the
 * latest durable version, stamped with the commit's generation. On open the valid slot with the
 * highest generation not above the superblock's is the current one.
 */
public final class RefcountBlockCodec {

    private RefcountBlockCodec() {
    }

    public static ByteBuffer encode(char[] counters, int firstCounter, long blockNumber, long generation, int slot) {
        ByteBuffer image = BlockHeader.newImage();
        int count = Math.min(Layout.COUNTERS_PER_REFCOUNT_BLOCK, counters.length - firstCounter);
        for (int i = 0; i < count; i++) {
            image.putChar(Layout.HEADER_BYTES + 2 * i, counters[firstCounter + i]);
        }
        BlockHeader.seal(image, Layout.MAGIC_REFCOUNT, blockNumber, generation, slot);
        return image;
    }

    /** Copies the counters of a verified slot image into {@code counters} from {@code firstCounter}. */
    public static void decodeInto(ByteBuffer image, char[] counters, int firstCounter) {
        int count = Math.min(Layout.COUNTERS_PER_REFCOUNT_BLOCK, counters.length - firstCounter);
        for (int i = 0; i < count; i++) {
            counters[firstCounter + i] = image.getChar(Layout.HEADER_BYTES + 2 * i);
        }
    }
}
