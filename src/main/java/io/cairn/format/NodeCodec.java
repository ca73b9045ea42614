package io.cairn.format;

import io.cairn.io.CorruptionException;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Encodes a radix node: exactly 512 little-endian 64-bit entries (seed 003 §3.2), no room
 * left for a separate header. Pointers need only 48 bits of block number, so the header rides
 * in the spare bits: byte {@code i} of the node header lives in bits 48..55 of entry {@code i}.
 * The header has the same 32-byte layout as {@link BlockHeader} (magic CNOD, CRC32C of the
 * encoded block with the CRC lane bytes taken as zero, own block number, generation, level in
 * aux, version). Entries 32..511 carry zero lanes; bits 56..62 of every entry are zero.
 */
public final class NodeCodec {

    private NodeCodec() {
    }

    private static final int LANE_SHIFT = 48;
    private static final long LANE_MASK = 0xFFL << LANE_SHIFT;
    private static final long RESERVED_MASK = 0x7FL << 56;

    /** Encodes {@code pointers} (512 in-memory pointers, lanes zero) as a sealed block image. */
    public static ByteBuffer encode(long[] pointers, long blockNumber, long generation, int level) {
        ByteBuffer image = BlockHeader.newImage();
        encodeInto(pointers, blockNumber, generation, level, image);
        return image;
    }

    /**
     * Like {@link #encode}, into {@code image}: bytes [0, 4096) of it from index 0 (a slice of a larger
     * buffer, so that adjacent nodes go to the device in one write), whatever its position.
     */
    public static void encodeInto(long[] pointers, long blockNumber, long generation, int level, ByteBuffer image) {
        if (image.capacity() < Layout.BLOCK_BYTES) {
            throw new IllegalArgumentException("a node image needs " + Layout.BLOCK_BYTES + " bytes, got " + image.capacity());
        }
        image.order(ByteOrder.LITTLE_ENDIAN);
        if (pointers.length != Layout.POINTERS_PER_NODE) {
            throw new IllegalArgumentException("a node has 512 pointers, got " + pointers.length);
        }
        ByteBuffer header = newHeader();
        header.putInt(Layout.HEADER_MAGIC, Layout.MAGIC_NODE);
        header.putLong(Layout.HEADER_BLOCK_NUMBER, blockNumber);
        header.putLong(Layout.HEADER_GENERATION, generation);
        header.putShort(Layout.HEADER_AUX, (short) level);
        header.putShort(Layout.HEADER_VERSION, (short) Layout.FORMAT_VERSION);

        for (int i = 0; i < Layout.POINTERS_PER_NODE; i++) {
            long pointer = pointers[i];
            if ((pointer & (LANE_MASK | RESERVED_MASK)) != 0) {
                throw new IllegalArgumentException("pointer " + i + " has bits outside block number and read-only flag: "
                        + Long.toHexString(pointer));
            }
            long lane = i < Layout.HEADER_BYTES ? (header.get(i) & 0xFFL) << LANE_SHIFT : 0;
            image.putLong(i * 8, pointer | lane);
        }
        // The CRC bytes are header bytes 4..7, i.e. the lanes of entries 4..7, still zero here.
        int crc = crcWithCrcLanesZero(image);
        for (int i = 0; i < 4; i++) {
            int entry = Layout.HEADER_CRC + i;
            long value = image.getLong(entry * 8) & ~LANE_MASK;
            image.putLong(entry * 8, value | ((long) ((crc >>> (8 * i)) & 0xFF) << LANE_SHIFT));
        }
    }

