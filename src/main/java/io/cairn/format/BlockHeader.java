package io.cairn.format;

import io.cairn.io.CorruptionException;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The 32-byte header that makes a metadata block identify itself (STYLE 4).
 *
 * <pre>
 * offset size field
 *  0     4    magic: the block's type
 *  4     4    CRC32C of the whole block, this field taken as zero
 *  8     8    the block's own block number (detects misdirected writes)
 * 16     8    generation: the commit that wrote it (detects stale slots)
 * 24     2    aux: a type-specific small value (tree level, record size)
 * 26     2    format version
 * 28     4    reserved, zero
 * </pre>
 * Radix nodes carry the same 32 bytes, spread over their pointers' header lane (NodeCodec).
 */
public final class BlockHeader {

    private BlockHeader() {
    }

    /** A fresh zeroed little-endian block image. */
    public static ByteBuffer newImage() {
        return ByteBuffer.allocate(Layout.BLOCK_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Fills in the header of {@code image} (body already written) and its checksum. */
    public static void seal(ByteBuffer image, int magic, long blockNumber, long generation, int aux) {
        image.order(ByteOrder.LITTLE_ENDIAN);
        image.putInt(Layout.HEADER_MAGIC, magic);
        image.putInt(Layout.HEADER_CRC, 0);
        image.putLong(Layout.HEADER_BLOCK_NUMBER, blockNumber);
        image.putLong(Layout.HEADER_GENERATION, generation);
        image.putShort(Layout.HEADER_AUX, (short) aux);
        image.putShort(Layout.HEADER_VERSION, (short) Layout.FORMAT_VERSION);
        image.putInt(28, 0);
        image.putInt(Layout.HEADER_CRC, Checksums.blockCrc(image, Layout.HEADER_CRC));
    }

    /** True if {@code image} carries a valid header of type {@code magic} for {@code blockNumber}. */
    public static boolean isValid(ByteBuffer image, int magic, long blockNumber) {
        return problem(image, magic, blockNumber) == null;
    }

    /**
     * Checks magic, checksum, self-address and version.
     *
     * @throws CorruptionException naming the block and what is wrong
     */
    public static void verify(ByteBuffer image, int magic, long blockNumber) {
        String problem = problem(image, magic, blockNumber);
        if (problem != null) {
            throw new CorruptionException(blockNumber, problem);
        }
    }

    private static String problem(ByteBuffer image, int magic, long blockNumber) {
        image.order(ByteOrder.LITTLE_ENDIAN);
        int foundMagic = image.getInt(Layout.HEADER_MAGIC);
        if (foundMagic != magic) {
            return "expected a " + Layout.magicName(magic) + " block, found magic " + Layout.magicName(foundMagic)
                    + String.format(" (0x%08x)", foundMagic);
        }
        int storedCrc = image.getInt(Layout.HEADER_CRC);
        int actualCrc = Checksums.blockCrc(image, Layout.HEADER_CRC);
        if (storedCrc != actualCrc) {
            return String.format("checksum mismatch (stored 0x%08x, computed 0x%08x): torn or damaged write",
                    storedCrc, actualCrc);
        }
        long selfAddress = image.getLong(Layout.HEADER_BLOCK_NUMBER);
        if (selfAddress != blockNumber) {
            return "block claims to be block " + selfAddress + ": misdirected write";
        }
        int version = Short.toUnsignedInt(image.getShort(Layout.HEADER_VERSION));
        if (version != Layout.FORMAT_VERSION) {
            return "unsupported format version " + version;
        }
        return null;
    }

    public static long generation(ByteBuffer image) {
        return image.order(ByteOrder.LITTLE_ENDIAN).getLong(Layout.HEADER_GENERATION);
    }

    public static int aux(ByteBuffer image) {
        return Short.toUnsignedInt(image.order(ByteOrder.LITTLE_ENDIAN).getShort(Layout.HEADER_AUX));
    }
}
