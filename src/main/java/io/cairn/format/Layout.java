package io.cairn.format;

/**
 * Fixed numbers of the on-disk format (docs/FORMAT.md is the prose version of this class).
 * Every multi-byte integer on disk is little-endian.
 */
public final class Layout {

    private Layout() {
    }

    /** Bytes in a block: the unit of allocation, of reference counting and of every metadata structure. */
    public static final int BLOCK_BYTES = 4096;
    public static final int BLOCK_SHIFT = 12;

    /** Bytes of the common header at the start of every metadata block except radix nodes. */
    public static final int HEADER_BYTES = 32;

    /** Current format version, written by this code. */
    public static final int FORMAT_VERSION = 1;

    // Common header field offsets (see BlockHeader).
    public static final int HEADER_MAGIC = 0;
    public static final int HEADER_CRC = 4;
    public static final int HEADER_BLOCK_NUMBER = 8;
    public static final int HEADER_GENERATION = 16;
    public static final int HEADER_AUX = 24;
    public static final int HEADER_VERSION = 26;

    /** Superblock slots A and B live in blocks 0 and 1; a commit writes the slot of its generation's parity. */
    public static final long SUPERBLOCK_SLOT_A = 0;
    public static final long SUPERBLOCK_SLOT_B = 1;
    public static final int SUPERBLOCK_BLOCKS = 2;

    /** Pointers in a radix node. */
    public static final int POINTERS_PER_NODE = 512;
    public static final int POINTER_INDEX_BITS = 9;

    /**
     * Largest count of any counter encoding (16-bit counters, {@link CounterEncoding#WIDE}), and of a counter
     * in memory. A store's own limit is its encoding's {@link CounterEncoding#maxCount}; a reference beyond it
     * forces a copy.
     */
    public static final int MAX_REFCOUNT = 0xFFFF;

    /** Deepest radix tree: 4 levels of 512 pointers address 2^36 blocks = 256 TiB. */
    public static final int MAX_TREE_HEIGHT = 4;
    public static final long MAX_VDI_BYTES = 1L << (BLOCK_SHIFT + POINTER_INDEX_BITS * MAX_TREE_HEIGHT);

    /**
     * Default extent: 65536 blocks = 256 MiB. With 1-byte counters its 34 counter slots are 0.052% of it, so a
     * filled store's metadata stays under 0.25% of its data (leaves 0.195%).
     */
    public static final int DEFAULT_EXTENT_BLOCKS = 65536;
    /** Default extent of a store smaller than {@link #SMALL_STORE_BYTES}: 16384 blocks = 64 MiB. */
    public static final int SMALL_STORE_EXTENT_BLOCKS = 16384;
    /**
     * Stores below this size (64 extents of 256 MiB) default to 64 MiB extents, so that a store has at least 64
     * extents unless it is under 4 GiB, as with 64 MiB extents alone: data and metadata never share an extent,
     * and each cluster node allocates in extents of its own and leases spares (at most a sixteenth of the
     * extents), so a smaller store is better served by more, smaller extents than by the 0.009% of its data
     * that larger ones save (counter blocks: 0.061% of the data with 64 MiB extents, 0.052% with 256 MiB).
     */
    public static final long SMALL_STORE_BYTES = 16L << 30;
    /** Smallest extent allowed (tests use small extents to exercise extent boundaries). */
    public static final int MIN_EXTENT_BLOCKS = 64;

    /** Magic numbers: four ASCII bytes read as a little-endian int. */
    public static final int MAGIC_SUPERBLOCK = magic("CSUP");
    public static final int MAGIC_REFCOUNT = magic("CREF");
    public static final int MAGIC_NODE = magic("CNOD");
    public static final int MAGIC_TABLE_PAGE = magic("CTAB");
    public static final int MAGIC_SKETCH_BLOB = magic("CSKB");

    /** Superblock magic bytes 32..39: identifies a Cairn store even before the checksum is verified. */
    public static final long STORE_SIGNATURE = 0x314E5249_41434B42L; // "BKCAIRN1" little-endian

    public static int magic(String fourAsciiChars) {
        if (fourAsciiChars.length() != 4) {
            throw new IllegalArgumentException("magic must have 4 characters: " + fourAsciiChars);
        }
        return (fourAsciiChars.charAt(0) & 0xFF)
                | (fourAsciiChars.charAt(1) & 0xFF) << 8
                | (fourAsciiChars.charAt(2) & 0xFF) << 16
                | (fourAsciiChars.charAt(3) & 0xFF) << 24;
    }

    public static String magicName(int magic) {
        StringBuilder name = new StringBuilder(4);
        for (int i = 0; i < 4; i++) {
            int c = (magic >>> (8 * i)) & 0xFF;
            name.append(c >= 32 && c < 127 ? (char) c : '?');
        }
        return name.toString();
    }

    /** The extent size, in blocks, a store of {@code storeBytes} gets when none is given. */
    public static int defaultExtentBlocks(long storeBytes) {
        return storeBytes < SMALL_STORE_BYTES ? SMALL_STORE_EXTENT_BLOCKS : DEFAULT_EXTENT_BLOCKS;
    }

    /** Height of the radix tree needed to address {@code blocks} blocks (at least 1). */
    public static int treeHeightFor(long blocks) {
        int height = 1;
        while (height < MAX_TREE_HEIGHT && blocks > (1L << (POINTER_INDEX_BITS * height))) {
            height++;
        }
        if (blocks > (1L << (POINTER_INDEX_BITS * height))) {
            throw new IllegalArgumentException("a virtual disk of " + blocks + " blocks exceeds the maximum of "
                    + (1L << (POINTER_INDEX_BITS * MAX_TREE_HEIGHT)) + " blocks (256 TiB)");
        }
        return height;
    }

    public static long blocksFor(long bytes) {
        return (bytes + BLOCK_BYTES - 1) >>> BLOCK_SHIFT;
    }
}
