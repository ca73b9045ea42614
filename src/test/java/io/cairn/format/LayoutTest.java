package io.cairn.format;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.UUID;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Pins the sizes and offsets of docs/FORMAT.md. Each structure is encoded with distinct field values
 * and read back at the offsets the document gives, so the document and the codecs cannot drift apart.
 */
class LayoutTest {

    @Test
    void blockHeaderAndConstants() {
        assertEquals(4096, Layout.BLOCK_BYTES);
        assertEquals(1 << Layout.BLOCK_SHIFT, Layout.BLOCK_BYTES);
        assertEquals(32, Layout.HEADER_BYTES);
        assertEquals(0, Layout.HEADER_MAGIC);
        assertEquals(4, Layout.HEADER_CRC);
        assertEquals(8, Layout.HEADER_BLOCK_NUMBER);
        assertEquals(16, Layout.HEADER_GENERATION);
        assertEquals(24, Layout.HEADER_AUX);
        assertEquals(26, Layout.HEADER_VERSION);
        assertEquals(1, Layout.FORMAT_VERSION);
        assertEquals(0, Layout.SUPERBLOCK_SLOT_A);
        assertEquals(1, Layout.SUPERBLOCK_SLOT_B);
        assertEquals(512, Layout.POINTERS_PER_NODE);
        assertEquals(Layout.BLOCK_BYTES, Layout.POINTERS_PER_NODE * Long.BYTES, "a node is exactly one block");
        assertEquals(2032, CounterEncoding.WIDE.countersPerBlock());
        assertEquals(Layout.BLOCK_BYTES, Layout.HEADER_BYTES + 2 * CounterEncoding.WIDE.countersPerBlock());
        assertEquals(65535, CounterEncoding.WIDE.maxCount());
        assertEquals(0, CounterEncoding.WIDE.incompatibleFeature());
        assertEquals(4064, CounterEncoding.NARROW.countersPerBlock());
        assertEquals(Layout.BLOCK_BYTES, Layout.HEADER_BYTES + CounterEncoding.NARROW.countersPerBlock());
        assertEquals(255, CounterEncoding.NARROW.maxCount());
        assertEquals(1, CounterEncoding.NARROW.incompatibleFeature(), "incompatible feature bit 0");
        assertEquals(CounterEncoding.NARROW, CounterEncoding.FOR_NEW_STORES);
        assertEquals(CounterEncoding.WIDE, CounterEncoding.of(0));
        assertEquals(CounterEncoding.NARROW, CounterEncoding.of(1));
        assertEquals(1, Superblock.KNOWN_INCOMPATIBLE_FEATURES);
        assertEquals(65535, Layout.MAX_REFCOUNT);
        assertEquals(256L << 40, Layout.MAX_VDI_BYTES);
        assertEquals(65536, Layout.DEFAULT_EXTENT_BLOCKS);
        assertEquals(16384, Layout.SMALL_STORE_EXTENT_BLOCKS);
        assertEquals(16384, Layout.defaultExtentBlocks((16L << 30) - 1));
        assertEquals(65536, Layout.defaultExtentBlocks(16L << 30));
        assertEquals(64, Layout.MIN_EXTENT_BLOCKS);
    }

    @Test
    void headerFieldsSitWhereTheTableSays() {
        ByteBuffer image = BlockHeader.newImage();
        BlockHeader.seal(image, Layout.MAGIC_TABLE_PAGE, 0x0102030405060708L, 0x1112131415161718L, 0x2122);
        assertArrayEquals("CTAB".getBytes(StandardCharsets.US_ASCII), bytes(image, 0, 4));
        assertEquals(0x0102030405060708L, image.getLong(8));
        assertEquals(0x1112131415161718L, image.getLong(16));
        assertEquals(0x2122, image.getShort(24));
        assertEquals(1, image.getShort(26));
        assertEquals(0, image.getInt(28));
        assertEquals(image.getInt(4), Checksums.blockCrc(image, 4));
        assertEquals(ByteOrder.LITTLE_ENDIAN, image.order());
    }

