package io.cairn.gc;

import io.cairn.format.BlockHeader;
import io.cairn.format.ExtentRecord;
import io.cairn.format.Layout;
import io.cairn.format.NodeCodec;
import io.cairn.format.Pointer;
import io.cairn.format.SketchBlobCodec;
import io.cairn.format.StoreGeometry;
import io.cairn.format.TablePageCodec;
import io.cairn.io.BlockDevice;
import io.cairn.io.CorruptionException;
import io.cairn.tree.RootRef;
import io.cairn.volume.PinnedRoot;
import io.cairn.volume.Store;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One recount of every reference under a set of roots, compared with a set of counters: the scan of
 * seed 003 §3.4.3, Algorithm 1, shared by the checker ({@link Checker}, inside the store's exclusive
 * hold, against the live counters) and the garbage collector ({@link GarbageCollector}, without any
 * lock, over pinned roots, against a copy of the counters taken at its checkpoint).
 *
 * <p>How. Roots are marked in a reachability bitmap per tree kind and level. Then for each level from
 * the highest down, the marked nodes of that level are scanned in block (disk) order: each is read
 * once from the device and verified, its pointers are counted, and its children are marked at the
 * level below. A node is only ever named by a node one level up, so when a level is scanned all of its
 * nodes are already marked. Data blocks are never read. Memory: a few bits per block for the bitmaps
 * and two bytes per block of held extents for the counts (exact counts at 65,535 and above are kept
 * aside).
 *
 * <p>Threading: one thread; reads only the device and its own structures (the counters it is given
 * must not change while it runs).
 */
final class ReferenceScan {

    /** Tree kinds: 0 = VDI and snapshot trees (leaves are data), 1.. = the system tables. */
    private static final int DATA_TREE = 0;
    private static final TablePageCodec.Kind[] TABLES = TablePageCodec.Kind.values();

    /**
     * A root reference: the tree under it is counted once, the root itself once per root naming it.
     *
     * @param tree        0 for a disk or snapshot tree (leaves are data), 1 + the ordinal of the table kind
     *                    for a system table tree (leaves are table pages)
     * @param description what names the root, for findings
     */
    record Root(RootRef ref, int tree, String description) {
    }

    /**
     * The roots of {@code internals}: live VDIs, live snapshots, the three system tables, and the pins of
     * a garbage collection in progress (each an extra reference to the root it pins).
     */
    static List<Root> rootsOf(Store.Internals internals) {
        List<Root> roots = new ArrayList<>();
        for (Map.Entry<Long, RootRef> vdi : internals.vdiRoots().entrySet()) {
            roots.add(new Root(vdi.getValue(), DATA_TREE, "root of VDI " + vdi.getKey()));
        }
        for (Map.Entry<Long, RootRef> snapshot : internals.snapshotRoots().entrySet()) {
            roots.add(new Root(snapshot.getValue(), DATA_TREE, "root of snapshot " + snapshot.getKey()));
        }
        List<RootRef> tables = internals.tableRoots();
        for (int i = 0; i < tables.size(); i++) {
            if (tables.get(i).root() != 0) {
                roots.add(new Root(tables.get(i), 1 + i, "root of the " + TABLES[i] + " table"));
            }
        }
        for (PinnedRoot pinned : internals.pinnedRoots()) {
            roots.add(new Root(pinned.root(), pinned.table() == null ? DATA_TREE : 1 + pinned.table().ordinal(),
                    "pin held by the garbage collector on " + pinned.description()));
        }
        return roots;
    }

    /** A snapshot's sketch blob: the record references the first page, each page the next. */
    record Blob(long snapshotId, long firstPage) {
    }

    /** The sketch blobs of {@code internals}' live snapshots. */
    static List<Blob> blobsOf(Store.Internals internals) {
        List<Blob> blobs = new ArrayList<>();
        for (Map.Entry<Long, Long> blob : internals.sketchBlobs().entrySet()) {
            blobs.add(new Blob(blob.getKey(), blob.getValue()));
        }
        return blobs;
    }

    private final List<Root> roots;
    private final List<Blob> blobs;
    private final CounterView counters;
    private final StoreGeometry geometry;
    private final BlockDevice device;
    private final TrueCounts counts;
    /** Per tree kind and level: nodes marked reachable (the RMap of Algorithm 1, one per role). */
    private final BlockBitmap[][] marked;
    private final BlockBitmap nodes;
    private final BlockBitmap dataLeaves;
    private final BlockBitmap pageLeaves;
    private final BlockBitmap reportedInvalid;
    private final ByteBuffer image = BlockHeader.newImage();
    private final List<CheckReport.Finding> damage = new ArrayList<>();
    private final List<CheckReport.Finding> leaks = new ArrayList<>();
    private long rootRecords;
    private long nodesScanned;
    private long tablePagesScanned;
    private long dataReferences;
    /** The reference being looked at: a root record, or a slot of a node. */
    private String referrerRoot;
    private long referrerNode;
    private int referrerSlot;
    private int referrerLevel;
    private int referrerTree;

