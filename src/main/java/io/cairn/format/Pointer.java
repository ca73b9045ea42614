package io.cairn.format;

/**
 * A 64-bit radix-tree pointer as the tree code sees it (seed 003 §3.2).
 *
 * <pre>
 * bit 63      read-only link: the target is shared (a hint; the reference counter is the authority)
 * bits 56..62 reserved, zero
 * bits 48..55 header lane of the node that holds the pointer (see NodeCodec); zero in memory
 * bits 0..47  physical block number; 0 is a hole (block 0 is a superblock, never a target)
 * </pre>
 */
public final class Pointer {

    private Pointer() {
    }

    public static final long READ_ONLY_BIT = 1L << 63;
    public static final long BLOCK_MASK = (1L << 48) - 1;
    public static final long HOLE = 0;

    public static long blockOf(long pointer) {
        return pointer & BLOCK_MASK;
    }

    public static boolean isReadOnly(long pointer) {
        return pointer < 0;
    }

    public static boolean isHole(long pointer) {
        return (pointer & BLOCK_MASK) == 0;
    }

    public static long writable(long blockNumber) {
        return blockNumber & BLOCK_MASK;
    }

    public static long readOnly(long blockNumber) {
        return (blockNumber & BLOCK_MASK) | READ_ONLY_BIT;
    }

    /** The same target with the read-only hint set (holes stay holes). */
    public static long markReadOnly(long pointer) {
        return isHole(pointer) ? HOLE : pointer | READ_ONLY_BIT;
    }
}
