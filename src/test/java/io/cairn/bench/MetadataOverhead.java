package io.cairn.bench;

import io.cairn.alloc.SpaceMap;
import io.cairn.format.ExtentRecord;
import io.cairn.format.Layout;
import io.cairn.format.Pointer;
import io.cairn.format.StoreGeometry;
import io.cairn.io.BlockDevice;
import io.cairn.io.FileBlockDevice;
import io.cairn.tree.Node;
import io.cairn.tree.RootRef;
import io.cairn.tree.TreeSpace;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Metadata overhead and node-cache size (issue 7, target 4; seed 003 §6: Parallax needs 64 MiB of node
 * cache for a 32 GiB working set). A program, not a test; run it with {@code bench/metadata.sh}.
 *
 * <p>Part 1 fills one VDI of {@code VDI_GIB} sequentially in 1 MiB writes through {@link Volume#write}
 * (committing every GiB, as a client's flushes would), closes the store, reopens it and counts every
 * block that is not data: the VDI's radix nodes by level, the system tables' nodes and pages, the
 * counter slots of every extent in use and the superblocks, each as a fraction of the data bytes.
 *
 * <p>The store lives in a sparse file, and the device drops every write longer than one block that is all
 * zeros: those are the data runs of the fill, which writes zeros (the engine writes each run of consecutive
 * data blocks in one call; a run of metadata blocks written in one call always has non-zero bytes). The
 * tree therefore maps every block exactly as a real fill would, the metadata is really written, and a
 * data block reads back as zeros from the file's hole. This keeps a 32 GiB fill to seconds and no disk
 * space; it makes data reads in part 2 cheaper than real ones (no disk, no page-cache copy of data),
 * which only raises the rate at which node-cache misses show.
 *
 * <p>Part 2 reopens the store once per node-cache size and reads random 4 KiB blocks uniformly over the
 * whole VDI through {@link Volume#read} (one thread): a warm-up that fills the cache, then a measured
 * run. It prints reads per second and the cache's hit rate over the measured run, and checks, after
 * it, which of the tree's upper nodes (levels 2 and up) are still cached. Misses are served from the
 * operating system's page cache here (the store file's metadata is a few tens of MiB); on a cold disk
 * every miss is a device read, so the hit rate is the figure that carries over.
 *
 * <p>Arguments: {@code PATH VDI_GIB CACHE_MIB_LIST READS}, e.g. {@code target/meta.cairn 32 16,32,64,128
 * 2000000}. PATH must not exist; it is deleted at the end.
 */
public final class MetadataOverhead {

    private static final int WRITE_BYTES = 1 << 20;
    private static final long COMMIT_EVERY_BYTES = 1L << 30;

    private MetadataOverhead() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            throw new IllegalArgumentException("usage: MetadataOverhead PATH VDI_GIB CACHE_MIB_LIST READS");
        }
        Path path = Path.of(args[0]);
        long vdiBytes = Long.parseLong(args[1]) << 30;
        List<Long> cacheMibs = new ArrayList<>();
        for (String mib : args[2].split(",")) {
            cacheMibs.add(Long.parseLong(mib.trim()));
        }
        long reads = Long.parseLong(args[3]);
        if (Files.exists(path)) {
            throw new IllegalArgumentException(path + " already exists; remove it first");
        }
        try {
            fill(path, vdiBytes);
            countMetadata(path);
            for (long mib : cacheMibs) {
                readWithCache(path, vdiBytes, mib << 20, reads);
            }
        } finally {
            Files.deleteIfExists(path);
        }
    }

    // ---------------------------------------------------------------- part 1: fill and count

    private static void fill(Path path, long vdiBytes) {
        // Room for the data, its nodes and counters, and two spare extents.
        long storeBytes = vdiBytes + vdiBytes / 64 + (2L * Layout.DEFAULT_EXTENT_BLOCKS + 2 * Layout.DEFAULT_EXTENT_BLOCKS) * Layout.BLOCK_BYTES;
        long started = System.nanoTime();
        DataDroppingDevice device = new DataDroppingDevice(FileBlockDevice.create(path, 0));
        try (Store store = Store.format(device, storeBytes, Layout.defaultExtentBlocks(storeBytes), StoreOptions.defaults())) {
            store.create("disk", vdiBytes);
            ByteBuffer chunk = ByteBuffer.allocate(WRITE_BYTES);
            try (Volume volume = store.openVolume("disk")) {
                for (long offset = 0; offset < vdiBytes; offset += WRITE_BYTES) {
                    volume.write(offset, chunk.clear(), false);
                    if ((offset + WRITE_BYTES) % COMMIT_EVERY_BYTES == 0) {
                        store.commit();
                    }
                }
            }
        }
        System.out.printf(Locale.ROOT, "fill: %s, one VDI of %.0f GiB written sequentially in 1 MiB writes in %.1f s"
                        + " (%.1f GiB of data runs not written to the file; %d other writes kept)%n",
                path, vdiBytes / 1073741824.0, (System.nanoTime() - started) / 1e9, device.droppedBytes / 1073741824.0,
                device.keptWrites);
    }

    private static void countMetadata(Path path) {
        try (Store store = Store.openFile(path, StoreOptions.defaults())) {
            store.inspect(internals -> {
                TreeSpace trees = internals.trees();
                SpaceMap space = internals.space();
                StoreGeometry geometry = space.geometry();
                long[] vdiNodesByLevel = new long[Layout.MAX_TREE_HEIGHT + 1];
                for (RootRef root : internals.vdiRoots().values()) {
                    countNodes(trees, root.root(), root.height(), vdiNodesByLevel, null);
                }
                long[] tableNodesByLevel = new long[Layout.MAX_TREE_HEIGHT + 2];
                long[] tablePages = new long[1];
                for (RootRef root : internals.tableRoots()) {
                    if (root.root() != 0) {
                        countNodes(trees, root.root(), root.height(), tableNodesByLevel, tablePages);
                    }
                }
                long[] allocated = new long[2]; // data, other
                space.forEachAllocated((block, count, type) -> allocated[type == ExtentRecord.Type.DATA ? 0 : 1]++);
                long dataBlocks = allocated[0];
                long metadataAllocated = allocated[1];
                long extentsInUse = 0;
                long metadataExtents = 0;
                long counterSlots = 0;
                for (int extent = 0; extent < space.extentCount(); extent++) {
                    ExtentRecord.Type type = space.extent(extent).type();
                    if (type != ExtentRecord.Type.FREE) {
                        extentsInUse++;
                        counterSlots += 2L * geometry.counterBlocksPerExtent();
                        if (type != ExtentRecord.Type.DATA) {
                            metadataExtents++;
                        }
                    }
                }
                long vdiNodes = sum(vdiNodesByLevel);
                long tableNodes = sum(tableNodesByLevel);
                long superblocks = Layout.SUPERBLOCK_BLOCKS;
                long total = vdiNodes + tableNodes + tablePages[0] + counterSlots + superblocks;
                if (vdiNodes + tableNodes + tablePages[0] != metadataAllocated) {
                    throw new IllegalStateException("walked " + (vdiNodes + tableNodes + tablePages[0])
                            + " metadata blocks but the counters show " + metadataAllocated + " allocated");
                }
                System.out.printf(Locale.ROOT, "data: %d blocks (%.2f GiB); extents in use: %d of %d blocks each"
                                + " (%d data, %d system/metadata); %d-byte counters, %d per counter block%n", dataBlocks,
                        dataBlocks * 4096.0 / 1073741824.0, extentsInUse, geometry.extentBlocks(),
                        extentsInUse - metadataExtents, metadataExtents, geometry.counterEncoding().counterBytes(),
                        geometry.counterEncoding().countersPerBlock());
                System.out.printf(Locale.ROOT, "%-44s %10s %12s %10s%n", "metadata", "blocks", "MiB", "% of data");
                for (int level = 1; level <= Layout.MAX_TREE_HEIGHT; level++) {
                    if (vdiNodesByLevel[level] > 0) {
                        row("VDI radix nodes, level " + level + (level == 1 ? " (leaves)" : ""), vdiNodesByLevel[level], dataBlocks);
                    }
                }
                row("system-table radix nodes", tableNodes, dataBlocks);
                row("system-table pages", tablePages[0], dataBlocks);
                row("counter-block slots (2 x " + geometry.counterBlocksPerExtent() + " per extent in use)", counterSlots, dataBlocks);
                row("superblock slots", superblocks, dataBlocks);
                row("total", total, dataBlocks);
                System.out.println("variants of the count (same store):");
                row("  allocated metadata only (nodes, pages)", metadataAllocated, dataBlocks);
                row("  with one counter slot per counter block", total - counterSlots / 2, dataBlocks);
                System.out.printf(Locale.ROOT, "space claimed by system/metadata extents: %.1f MiB, of which %.1f MiB in use%n",
                        metadataExtents * geometry.extentBlocks() * 4096.0 / 1048576.0,
                        (metadataAllocated + 2 * metadataExtents * geometry.counterBlocksPerExtent() + superblocks) * 4096.0 / 1048576.0);
                return null;
            });
        }
    }

    private static void row(String what, long blocks, long dataBlocks) {
        System.out.printf(Locale.ROOT, "%-44s %10d %12.2f %9.4f%%%n", what, blocks, blocks * 4096.0 / 1048576.0,
                100.0 * blocks / dataBlocks);
    }

    private static long sum(long[] values) {
        long total = 0;
        for (long value : values) {
            total += value;
        }
        return total;
    }

    /** Counts the nodes of a tree by level and, if {@code leafTargets} is given, the leaves' targets. */
    private static void countNodes(TreeSpace trees, long block, int level, long[] byLevel, long[] leafTargets) {
        byLevel[level]++;
        Node node = trees.node(block, level);
        for (int slot = 0; slot < Layout.POINTERS_PER_NODE; slot++) {
            long pointer = node.pointer(slot);
            if (Pointer.isHole(pointer)) {
                continue;
            }
            if (level > 1) {
                countNodes(trees, Pointer.blockOf(pointer), level - 1, byLevel, leafTargets);
            } else if (leafTargets != null) {
                leafTargets[0]++;
            }
        }
    }

    // ---------------------------------------------------------------- part 2: node cache size

    private static void readWithCache(Path path, long vdiBytes, long cacheBytes, long reads) {
        try (Store store = Store.openFile(path, StoreOptions.defaults().withNodeCacheBytes(cacheBytes));
             Volume volume = store.openVolume("disk")) {
            long blocks = vdiBytes / Layout.BLOCK_BYTES;
            ByteBuffer buffer = ByteBuffer.allocateDirect(Layout.BLOCK_BYTES);
            SplittableRandom random = new SplittableRandom(7);
            // Warm-up: enough reads to touch every leaf a few times over (coupon collector), and the JIT.
            long warmup = Math.max(reads / 2, 12 * (blocks / Layout.POINTERS_PER_NODE));
            for (long i = 0; i < warmup; i++) {
                volume.read(random.nextLong(blocks) * Layout.BLOCK_BYTES, buffer.clear());
            }
            long[] before = store.inspect(internals -> new long[] {internals.trees().cache().hits(), internals.trees().cache().misses()});
            long started = System.nanoTime();
            for (long i = 0; i < reads; i++) {
                volume.read(random.nextLong(blocks) * Layout.BLOCK_BYTES, buffer.clear());
            }
            long elapsed = System.nanoTime() - started;
            String upper = store.inspect(internals -> upperLevelsResident(internals.trees(), internals.vdiRoots().values().iterator().next()));
            long[] after = store.inspect(internals -> new long[] {internals.trees().cache().hits(), internals.trees().cache().misses(),
                    internals.trees().cache().capacityNodes()});
            long hits = after[0] - before[0];
            long misses = after[1] - before[1];
            System.out.printf(Locale.ROOT, "cache %4d MiB (%6d nodes): %9.0f reads/s, %5.2f µs/read; node lookups %5.1f%% hits,"
                            + " %.3f misses per read (leaf hit rate %5.1f%%); upper levels after the run: %s%n",
                    cacheBytes >> 20, after[2], reads / (elapsed / 1e9), elapsed / 1e3 / reads,
                    100.0 * hits / (hits + misses), (double) misses / reads, 100.0 * (1 - (double) misses / reads), upper);
        }
    }

    /** Whether every node above the leaves is still cached (each is looked for before it is read). */
    private static String upperLevelsResident(TreeSpace trees, RootRef root) {
        int[] counts = new int[2]; // upper nodes, of which evicted
        visitUpper(trees, root.root(), root.height(), counts);
        return counts[1] == 0 ? "all " + counts[0] + " cached" : counts[1] + " of " + counts[0] + " had been evicted";
    }

    private static void visitUpper(TreeSpace trees, long block, int level, int[] counts) {
        if (level < 2) {
            return;
        }
        counts[0]++;
        if (!trees.cache().contains(block)) {
            counts[1]++;
        }
        for (long pointer : trees.node(block, level).pointersCopy()) {
            if (!Pointer.isHole(pointer)) {
                visitUpper(trees, Pointer.blockOf(pointer), level - 1, counts);
            }
        }
    }

    /**
     * A file device that does not perform writes longer than one block (the data runs of a sequential
     * fill; see the class comment) and counts them. Everything else goes to the file.
     */
    private static final class DataDroppingDevice implements BlockDevice {
        private final BlockDevice file;
        long droppedBytes;
        long keptWrites;

        DataDroppingDevice(BlockDevice file) {
            this.file = file;
        }

        @Override
        public void read(long offsetBytes, ByteBuffer buffer) {
            file.read(offsetBytes, buffer);
        }

        /**
         * Drops a write of more than one block that is all zeros: what the fill writes as data. A commit may
         * write runs of adjacent metadata blocks in one call too, so the length alone does not tell data from
         * metadata; every metadata block has non-zero bytes (its magic, or a radix node's header lane), and a
         * dropped run of zeros reads back as zeros from the file's hole, as if it had been written.
         */
        @Override
        public void write(long offsetBytes, ByteBuffer buffer) {
            if (buffer.remaining() > Layout.BLOCK_BYTES && allZero(buffer)) {
                droppedBytes += buffer.remaining();
                buffer.position(buffer.limit());
                return;
            }
            keptWrites++;
            file.write(offsetBytes, buffer);
        }

        private static boolean allZero(ByteBuffer buffer) {
            ByteBuffer zeros = ByteBuffer.allocate(Layout.BLOCK_BYTES);
            for (int at = buffer.position(); at < buffer.limit(); at += Layout.BLOCK_BYTES) {
                int length = Math.min(Layout.BLOCK_BYTES, buffer.limit() - at);
                if (buffer.slice(at, length).mismatch(zeros.slice(0, length)) >= 0) {
                    return false;
                }
            }
            return true;
        }

        @Override
        public void flush() {
            file.flush();
        }

        @Override
        public long sizeBytes() {
            return file.sizeBytes();
        }

        @Override
        public void close() {
            file.close();
        }
    }
}