    /**
     * A scan of the trees under {@code roots}, read from {@code device}, to be compared with
     * {@code counters}. The trees must not change while it runs: the caller holds the store's exclusive
     * hold, or has pinned them ({@link Store.Internals#pinLiveRoots()}).
     */
    ReferenceScan(List<Root> roots, List<Blob> blobs, CounterView counters, BlockDevice device) {
        this.roots = List.copyOf(roots);
        this.blobs = List.copyOf(blobs);
        this.counters = counters;
        this.geometry = counters.geometry();
        this.device = device;
        long blocks = geometry.storeBlocks();
        this.counts = new TrueCounts(geometry);
        this.marked = new BlockBitmap[1 + TABLES.length][Layout.MAX_TREE_HEIGHT + 1];
        for (BlockBitmap[] byLevel : marked) {
            for (int level = 1; level <= Layout.MAX_TREE_HEIGHT; level++) {
                byLevel[level] = new BlockBitmap(blocks);
            }
        }
        this.nodes = new BlockBitmap(blocks);
        this.dataLeaves = new BlockBitmap(blocks);
        this.pageLeaves = new BlockBitmap(blocks);
        this.reportedInvalid = new BlockBitmap(blocks);
    }

    /** Marks, scans level by level and compares (Algorithm 1 steps 2 to 6). */
    CheckReport run(CheckReport.Mode mode) {
        markRoots();
        for (int level = Layout.MAX_TREE_HEIGHT; level >= 1; level--) {
            for (int tree = 0; tree < marked.length; tree++) {
                BlockBitmap atLevel = marked[tree][level];
                for (long block = atLevel.nextSetBit(0); block >= 0; block = atLevel.nextSetBit(block + 1)) {
                    scanNode(block, level, tree);
                }
            }
        }
        return compare(mode);
    }

    // ------------------------------------------------------------ marking

    private void markRoots() {
        for (Root root : roots) {
            markRoot(root.ref(), root.tree(), root.description());
        }
        for (Blob blob : blobs) {
            scanSketchBlob(blob.snapshotId(), blob.firstPage());
        }
    }

    /** Counts the references of one sketch blob chain (the record's, then each page's) and checks its pages. */
    private void scanSketchBlob(long snapshotId, long firstPage) {
        rootRecords++;
        referrerRoot = "sketch blob of snapshot " + snapshotId;
        long block = firstPage;
        for (int index = 0; block != 0; index++) {
            if (!valid(block)) {
                return;
            }
            counts.add(block);
            if (pageLeaves.get(block) || nodes.get(block) || dataLeaves.get(block)) {
                damage.add(new CheckReport.Finding(CheckReport.Kind.CONFLICTING_USE, block, -1, -1,
                        "sketch blob page named by " + where() + " is also used elsewhere"));
                return;
            }
            pageLeaves.set(block);
            ExtentRecord.Type type = counters.extentType(geometry.extentOf(block));
            if (!type.holdsMetadata()) {
                damage.add(new CheckReport.Finding(CheckReport.Kind.WRONG_EXTENT_TYPE, block, -1, -1,
                        "sketch blob page named by " + where() + " lies in a " + type + " extent"));
            }
            SketchBlobCodec.Page page;
            try {
                image.clear();
                device.read(block * Layout.BLOCK_BYTES, image);
                page = SketchBlobCodec.decodePage(image, block, snapshotId, index);
                tablePagesScanned++;
            } catch (CorruptionException corrupt) {
                damage.add(new CheckReport.Finding(CheckReport.Kind.CORRUPT_PAGE, block, -1, -1,
                        "sketch blob page named by " + where() + ": " + corrupt.getMessage()
                                + " (the rest of the chain is not counted)"));
                return;
            }
            referrerRoot = "sketch blob page " + index + " (block " + block + ") of snapshot " + snapshotId;
            block = page.nextPage();
        }
    }

