package io.cairn.format;

import io.cairn.io.BlockDevice;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.zip.CRC32C;

/** Byte-level helpers for format tests: read, damage and re-seal block images. */
final class FormatImages {

    private FormatImages() {
    }

    static ByteBuffer readBlock(BlockDevice device, long block) {
        ByteBuffer image = BlockHeader.newImage();
        device.read(block * Layout.BLOCK_BYTES, image);
        return image.clear();
    }

    static void writeBlock(BlockDevice device, long block, ByteBuffer image) {
        device.write(block * Layout.BLOCK_BYTES, image.duplicate().clear());
    }

    static ByteBuffer copy(ByteBuffer image) {
        ByteBuffer copy = BlockHeader.newImage();
        copy.put(0, image, 0, Layout.BLOCK_BYTES);
        return copy;
    }

    /** Flips bit {@code bitIndex} of the block, counting from bit 0 of byte 0 to bit 7 of byte 4095. */
    static void flipBit(ByteBuffer image, int bitIndex) {
        int offset = bitIndex >>> 3;
        image.put(offset, (byte) (image.get(offset) ^ (1 << (bitIndex & 7))));
    }

    /** Recomputes the checksum of a block with a common header after a test changed its bytes on purpose. */
    static void resealHeader(ByteBuffer image) {
        image.order(ByteOrder.LITTLE_ENDIAN);
        image.putInt(Layout.HEADER_CRC, Checksums.blockCrc(image, Layout.HEADER_CRC));
    }

    /** Header byte {@code index} of a radix node image: bits 48..55 of entry {@code index}. */
    static int nodeHeaderByte(ByteBuffer image, int index) {
        return (int) (image.order(ByteOrder.LITTLE_ENDIAN).getLong(index * 8) >>> 48) & 0xFF;
    }

    static void setNodeHeaderByte(ByteBuffer image, int index, int value) {
        image.order(ByteOrder.LITTLE_ENDIAN);
        long entry = image.getLong(index * 8) & ~(0xFFL << 48);
        image.putLong(index * 8, entry | (long) (value & 0xFF) << 48);
    }

    /**
     * Recomputes a radix node's checksum the way docs/FORMAT.md specifies it, independently of
     * NodeCodec: CRC32C of the 4096 bytes with the lanes of entries 4..7 taken as zero, stored
     * little-endian in those lanes.
     */
    static void resealNode(ByteBuffer image) {
        for (int i = 4; i < 8; i++) {
            setNodeHeaderByte(image, i, 0);
        }
        CRC32C crc = new CRC32C();
        crc.update(image.duplicate().clear());
        int value = (int) crc.getValue();
        for (int i = 0; i < 4; i++) {
            setNodeHeaderByte(image, 4 + i, value >>> (8 * i));
        }
    }

    static String sha256(Path file) {
        try {
            MessageDigest digest = MessageDigest.getInstance("SHA-256");
            return HexFormat.of().formatHex(digest.digest(Files.readAllBytes(file)));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
