package io.cairn.format;

import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/** CRC32C of a whole metadata block image, computed with the checksum field taken as zero. */
final class Checksums {

    private Checksums() {
    }

    /**
     * CRC32C over {@code image} (exactly one block, position 0) where the four bytes at
     * {@code crcOffset} count as zero, so the stored value can sit inside the block it protects.
     */
    static int blockCrc(ByteBuffer image, int crcOffset) {
        CRC32C crc = new CRC32C();
        ByteBuffer view = image.duplicate().clear();
        view.limit(crcOffset);
        crc.update(view);
        crc.update(new byte[4]);
        view.limit(Layout.BLOCK_BYTES).position(crcOffset + 4);
        crc.update(view);
        return (int) crc.getValue();
    }
}