    private void markRoot(RootRef root, int tree, String description) {
        rootRecords++;
        referrerRoot = description;
        if (root.height() < 1 || root.height() > Layout.MAX_TREE_HEIGHT) {
            damage.add(new CheckReport.Finding(CheckReport.Kind.BAD_ROOT, root.root(), -1, -1,
                    where() + " has height " + root.height()));
            return;
        }
        if (Pointer.isHole(root.root())) {
            damage.add(new CheckReport.Finding(CheckReport.Kind.BAD_ROOT, root.root(), -1, -1, where() + " is a hole"));
            return;
        }
        if (valid(root.root())) {
            counts.add(root.root());
            markNode(root.root(), root.height(), tree);
        }
    }

    /** Reports a target that cannot be counted (once per block); true if it can. */
    private boolean valid(long block) {
        CheckReport.Kind problem = null;
        if (block < 0 || block >= geometry.storeBlocks()) {
            problem = CheckReport.Kind.OUT_OF_RANGE;
        } else if (counters.isReserved(block)) {
            problem = CheckReport.Kind.REFERENCE_TO_RESERVED;
        } else if (counters.count(block) == 0) {
            problem = CheckReport.Kind.REFERENCE_TO_FREE_BLOCK;
        }
        if (problem == null) {
            return true;
        }
        if (problem == CheckReport.Kind.OUT_OF_RANGE || reportedInvalid.set(block)) {
            damage.add(new CheckReport.Finding(problem, block, -1, -1, "named by " + where()));
        }
        return false;
    }

    private void markNode(long block, int level, int tree) {
        if (marked[tree][level].get(block)) {
            return; // shared subtree: its pointers are counted once
        }
        if (!counters.extentType(geometry.extentOf(block)).holdsMetadata()) {
            damage.add(new CheckReport.Finding(CheckReport.Kind.WRONG_EXTENT_TYPE, block, -1, -1,
                    "level-" + level + " node named by " + where() + " lies in a "
                            + counters.extentType(geometry.extentOf(block)) + " extent"));
        }
        if (nodes.get(block) || dataLeaves.get(block) || pageLeaves.get(block)) {
            damage.add(new CheckReport.Finding(CheckReport.Kind.CONFLICTING_USE, block, -1, -1,
                    "reached as a level-" + level + " node of " + treeName(tree) + " from " + where()
                            + ", and already in another role"));
            return;
        }
        nodes.set(block);
        marked[tree][level].set(block);
    }

    // ------------------------------------------------------------ scanning

    private void scanNode(long block, int level, int tree) {
        long[] pointers;
        try {
            image.clear();
            device.read(block * Layout.BLOCK_BYTES, image);
            pointers = NodeCodec.decode(image, block, level);
        } catch (CorruptionException corrupt) {
            damage.add(new CheckReport.Finding(CheckReport.Kind.CORRUPT_NODE, block, -1, -1,
                    "level-" + level + " node of " + treeName(tree) + ": " + corrupt.getMessage()
                            + " (blocks below it are not counted)"));
            return;
        }
        nodesScanned++;
        referrerRoot = null;
        referrerNode = block;
        referrerLevel = level;
        referrerTree = tree;
        for (int slot = 0; slot < pointers.length; slot++) {
            long pointer = pointers[slot];
            if (Pointer.isHole(pointer)) {
                continue;
            }
            long target = Pointer.blockOf(pointer);
            referrerSlot = slot;
            if (!valid(target)) {
                continue;
            }
            counts.add(target);
            if (level > 1) {
                markNode(target, level - 1, tree);
            } else if (tree == DATA_TREE) {
                markDataLeaf(target);
            } else {
                markPage(target, TABLES[tree - 1]);
            }
        }
    }

    private void markDataLeaf(long block) {
        dataReferences++;
        if (dataLeaves.get(block)) {
            return; // shared data block: every reference counts, one check suffices
        }
        ExtentRecord.Type type = counters.extentType(geometry.extentOf(block));
        if (type != ExtentRecord.Type.DATA) {
            damage.add(new CheckReport.Finding(CheckReport.Kind.WRONG_EXTENT_TYPE, block, -1, -1,
                    "data block named by " + where() + " lies in a " + type + " extent"));
        }
        if (nodes.get(block) || pageLeaves.get(block)) {
            damage.add(new CheckReport.Finding(CheckReport.Kind.CONFLICTING_USE, block, -1, -1,
                    "data block named by " + where() + " is also a node or table page"));
        }
        dataLeaves.set(block);
    }