    /**
     * Decodes and verifies a node image read from {@code blockNumber}: magic, checksum, own
     * address, version, expected level, reserved bits.
     *
     * @return the 512 pointers with lanes cleared
     */
    public static long[] decode(ByteBuffer image, long blockNumber, int expectedLevel) {
        image.order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer header = newHeader();
        long[] pointers = new long[Layout.POINTERS_PER_NODE];
        for (int i = 0; i < Layout.POINTERS_PER_NODE; i++) {
            long entry = image.getLong(i * 8);
            if (i < Layout.HEADER_BYTES) {
                header.put(i, (byte) (entry >>> LANE_SHIFT));
            } else if ((entry & LANE_MASK) != 0) {
                throw new CorruptionException(blockNumber, "radix node entry " + i + " has a non-zero header lane");
            }
            if ((entry & RESERVED_MASK) != 0) {
                throw new CorruptionException(blockNumber, "radix node entry " + i + " has reserved bits set");
            }
            pointers[i] = entry & ~LANE_MASK;
        }
        int foundMagic = header.getInt(Layout.HEADER_MAGIC);
        if (foundMagic != Layout.MAGIC_NODE) {
            throw new CorruptionException(blockNumber, "expected a radix node, found magic " + Layout.magicName(foundMagic)
                    + String.format(" (0x%08x)", foundMagic));
        }
        int storedCrc = header.getInt(Layout.HEADER_CRC);
        int actualCrc = crcWithCrcLanesZero(image);
        if (storedCrc != actualCrc) {
            throw new CorruptionException(blockNumber, String.format(
                    "radix node checksum mismatch (stored 0x%08x, computed 0x%08x): torn or damaged write", storedCrc, actualCrc));
        }
        long selfAddress = header.getLong(Layout.HEADER_BLOCK_NUMBER);
        if (selfAddress != blockNumber) {
            throw new CorruptionException(blockNumber, "radix node claims to be block " + selfAddress + ": misdirected write");
        }
        int version = Short.toUnsignedInt(header.getShort(Layout.HEADER_VERSION));
        if (version != Layout.FORMAT_VERSION) {
            throw new CorruptionException(blockNumber, "unsupported radix node version " + version);
        }
        int level = Short.toUnsignedInt(header.getShort(Layout.HEADER_AUX));
        if (expectedLevel > 0 && level != expectedLevel) {
            throw new CorruptionException(blockNumber, "radix node has level " + level + ", expected " + expectedLevel);
        }
        return pointers;
    }

    /** Level stored in a node image, without verification (for scanners that verify separately). */
    public static int levelOf(ByteBuffer image) {
        image.order(ByteOrder.LITTLE_ENDIAN);
        int low = (int) (image.getLong(Layout.HEADER_AUX * 8) >>> LANE_SHIFT) & 0xFF;
        int high = (int) (image.getLong((Layout.HEADER_AUX + 1) * 8) >>> LANE_SHIFT) & 0xFF;
        return low | high << 8;
    }

    /** Generation stored in a node image, without verification. */
    public static long generationOf(ByteBuffer image) {
        image.order(ByteOrder.LITTLE_ENDIAN);
        long generation = 0;
        for (int i = 0; i < 8; i++) {
            long lane = (image.getLong((Layout.HEADER_GENERATION + i) * 8) >>> LANE_SHIFT) & 0xFF;
            generation |= lane << (8 * i);
        }
        return generation;
    }

    /** A node header as gathered from the lanes of entries 0..31 (the node carries no header block). */
    private static ByteBuffer newHeader() {
        return ByteBuffer.allocate(Layout.HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * CRC32C of the image with the lanes of entries 4..7 (the CRC bytes) taken as zero: the bytes before and
     * after those four entries straight from the image, the four entries from a 32-byte copy with the lanes
     * cleared (no copy of the whole block: nodes are encoded and decoded on every leaf copy and cache miss).
     */
    private static int crcWithCrcLanesZero(ByteBuffer image) {
        int crcStart = Layout.HEADER_CRC * 8;
        int crcEnd = (Layout.HEADER_CRC + 4) * 8;
        ByteBuffer lanes = ByteBuffer.allocate(crcEnd - crcStart).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 4; i++) {
            lanes.putLong(i * 8, image.getLong(crcStart + i * 8) & ~LANE_MASK);
        }
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(image.slice(0, crcStart));
        crc.update(lanes);
        crc.update(image.slice(crcEnd, Layout.BLOCK_BYTES - crcEnd));
        return (int) crc.getValue();
    }
}
