package io.cairn.volume;

import io.cairn.format.BlockHeader;
import io.cairn.format.Layout;
import io.cairn.format.NodeCodec;
import io.cairn.format.Pointer;
import io.cairn.format.Superblock;
import io.cairn.format.TablePageCodec;
import io.cairn.format.VdiRecord;
import io.cairn.io.BlockDevice;
import io.cairn.tree.TreeSpace;

import java.nio.ByteBuffer;

/**
 * Who holds a VDI according to the store's newest durable state, read straight from the device: the
 * superblock, the path of the VDI table's tree to the record's page, the page. No cache, no lock of the
 * store, so a write path may call it. The fence a node falls back on when its lease has lapsed (Store design
 * note 10): a node that takes a disk over commits the record with its own token before it writes anything.
 *
 * <p>The pages it reads may be freed and reused by a commit running meanwhile; such a read fails its checksum
 * or identity check and throws, and the caller must then treat the holder as unknown.
 *
 * @param generation the generation of the superblock read
 * @param node       the holder node id the record names (0: nobody, or no such record)
 * @param token      the fencing token the record carries
 */
record DurableHolder(long generation, long node, long token) {

    /** Reads the holder of VDI {@code vdiId} as of {@code superblock}, the newest durable one read just before. */
    static DurableHolder read(BlockDevice device, Superblock superblock, long vdiId) {
        TablePageCodec.Kind kind = TablePageCodec.Kind.VDIS;
        long pageIndex = vdiId / kind.recordsPerPage();
        Superblock.TableRoot table = superblock.vdiTable();
        DurableHolder nobody = new DurableHolder(superblock.generation(), 0, 0);
        if (pageIndex >= TreeSpace.capacity(table.height())) {
            return nobody;
        }
        long block = table.rootBlock();
        for (int level = table.height(); level >= 1 && block != 0; level--) {
            ByteBuffer image = BlockHeader.newImage();
            device.read(block * Layout.BLOCK_BYTES, image);
            long[] pointers = NodeCodec.decode(image, block, level);
            block = Pointer.blockOf(pointers[TreeSpace.slotAt(pageIndex, level)]);
        }
        if (block == 0) {
            return nobody;
        }
        ByteBuffer page = BlockHeader.newImage();
        device.read(block * Layout.BLOCK_BYTES, page);
        TablePageCodec.verify(page, kind, block);
        VdiRecord record = VdiRecord.decode(page, kind.offsetOf((int) (vdiId % kind.recordsPerPage())), block, vdiId);
        return record == null ? nobody : new DurableHolder(superblock.generation(), record.lockHolder(), record.lockToken());
    }
}