    @Test
    void magicNumbersAreFourAsciiBytes() {
        assertEquals(0x50555343, Layout.MAGIC_SUPERBLOCK, "CSUP");
        assertEquals(0x46455243, Layout.MAGIC_REFCOUNT, "CREF");
        assertEquals(0x444F4E43, Layout.MAGIC_NODE, "CNOD");
        assertEquals(0x42415443, Layout.MAGIC_TABLE_PAGE, "CTAB");
        assertEquals("CSUP", Layout.magicName(Layout.MAGIC_SUPERBLOCK));
        ByteBuffer signature = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, Layout.STORE_SIGNATURE);
        assertEquals("BKCAIRN1", new String(signature.array(), StandardCharsets.US_ASCII));
    }

    @Test
    void superblockFieldsSitWhereTheTableSays() {
        UUID id = new UUID(0x0A0B0C0D0E0F1011L, 0x1213141516171819L);
        Superblock superblock = new Superblock(7, 0, 0x55, 256, 4096, id, 9, 10,
                new Superblock.TableRoot(11, 1), new Superblock.TableRoot(12, 2), new Superblock.TableRoot(13, 3), 14);
        ByteBuffer image = superblock.encode();
        assertEquals(Layout.MAGIC_SUPERBLOCK, image.getInt(0));
        assertEquals(1, image.getLong(8), "odd generation: slot B, block 1");
        assertEquals(7, image.getLong(16));
        assertEquals(1, image.getShort(24), "aux = slot");
        assertEquals(Layout.STORE_SIGNATURE, image.getLong(32));
        assertEquals(0, image.getLong(40));
        assertEquals(0x55, image.getLong(48));
        assertEquals(4096, image.getInt(56));
        assertEquals(256, image.getInt(60));
        assertEquals(4096, image.getLong(64));
        assertEquals(0x0A0B0C0D0E0F1011L, image.getLong(72));
        assertEquals(0x1213141516171819L, image.getLong(80));
        assertEquals(9, image.getLong(88));
        assertEquals(10, image.getLong(96));
        assertEquals(11, image.getLong(104));
        assertEquals(12, image.getLong(112));
        assertEquals(13, image.getLong(120));
        assertEquals(1, image.get(128));
        assertEquals(2, image.get(129));
        assertEquals(3, image.get(130));
        assertAllZero(image, 131, 136);
        assertEquals(14, image.getLong(136));
        assertAllZero(image, 144, Layout.BLOCK_BYTES);
        assertEquals(0, Superblock.slotFor(8));
        assertEquals(1, Superblock.slotFor(9));
    }

    @Test
    void recordsFitTheirPages() {
        assertEquals(16, ExtentRecord.BYTES);
        assertEquals(256, VdiRecord.BYTES);
        assertEquals(128, SnapshotRecord.BYTES);
        assertEquals(254, TablePageCodec.Kind.EXTENTS.recordsPerPage());
        assertEquals(15, TablePageCodec.Kind.VDIS.recordsPerPage());
        assertEquals(31, TablePageCodec.Kind.SNAPSHOTS.recordsPerPage());
        for (TablePageCodec.Kind kind : TablePageCodec.Kind.values()) {
            int last = kind.recordsPerPage() - 1;
            assertEquals(Layout.HEADER_BYTES + last * kind.recordBytes, kind.offsetOf(last));
            assertTrue(kind.offsetOf(last) + kind.recordBytes <= Layout.BLOCK_BYTES, kind + " overflows its page");
            assertTrue(kind.offsetOf(last) + 2 * kind.recordBytes > Layout.BLOCK_BYTES, kind + " wastes a record");
        }
        assertEquals(1, TablePageCodec.Kind.EXTENTS.code);
        assertEquals(2, TablePageCodec.Kind.VDIS.code);
        assertEquals(3, TablePageCodec.Kind.SNAPSHOTS.code);
    }

    @Test
    void vdiRecordFieldsSitWhereTheTableSays() {
        ByteBuffer page = BlockHeader.newImage();
        int at = TablePageCodec.Kind.VDIS.offsetOf(14);
        String name = "x".repeat(VdiRecord.MAX_NAME_BYTES);
        new VdiRecord(1, 2, 3, 4, true, name, 5, 6, 7, 8, 9).encode(page, at);
        assertEquals(1, page.getLong(at));
        assertEquals(2, page.getLong(at + 8));
        assertEquals(3, page.getLong(at + 16));
        assertEquals(4, page.get(at + 24));
        assertEquals(1, page.get(at + 25));
        assertEquals(128, page.getShort(at + 26));
        assertAllZero(page, at + 28, at + 32);
        assertEquals(5, page.getLong(at + 32));
        assertEquals(6, page.getLong(at + 40));
        assertEquals(7, page.getLong(at + 48));
        assertEquals(8, page.getLong(at + 56));
        assertEquals(9, page.getLong(at + 64));
        assertAllZero(page, at + 72, at + 128);
        assertArrayEquals(name.getBytes(StandardCharsets.UTF_8), bytes(page, at + 128, 128));
        assertAllZero(page, at + VdiRecord.BYTES, Layout.BLOCK_BYTES);
        assertAllZero(page, 0, at);
        assertThrows(IllegalArgumentException.class,
                () -> new VdiRecord(1, 2, 3, 4, false, name + "y", 5, 6, 7, 8, 9).encode(page, at));
    }

    @Test
    void snapshotRecordFieldsSitWhereTheTableSays() {
        ByteBuffer page = BlockHeader.newImage();
        int at = TablePageCodec.Kind.SNAPSHOTS.offsetOf(30);
        String label = "é".repeat(SnapshotRecord.MAX_LABEL_BYTES / 2);
        new SnapshotRecord(1, 2, 3, 4, 5, 6, 3, true, label).encode(page, at);
        assertEquals(1, page.getLong(at));
        assertEquals(2, page.getLong(at + 8));
        assertEquals(3, page.getLong(at + 16));
        assertEquals(4, page.getLong(at + 24));
        assertEquals(5, page.getLong(at + 32));
        assertEquals(6, page.getLong(at + 40));
        assertEquals(3, page.get(at + 48));
        assertEquals(1, page.get(at + 49));
        assertEquals(64, page.get(at + 50));
        assertAllZero(page, at + 51, at + 64);
        assertArrayEquals(label.getBytes(StandardCharsets.UTF_8), bytes(page, at + 64, 64));
        assertAllZero(page, at + SnapshotRecord.BYTES, Layout.BLOCK_BYTES);
        assertThrows(IllegalArgumentException.class,
                () -> new SnapshotRecord(1, 2, 3, 4, 5, 6, 3, false, label + "x").encode(page, at));
    }

    @Test
    void extentRecordFieldsSitWhereTheTableSays() {
        ByteBuffer page = BlockHeader.newImage();
        int at = TablePageCodec.Kind.EXTENTS.offsetOf(253);
        new ExtentRecord(ExtentRecord.Type.DATA, 0x01020304, 0x05060708090A0B0CL).encode(page, at);
        assertEquals(3, page.get(at));
        assertAllZero(page, at + 1, at + 4);
        assertEquals(0x01020304, page.getInt(at + 4));
        assertEquals(0x05060708090A0B0CL, page.getLong(at + 8));
        assertEquals(Layout.BLOCK_BYTES, at + ExtentRecord.BYTES, "the last extent entry ends the page exactly");
        assertEquals(0, ExtentRecord.Type.FREE.ordinal());
        assertEquals(1, ExtentRecord.Type.SYSTEM.ordinal());
        assertEquals(2, ExtentRecord.Type.METADATA.ordinal());
        assertEquals(3, ExtentRecord.Type.DATA.ordinal());
    }

    @Test
    void counterBlockHoldsCountersAfterTheHeader() {
        char[] counters = new char[4096];
        for (int i = 0; i < counters.length; i++) {
            counters[i] = (char) (i * 7 + 1);
        }
        ByteBuffer image = RefcountBlockCodec.encode(CounterEncoding.WIDE, counters, 2032, 42, 3, 1);
        assertEquals(Layout.MAGIC_REFCOUNT, image.getInt(0));
        assertEquals(1, BlockHeader.aux(image));
        for (int i = 0; i < 2032; i++) {
            assertEquals(counters[2032 + i], image.getChar(32 + 2 * i));
        }
        ByteBuffer partial = RefcountBlockCodec.encode(CounterEncoding.WIDE, counters, 4064, 42, 3, 0);
        assertEquals(counters[4095], partial.getChar(32 + 2 * 31));
        assertAllZero(partial, 32 + 2 * 32, Layout.BLOCK_BYTES);
    }

    @Test
    void narrowCounterBlockHoldsOneBytePerCounterAfterTheHeader() {
        char[] counters = new char[8192];
        for (int i = 0; i < counters.length; i++) {
            counters[i] = (char) ((i * 7 + 1) & 0xFF);
        }
        ByteBuffer image = RefcountBlockCodec.encode(CounterEncoding.NARROW, counters, 4064, 42, 3, 1);
        assertEquals(Layout.MAGIC_REFCOUNT, image.getInt(0));
        assertEquals(1, BlockHeader.aux(image));
        assertEquals(1, image.getShort(26), "format version 1: the encoding is a superblock feature, not a version");
        for (int i = 0; i < 4064; i++) {
            assertEquals(counters[4064 + i], image.get(32 + i) & 0xFF);
        }
        ByteBuffer partial = RefcountBlockCodec.encode(CounterEncoding.NARROW, counters, 8128, 42, 3, 0);
        assertEquals(counters[8191], partial.get(32 + 63) & 0xFF);
        assertAllZero(partial, 32 + 64, Layout.BLOCK_BYTES);
        char[] tooHigh = new char[4064];
        tooHigh[17] = 256;
        IllegalStateException refused = assertThrows(IllegalStateException.class,
                () -> RefcountBlockCodec.encode(CounterEncoding.NARROW, tooHigh, 0, 42, 3, 0));
        assertTrue(refused.getMessage().contains("counter 17 of counter block 42 is 256, above the 255"), refused.getMessage());
    }

    @Test
    void nodeHeaderRidesInBits48To55() {
        long[] pointers = new long[Layout.POINTERS_PER_NODE];
        for (int i = 0; i < pointers.length; i++) {
            pointers[i] = (i % 3 == 0 ? Pointer.READ_ONLY_BIT : 0) | (1000L + i);
        }
        ByteBuffer image = NodeCodec.encode(pointers, 0x0000123456789ABCL, 0x0102030405060708L, 3);
        assertEquals(Layout.BLOCK_BYTES, image.capacity());
        ByteBuffer header = ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 32; i++) {
            header.put(i, (byte) FormatImages.nodeHeaderByte(image, i));
        }
        assertEquals(Layout.MAGIC_NODE, header.getInt(0));
        assertEquals(0x0000123456789ABCL, header.getLong(8));
        assertEquals(0x0102030405060708L, header.getLong(16));
        assertEquals(3, header.getShort(24));
        assertEquals(1, header.getShort(26));
        assertEquals(0, header.getInt(28));
        for (int i = 0; i < pointers.length; i++) {
            long entry = image.getLong(i * 8);
            assertEquals(pointers[i], entry & ~(0xFFL << 48), "entry " + i + " keeps block number and read-only bit");
            assertEquals(0, entry & (0x7FL << 56), "bits 56..62 are zero");
            if (i >= 32) {
                assertEquals(0, (entry >>> 48) & 0xFF, "lanes of entries 32..511 are zero");
            }
        }
        ByteBuffer resealed = FormatImages.copy(image);
        FormatImages.resealNode(resealed);
        assertEquals(image, resealed, "the checksum follows the documented rule");
        assertEquals(3, NodeCodec.levelOf(image));
        assertEquals(0x0102030405060708L, NodeCodec.generationOf(image));
    }

    @Test
    void pointerBits() {
        assertEquals(1L << 63, Pointer.READ_ONLY_BIT);
        assertEquals((1L << 48) - 1, Pointer.BLOCK_MASK);
        long pointer = Pointer.readOnly(0xFFFF_1234_5678_9ABCL);
        assertEquals(0x1234_5678_9ABCL, Pointer.blockOf(pointer));
        assertTrue(Pointer.isReadOnly(pointer));
        assertTrue(Pointer.isHole(Pointer.HOLE));
        assertEquals(Pointer.HOLE, Pointer.markReadOnly(Pointer.HOLE), "a hole stays a hole");
        assertThrows(IllegalArgumentException.class, () -> {
            long[] pointers = new long[Layout.POINTERS_PER_NODE];
            pointers[5] = 1L << 56;
            NodeCodec.encode(pointers, 1, 1, 1);
        });
    }

    @Test
    void treeHeightBySize() {
        long mib = 1L << 20;
        long gib = 1L << 30;
        long tib = 1L << 40;
        assertEquals(1, heightFor(4096));
        assertEquals(1, heightFor(2 * mib));
        assertEquals(2, heightFor(2 * mib + 512));
        assertEquals(2, heightFor(gib));
        assertEquals(3, heightFor(gib + 512));
        assertEquals(3, heightFor(512 * gib));
        assertEquals(4, heightFor(512 * gib + 512));
        assertEquals(4, heightFor(256 * tib));
        assertEquals(4, Layout.MAX_TREE_HEIGHT);
        assertThrows(IllegalArgumentException.class, () -> heightFor(256 * tib + 4096));
    }

    @Test
    void geometryPlacesSuperblocksAndCounterSlots() {
        StoreGeometry small = new StoreGeometry(1024, 256, CounterEncoding.WIDE);
        assertEquals(4, small.extentCount());
        assertEquals(1, small.counterBlocksPerExtent());
        assertEquals(4, small.reservedBlocks(0), "superblocks A, B and one counter block's two slots");
        assertEquals(2, small.reservedBlocks(1));
        assertEquals(2, small.counterSlotBlock(0, 0, 0));
        assertEquals(3, small.counterSlotBlock(0, 0, 1));
        assertEquals(512, small.counterSlotBlock(2, 0, 0));
        assertEquals(513, small.counterSlotBlock(2, 0, 1));

        assertCounterBlocks(new StoreGeometry(4L * 16384, 16384, CounterEncoding.WIDE), 2032, 9); // ceil(16384 / 2032)
        assertCounterBlocks(new StoreGeometry(4L * 16384, 16384, CounterEncoding.NARROW), 4064, 5); // ceil(16384 / 4064)
        assertCounterBlocks(new StoreGeometry(4L * 65536, 65536, CounterEncoding.WIDE), 2032, 33); // ceil(65536 / 2032)
        StoreGeometry standard = new StoreGeometry(4L * Layout.DEFAULT_EXTENT_BLOCKS, Layout.DEFAULT_EXTENT_BLOCKS);
        assertEquals(CounterEncoding.NARROW, standard.counterEncoding());
        assertCounterBlocks(standard, 4064, 17); // ceil(65536 / 4064)
        for (int offset = 0; offset < Layout.DEFAULT_EXTENT_BLOCKS; offset++) {
            assertEquals(offset / 4064, CounterEncoding.NARROW.counterBlockOf(offset));
            assertEquals(offset / 2032, CounterEncoding.WIDE.counterBlockOf(offset));
        }
        assertThrows(IllegalArgumentException.class, () -> new StoreGeometry(1024, 100), "not a power of two");
        assertThrows(IllegalArgumentException.class, () -> new StoreGeometry(1024, 32), "below the minimum");
        assertThrows(IllegalArgumentException.class, () -> new StoreGeometry(256, 256), "one extent");
        assertThrows(IllegalArgumentException.class, () -> new StoreGeometry(1000, 256), "not whole extents");
    }

    /**
     * {@code geometry} (four extents) has {@code r} counter blocks of {@code perBlock} counters per extent, placed
     * as FORMAT.md section 6 says: two slots each, after the superblocks in extent 0.
     */
    private static void assertCounterBlocks(StoreGeometry geometry, int perBlock, int r) {
        long extent3 = 3L * geometry.extentBlocks();
        assertEquals(r, geometry.counterBlocksPerExtent());
        assertEquals(2 + 2 * r, geometry.reservedBlocks(0));
        assertEquals(2 * r, geometry.reservedBlocks(3));
        assertEquals(2 + 2 * (r - 1) + 1, geometry.counterSlotBlock(0, r - 1, 1));
        assertEquals(extent3 + 2 * (r - 1), geometry.counterSlotBlock(3, r - 1, 0));
        assertEquals(r - 1, geometry.counterBlockOf(extent3 + (long) (r - 1) * perBlock));
        assertEquals(r - 2, geometry.counterBlockOf(extent3 + (long) (r - 1) * perBlock - 1));
        assertEquals(r - 1, geometry.counterBlockOf(extent3 + geometry.extentBlocks() - 1), "the last block of an extent");
    }

    private static int heightFor(long bytes) {
        return Layout.treeHeightFor(Layout.blocksFor(bytes));
    }

    private static byte[] bytes(ByteBuffer image, int offset, int length) {
        byte[] bytes = new byte[length];
        image.get(offset, bytes);
        return bytes;
    }

    private static void assertAllZero(ByteBuffer image, int from, int to) {
        for (int i = from; i < to; i++) {
            assertEquals(0, image.get(i), "byte " + i + " must be zero");
        }
    }
}
