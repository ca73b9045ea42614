package io.cairn.format;

import io.cairn.io.CorruptionException;

import java.nio.ByteBuffer;
import java.util.UUID;

/**
 * The commit record of the store. Two slots (blocks 0 and 1); a commit of generation {@code g}
 * writes slot {@code g % 2} after everything it references is durable and flushes it, then writes
 * the same record into the other slot (durable with the next flush). The valid slot with the
 * highest generation is always a consistent store: a torn first write leaves the other slot at the
 * previous commit, and decay of one slot leaves its copy.
 *
 * <pre>
 * offset size field
 *   0    32   BlockHeader (magic CSUP, aux = slot number)
 *  32     8   store signature "BKCAIRN1"
 *  40     8   incompatible feature flags: a reader refuses any bit it does not know
 *  48     8   compatible feature flags: a reader ignores bits it does not know
 *  56     4   block size in bytes (4096)
 *  60     4   extent size in blocks
 *  64     8   store size in blocks
 *  72    16   store UUID (most, least significant)
 *  88     8   next VDI id
 *  96     8   next snapshot id
 * 104     8   extent table root block
 * 112     8   VDI table root block
 * 120     8   snapshot table root block
 * 128     1   extent table height
 * 129     1   VDI table height
 * 130     1   snapshot table height
 * 131     5   reserved, zero
 * 136     8   commit time, milliseconds since the epoch
 * 144     8   sketch stamp: this commit's generation if its writer maintains snapshot sketches, else 0
 * 152  3944   reserved, zero
 * </pre>
 *
 * <p>The sketch stamp is how a reader learns whether the sketch blobs named by snapshot records can be
 * trusted. The feature is compatible, so a writer that does not know it opens the store, carries the
 * flag over and ignores the blob pointers (it may drop them when it rewrites a snapshot page, or a
 * recount that does not know blobs may free their pages). Such a writer encodes the superblock without
 * the stamp (reserved bytes are zero), so a stamp that differs from the generation says: a writer that
 * did not maintain the sketches committed since, and every blob pointer is suspect.
 */