    private void markPage(long block, TablePageCodec.Kind kind) {
        if (pageLeaves.get(block)) {
            return; // a page shared while a table was pinned: every reference was counted, one check suffices
        }
        ExtentRecord.Type type = counters.extentType(geometry.extentOf(block));
        if (!type.holdsMetadata()) {
            damage.add(new CheckReport.Finding(CheckReport.Kind.WRONG_EXTENT_TYPE, block, -1, -1,
                    kind + " table page named by " + where() + " lies in a " + type + " extent"));
        }
        if (nodes.get(block) || dataLeaves.get(block)) {
            damage.add(new CheckReport.Finding(CheckReport.Kind.CONFLICTING_USE, block, -1, -1,
                    kind + " table page named by " + where() + " is also a node or data block"));
        }
        pageLeaves.set(block);
        try {
            image.clear();
            device.read(block * Layout.BLOCK_BYTES, image);
            TablePageCodec.verify(image, kind, block);
            tablePagesScanned++;
        } catch (CorruptionException corrupt) {
            damage.add(new CheckReport.Finding(CheckReport.Kind.CORRUPT_PAGE, block, -1, -1,
                    kind + " table page named by " + where() + ": " + corrupt.getMessage()));
        }
    }

    /** Where the reference being looked at comes from (built only for a finding). */
    private String where() {
        return referrerRoot != null ? referrerRoot
                : "slot " + referrerSlot + " of level-" + referrerLevel + " node " + referrerNode
                + " (" + treeName(referrerTree) + ")";
    }

    private static String treeName(int tree) {
        return tree == DATA_TREE ? "a disk tree" : "the " + TABLES[tree - 1] + " table";
    }

    // ------------------------------------------------------------ comparing

    private CheckReport compare(CheckReport.Mode mode) {
        long referencesCounted = 0;
        long blocksReferenced = 0;
        long blocksAllocated = 0;
        for (int extent = 0; extent < geometry.extentCount(); extent++) {
            if (counters.extentType(extent) == ExtentRecord.Type.FREE) {
                continue; // no counters; references into it were reported as references to free blocks
            }
            long start = geometry.extentStart(extent);
            int reserved = geometry.reservedBlocks(extent);
            for (int offset = 0; offset < geometry.extentBlocks(); offset++) {
                long block = start + offset;
                long truth = counts.get(block) + (offset < reserved ? 1 : 0);
                int counter = counters.count(block);
                referencesCounted += truth;
                blocksReferenced += truth > 0 ? 1 : 0;
                blocksAllocated += counter > 0 ? 1 : 0;
                if (counter == truth) {
                    continue;
                }
                if (counter < truth) {
                    damage.add(new CheckReport.Finding(CheckReport.Kind.COUNT_TOO_LOW, block, counter, truth,
                            offset < reserved ? "a block the format reserves" : ""));
                } else {
                    leaks.add(new CheckReport.Finding(truth == 0 ? CheckReport.Kind.UNREACHABLE
                            : CheckReport.Kind.COUNT_TOO_HIGH, block, counter, truth, ""));
                }
            }
        }
        return new CheckReport(mode, geometry.storeBlocks(), rootRecords, nodesScanned, tablePagesScanned,
                dataReferences, referencesCounted, blocksReferenced, blocksAllocated, damage, leaks, List.of());
    }


    /**
     * True reference counts, two bytes per block of held extents. A count reaching 0xFFFF is kept
     * exactly in a side map (only blocks shared more than the 16-bit counters allow, or damage, get there).
     */
    private static final class TrueCounts {
        private static final char SATURATED = 0xFFFF;

        private final StoreGeometry geometry;
        private final char[][] byExtent;
        private final Map<Long, Long> large = new HashMap<>();

        TrueCounts(StoreGeometry geometry) {
            this.geometry = geometry;
            this.byExtent = new char[geometry.extentCount()][];
        }

        void add(long block) {
            int extent = geometry.extentOf(block);
            char[] extentCounts = byExtent[extent];
            if (extentCounts == null) {
                extentCounts = new char[geometry.extentBlocks()];
                byExtent[extent] = extentCounts;
            }
            int offset = geometry.offsetInExtent(block);
            char count = extentCounts[offset];
            if (count == SATURATED) {
                large.merge(block, 1L, Long::sum);
            } else if (count == SATURATED - 1) {
                extentCounts[offset] = SATURATED;
                large.put(block, (long) SATURATED);
            } else {
                extentCounts[offset] = (char) (count + 1);
            }
        }

        long get(long block) {
            char[] extentCounts = byExtent[geometry.extentOf(block)];
            if (extentCounts == null) {
                return 0;
            }
            char count = extentCounts[geometry.offsetInExtent(block)];
            return count == SATURATED ? large.get(block) : count;
        }
    }
}
