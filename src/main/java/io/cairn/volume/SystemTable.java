package io.cairn.volume;

import io.cairn.alloc.SpaceMap;
import io.cairn.format.BlockHeader;
import io.cairn.format.Layout;
import io.cairn.format.Pointer;
import io.cairn.format.Superblock;
import io.cairn.format.TablePageCodec;
import io.cairn.io.BlockDevice;
import io.cairn.io.CorruptionException;
import io.cairn.tree.LeafKind;
import io.cairn.tree.RootRef;
import io.cairn.tree.TreeSpace;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.function.Consumer;

/**
 * One system table (extents, VDIs or snapshots) kept whole in memory and stored as pages of
 * fixed-size records under a radix tree whose leaves name the pages. A commit writes each
 * changed page to a new block and updates the tree copy-on-write, like any other tree.
 * Not thread-safe: used under the store's metadata lock.
 */
final class SystemTable {

    /** Writes entry {@code entry} at {@code offset} of a page image, or leaves it zero if empty. */
    @FunctionalInterface
    interface EntryEncoder {
        void encode(ByteBuffer page, int offset, long entry);
    }

    /** Reads entry {@code entry} from a verified page. */
    @FunctionalInterface
    interface EntryDecoder {
        void decode(ByteBuffer page, int offset, long pageBlock, long entry);
    }

    /** A page image to write at commit. */
    record PageWrite(long block, ByteBuffer image) {
    }

    private final TablePageCodec.Kind kind;
    private RootRef ref;
    private final BitSet dirtyPages = new BitSet();

    SystemTable(TablePageCodec.Kind kind, Superblock.TableRoot root) {
        this.kind = kind;
        this.ref = new RootRef(root.rootBlock(), root.height());
    }

    Superblock.TableRoot root() {
        return new Superblock.TableRoot(ref.root(), ref.height());
    }

    RootRef rootRef() {
        return ref;
    }

    TablePageCodec.Kind kind() {
        return kind;
    }

    /** Takes the table tree another node committed (shared mode); this node's changed entries stay marked. */
    void rebase(Superblock.TableRoot durableRoot) {
        this.ref = new RootRef(durableRoot.rootBlock(), durableRoot.height());
    }

    void markDirty(long entry) {
        dirtyPages.set(Math.toIntExact(entry / kind.recordsPerPage()));
    }

    boolean isDirty() {
        return !dirtyPages.isEmpty();
    }

    /**
     * Reads every page. A damaged page is reported to {@code damaged} and skipped (its entries are
     * missing); damage in the table's tree ends the walk there.
     */
    void load(TreeSpace trees, BlockDevice device, EntryDecoder decoder, Consumer<CorruptionException> damaged) {
        int perPage = kind.recordsPerPage();
        ByteBuffer page = BlockHeader.newImage();
        try {
            trees.forEachMapped(ref.root(), ref.height(), 0, TreeSpace.capacity(ref.height()), (pageIndex, pointer) -> {
                long block = Pointer.blockOf(pointer);
                page.clear();
                device.read(block * Layout.BLOCK_BYTES, page);
                try {
                    TablePageCodec.verify(page, kind, block);
                    for (int r = 0; r < perPage; r++) {
                        decoder.decode(page, kind.offsetOf(r), block, pageIndex * perPage + r);
                    }
                } catch (CorruptionException corruption) {
                    damaged.accept(corruption);
                }
            });
        } catch (CorruptionException corruption) {
            damaged.accept(corruption);
        }
    }

    /** Writes every changed page to a fresh block and points the table tree at it. */
    List<PageWrite> persist(TreeSpace trees, EntryEncoder encoder) {
        List<PageWrite> writes = new ArrayList<>();
        int perPage = kind.recordsPerPage();
        for (int pageIndex = dirtyPages.nextSetBit(0); pageIndex >= 0; pageIndex = dirtyPages.nextSetBit(pageIndex + 1)) {
            while (pageIndex >= TreeSpace.capacity(ref.height())) {
                long grown = ref.root() == 0 ? 0 : trees.growRoot(ref.root(), ref.height());
                ref = new RootRef(grown, ref.height() + 1);
            }
            ByteBuffer image = BlockHeader.newImage();
            for (int r = 0; r < perPage; r++) {
                encoder.encode(image, kind.offsetOf(r), (long) pageIndex * perPage + r);
            }
            long block = trees.space().allocate(SpaceMap.Purpose.METADATA);
            TablePageCodec.seal(image, kind, block, trees.generation());
            long old = trees.exchange(ref, pageIndex, Pointer.writable(block), LeafKind.PAGE);
            if (!Pointer.isHole(old)) {
                trees.release(Pointer.blockOf(old), 0, LeafKind.PAGE);
            }
            writes.add(new PageWrite(block, image));
        }
        dirtyPages.clear();
        return writes;
    }

    /** Every page block and node of the table tree (for the checker). */
    void forEachPage(TreeSpace trees, TreeSpace.MappedVisitor visitor) {
        trees.forEachMapped(ref.root(), ref.height(), 0, TreeSpace.capacity(ref.height()), visitor);
    }
}