public record Superblock(
        long generation,
        long incompatibleFeatures,
        long compatibleFeatures,
        int extentBlocks,
        long storeBlocks,
        UUID storeId,
        long nextVdiId,
        long nextSnapshotId,
        TableRoot extentTable,
        TableRoot vdiTable,
        TableRoot snapshotTable,
        long commitMillis,
        long sketchStamp) {

    /**
     * Incompatible feature bit 0: reference counters are 1 byte wide, 4064 per counter block, at most 255
     * ({@link CounterEncoding#NARROW}); without it they are 2 bytes wide, 2032 per block, at most 65535.
     */
    public static final long FEATURE_NARROW_COUNTERS = 1L;

    /** Incompatible features this code understands. */
    public static final long KNOWN_INCOMPATIBLE_FEATURES = FEATURE_NARROW_COUNTERS;

    /**
     * Compatible feature bit 0: snapshot records may name sketch blobs (offset 56), valid only while the
     * sketch stamp equals the generation.
     */
    public static final long FEATURE_SNAPSHOT_SKETCHES = 1L;

    /** A superblock without a sketch stamp. */
    public Superblock(long generation, long incompatibleFeatures, long compatibleFeatures, int extentBlocks,
                      long storeBlocks, UUID storeId, long nextVdiId, long nextSnapshotId, TableRoot extentTable,
                      TableRoot vdiTable, TableRoot snapshotTable, long commitMillis) {
        this(generation, incompatibleFeatures, compatibleFeatures, extentBlocks, storeBlocks, storeId, nextVdiId,
                nextSnapshotId, extentTable, vdiTable, snapshotTable, commitMillis, 0);
    }

    /** How this store's counter blocks encode their counters (incompatible feature bit 0). */
    public CounterEncoding counterEncoding() {
        return CounterEncoding.of(incompatibleFeatures);
    }

    /** True if the snapshot records' sketch blob pointers were maintained by the writer of this commit. */
    public boolean sketchesTrusted() {
        return (compatibleFeatures & FEATURE_SNAPSHOT_SKETCHES) != 0 && sketchStamp == generation;
    }

    /** This commit as written by a writer that maintains sketch blobs: the feature bit, and the stamp. */
    public Superblock withSketchesMaintained() {
        return new Superblock(generation, incompatibleFeatures, compatibleFeatures | FEATURE_SNAPSHOT_SKETCHES,
                extentBlocks, storeBlocks, storeId, nextVdiId, nextSnapshotId, extentTable, vdiTable, snapshotTable,
                commitMillis, generation);
    }

    /** Root block and height of one table tree; root 0 means the table is empty. */
    public record TableRoot(long rootBlock, int height) {
        public static final TableRoot EMPTY = new TableRoot(0, 1);
    }

    private static final int SIGNATURE = 32;
    private static final int INCOMPATIBLE = 40;
    private static final int COMPATIBLE = 48;
    private static final int BLOCK_SIZE = 56;
    private static final int EXTENT_BLOCKS = 60;
    private static final int STORE_BLOCKS = 64;
    private static final int UUID_MOST = 72;
    private static final int UUID_LEAST = 80;
    private static final int NEXT_VDI = 88;
    private static final int NEXT_SNAPSHOT = 96;
    private static final int EXTENT_ROOT = 104;
    private static final int VDI_ROOT = 112;
    private static final int SNAPSHOT_ROOT = 120;
    private static final int EXTENT_HEIGHT = 128;
    private static final int VDI_HEIGHT = 129;
    private static final int SNAPSHOT_HEIGHT = 130;
    private static final int COMMIT_MILLIS = 136;
    private static final int SKETCH_STAMP = 144;

    /** The slot a commit of {@code generation} writes first (and flushes). */
    public static long slotFor(long generation) {
        return generation % 2 == 0 ? Layout.SUPERBLOCK_SLOT_A : Layout.SUPERBLOCK_SLOT_B;
    }

    /** The slot that receives a copy of the commit afterwards, durable with the next flush. */
    public static long otherSlot(long generation) {
        return slotFor(generation + 1);
    }

    public int extentCount() {
        return (int) (storeBlocks / extentBlocks);
    }

    public Superblock withCommit(long newGeneration, long newNextVdiId, long newNextSnapshotId,
                                 TableRoot newExtents, TableRoot newVdis, TableRoot newSnapshots, long millis) {
        return new Superblock(newGeneration, incompatibleFeatures, compatibleFeatures, extentBlocks, storeBlocks, storeId,
                newNextVdiId, newNextSnapshotId, newExtents, newVdis, newSnapshots, millis);
    }

    /** The image for this commit's own slot. */
    public ByteBuffer encode() {
        return encodeFor(slotFor(generation));
    }

    /** The image for {@code slot} (the header names the block it is written to). */
    public ByteBuffer encodeFor(long slot) {
        ByteBuffer image = BlockHeader.newImage();
        image.putLong(SIGNATURE, Layout.STORE_SIGNATURE);
        image.putLong(INCOMPATIBLE, incompatibleFeatures);
        image.putLong(COMPATIBLE, compatibleFeatures);
        image.putInt(BLOCK_SIZE, Layout.BLOCK_BYTES);
        image.putInt(EXTENT_BLOCKS, extentBlocks);
        image.putLong(STORE_BLOCKS, storeBlocks);
        image.putLong(UUID_MOST, storeId.getMostSignificantBits());
        image.putLong(UUID_LEAST, storeId.getLeastSignificantBits());
        image.putLong(NEXT_VDI, nextVdiId);
        image.putLong(NEXT_SNAPSHOT, nextSnapshotId);
        image.putLong(EXTENT_ROOT, extentTable.rootBlock());
        image.putLong(VDI_ROOT, vdiTable.rootBlock());
        image.putLong(SNAPSHOT_ROOT, snapshotTable.rootBlock());
        image.put(EXTENT_HEIGHT, (byte) extentTable.height());
        image.put(VDI_HEIGHT, (byte) vdiTable.height());
        image.put(SNAPSHOT_HEIGHT, (byte) snapshotTable.height());
        image.putLong(COMMIT_MILLIS, commitMillis);
        image.putLong(SKETCH_STAMP, sketchStamp);
        BlockHeader.seal(image, Layout.MAGIC_SUPERBLOCK, slot, generation, (int) slot);
        return image;
    }

    /** True if the block at least claims to be a Cairn superblock (for "is this a store?" messages). */
    public static boolean hasSignature(ByteBuffer image) {
        return image.order(java.nio.ByteOrder.LITTLE_ENDIAN).getInt(Layout.HEADER_MAGIC) == Layout.MAGIC_SUPERBLOCK
                && image.getLong(SIGNATURE) == Layout.STORE_SIGNATURE;
    }

    /**
     * Decodes a slot image, verifying header, signature, geometry and feature flags.
     *
     * @throws CorruptionException if the slot is damaged or not a superblock
     * @throws UnsupportedFormatException if the store needs features this code does not have
     */
    public static Superblock decode(ByteBuffer image, long slot) {
        BlockHeader.verify(image, Layout.MAGIC_SUPERBLOCK, slot);
        if (image.getLong(SIGNATURE) != Layout.STORE_SIGNATURE) {
            throw new CorruptionException(slot, "superblock signature is wrong");
        }
        long incompatible = image.getLong(INCOMPATIBLE);
        long unknown = incompatible & ~KNOWN_INCOMPATIBLE_FEATURES;
        if (unknown != 0) {
            throw new UnsupportedFormatException(String.format(
                    "the store uses incompatible features 0x%x that this version of Cairn does not know; upgrade Cairn",
                    unknown));
        }
        int blockBytes = image.getInt(BLOCK_SIZE);
        if (blockBytes != Layout.BLOCK_BYTES) {
            throw new CorruptionException(slot, "block size " + blockBytes + " is not " + Layout.BLOCK_BYTES);
        }
        int extentBlocks = image.getInt(EXTENT_BLOCKS);
        if (extentBlocks < Layout.MIN_EXTENT_BLOCKS || Integer.bitCount(extentBlocks) != 1) {
            throw new CorruptionException(slot, "extent size " + extentBlocks + " blocks is not a power of two >= "
                    + Layout.MIN_EXTENT_BLOCKS);
        }
        long storeBlocks = image.getLong(STORE_BLOCKS);
        if (storeBlocks < extentBlocks || storeBlocks % extentBlocks != 0 || storeBlocks > Pointer.BLOCK_MASK) {
            throw new CorruptionException(slot, "store size " + storeBlocks + " blocks is not a whole number of extents");
        }
        return new Superblock(
                BlockHeader.generation(image),
                incompatible,
                image.getLong(COMPATIBLE),
                extentBlocks,
                storeBlocks,
                new UUID(image.getLong(UUID_MOST), image.getLong(UUID_LEAST)),
                image.getLong(NEXT_VDI),
                image.getLong(NEXT_SNAPSHOT),
                new TableRoot(image.getLong(EXTENT_ROOT), image.get(EXTENT_HEIGHT)),
                new TableRoot(image.getLong(VDI_ROOT), image.get(VDI_HEIGHT)),
                new TableRoot(image.getLong(SNAPSHOT_ROOT), image.get(SNAPSHOT_HEIGHT)),
                image.getLong(COMMIT_MILLIS),
                image.getLong(SKETCH_STAMP));
    }
}
