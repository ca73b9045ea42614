package io.cairn.format;

import java.nio.ByteBuffer;

/**
 * One slot of a reference-counter block: a {@link BlockHeader} (magic CREF, aux = slot 0 or 1)
 * followed by the counters of the extent range it covers, little-endian unsigned, in the store's
 * {@link CounterEncoding}: 2032 of 16 bits, or 4064 of 8 bits. Each counter block has two slots; a
 * commit writes the slot that does not hold the latest durable version, stamped with the commit's
 * generation. On open the valid slot with the highest generation not above the superblock's is the
 * current one.
 */
public final class RefcountBlockCodec {

    private RefcountBlockCodec() {
    }

    /**
     * The sealed image of the counters {@code counters[firstCounter..]} (as many as the block holds).
     *
     * @throws IllegalStateException if a counter exceeds what the encoding holds: writing it would store a
     *                               different count, so a store that let a counter grow past its format's
     *                               maximum stops before its counters reach the disk
     */
    public static ByteBuffer encode(CounterEncoding encoding, char[] counters, int firstCounter, long blockNumber,
                                    long generation, int slot) {
        ByteBuffer image = BlockHeader.newImage();
        int count = Math.min(encoding.countersPerBlock(), counters.length - firstCounter);
        int max = encoding.maxCount();
        for (int i = 0; i < count; i++) {
            char counter = counters[firstCounter + i];
            if (counter > max) {
                throw new IllegalStateException("counter " + i + " of counter block " + blockNumber + " is "
                        + (int) counter + ", above the " + max + " the store's counters hold");
            }
            if (encoding == CounterEncoding.WIDE) {
                image.putChar(Layout.HEADER_BYTES + 2 * i, counter);
            } else {
                image.put(Layout.HEADER_BYTES + i, (byte) counter);
            }
        }
        BlockHeader.seal(image, Layout.MAGIC_REFCOUNT, blockNumber, generation, slot);
        return image;
    }

    /** Copies the counters of a verified slot image into {@code counters} from {@code firstCounter}. */
    public static void decodeInto(CounterEncoding encoding, ByteBuffer image, char[] counters, int firstCounter) {
        int count = Math.min(encoding.countersPerBlock(), counters.length - firstCounter);
        for (int i = 0; i < count; i++) {
            counters[firstCounter + i] = encoding == CounterEncoding.WIDE
                    ? image.getChar(Layout.HEADER_BYTES + 2 * i)
                    : (char) Byte.toUnsignedInt(image.get(Layout.HEADER_BYTES + i));
        }
    }
}
