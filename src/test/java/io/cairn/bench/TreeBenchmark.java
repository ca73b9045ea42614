package io.cairn.bench;

import io.cairn.format.Layout;
import io.cairn.io.MemoryBlockDevice;
import io.cairn.tree.RootRef;
import io.cairn.tree.TreeSpace;
import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.nio.ByteBuffer;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * Microbenchmarks of the engine's tree paths on a {@link MemoryBlockDevice} store, so the device costs
 * only a memory copy and the numbers are the engine's. Run with {@code bench/jmh.sh} (a program, not a
 * test: the class name does not end in Test, so surefire never runs it).
 *
 * <ul>
 *   <li>{@link #lookupWarmCache}: one radix lookup (three levels) of a random mapped block, every node
 *       in the node cache. Calls the tree directly, without the store's locks.</li>
 *   <li>{@link #overwriteInPlace}: a 4 KiB write at a random mapped, exclusively owned block of a
 *       disk with two tree levels: the path the design keeps cheap, no allocation, no new nodes.</li>
 *   <li>{@link #writeToHole}: a 4 KiB write at a random hole: allocate a block, write it, link it
 *       into the tree (creating leaf nodes as needed). No commit in the measured call; each
 *       iteration starts from an empty disk.</li>
 *   <li>{@link #snapshotAndCommit}: a durable snapshot (snapshot, then commit) of a disk that already
 *       has 0 or 10,000 snapshots. The snapshot is deleted after each call, outside the measurement;
 *       the next call's commit makes that deletion durable too.</li>
 *   <li>{@link #leafCopy}: the first 4 KiB write under a leaf after a snapshot, per leaf: the leaf is
 *       copied (each of its up to 512 children gains a reference) and the data block is copied. The disk's
 *       data blocks are scattered over the store the way continuous snapshots leave them.</li>
 *   <li>{@link #reclaimCopiedLeaves}: the commit that makes a snapshot's deletion durable and reclaims it,
 *       per leaf the snapshot held alone (each of its children loses a reference), on the same kind of disk.</li>
 * </ul>
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xms2g", "-Xmx2g"})
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
public class TreeBenchmark {

    private static final int BLOCK = Layout.BLOCK_BYTES;
    private static final long MIB = 1L << 20;
    private static final long GIB = 1L << 30;
    private static final int RANDOM_INDEXES = 1 << 16;

    /** A 64 GiB disk (three levels) with one block mapped every 256 KiB over its first 4 GiB. */
    @State(Scope.Benchmark)
    public static class WarmTree {
        Store store;
        TreeSpace trees;
        RootRef root;
        final long[] mappedIndexes = new long[RANDOM_INDEXES];
        int next;

        @Setup(Level.Trial)
        public void setUp() {
            store = Store.format(new MemoryBlockDevice(), 8 * GIB, Layout.defaultExtentBlocks(8 * GIB), StoreOptions.defaults());
            store.create("disk", 64 * GIB);
            int strideBlocks = 64;
            long mappedBlocks = 4 * GIB / BLOCK / strideBlocks;
            try (Volume volume = store.openVolume("disk")) {
                ByteBuffer data = ByteBuffer.allocate(BLOCK);
                for (long i = 0; i < mappedBlocks; i++) {
                    volume.write(i * strideBlocks * BLOCK, data.clear(), false);
                }
            }
            store.commit();
            root = store.inspect(internals -> internals.vdiRoots().values().iterator().next());
            trees = store.inspect(Store.Internals::trees);
            Random random = new Random(1);
            for (int i = 0; i < RANDOM_INDEXES; i++) {
                mappedIndexes[i] = (long) random.nextInt((int) mappedBlocks) * strideBlocks;
            }
            for (long index : mappedIndexes) {
                trees.lookup(root.root(), root.height(), index); // warm the node cache
            }
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            store.close();
        }
    }

    @Benchmark
    public long lookupWarmCache(WarmTree state) {
        long index = state.mappedIndexes[state.next++ & (RANDOM_INDEXES - 1)];
        return state.trees.lookup(state.root.root(), state.root.height(), index);
    }

    /** A 64 MiB disk (two levels), every block written and committed: all owned by the disk alone. */
    @State(Scope.Benchmark)
    public static class WrittenDisk {
        Store store;
        Volume volume;
        final ByteBuffer data = ByteBuffer.allocate(BLOCK);
        final long[] offsets = new long[RANDOM_INDEXES];
        int next;

        @Setup(Level.Trial)
        public void setUp() {
            store = Store.format(new MemoryBlockDevice(), GIB, Layout.defaultExtentBlocks(GIB), StoreOptions.defaults());
            long diskBytes = 64 * MIB;
            store.create("disk", diskBytes);
            volume = store.openVolume("disk");
            new Random(2).nextBytes(data.array());
            for (long offset = 0; offset < diskBytes; offset += BLOCK) {
                volume.write(offset, data.clear(), false);
            }
            store.commit();
            Random random = new Random(3);
            for (int i = 0; i < RANDOM_INDEXES; i++) {
                offsets[i] = (long) random.nextInt((int) (diskBytes / BLOCK)) * BLOCK;
            }
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            volume.close();
            store.close();
        }
    }

    @Benchmark
    public void overwriteInPlace(WrittenDisk state) {
        state.volume.write(state.offsets[state.next++ & (RANDOM_INDEXES - 1)], state.data.clear(), false);
    }

    /**
     * A 16 GiB disk (three levels) that is empty at the start of every iteration; calls write distinct
     * random blocks of it (a random permutation), so every write lands in a hole.
     */
    @State(Scope.Benchmark)
    public static class EmptyDisk {
        static final long DISK_BYTES = 16 * GIB;
        Store store;
        Volume volume;
        final ByteBuffer data = ByteBuffer.allocate(BLOCK);
        int[] permutation;
        int next;

        @Setup(Level.Trial)
        public void setUp() {
            store = Store.format(new MemoryBlockDevice(), 32 * GIB, Layout.defaultExtentBlocks(32 * GIB), StoreOptions.defaults());
            store.create("disk", DISK_BYTES);
            volume = store.openVolume("disk");
            new Random(4).nextBytes(data.array());
            int blocks = (int) (DISK_BYTES / BLOCK);
            permutation = new int[blocks];
            for (int i = 0; i < blocks; i++) {
                permutation[i] = i;
            }
            Random random = new Random(5);
            for (int i = blocks - 1; i > 0; i--) {
                int j = random.nextInt(i + 1);
                int swap = permutation[i];
                permutation[i] = permutation[j];
                permutation[j] = swap;
            }
        }

        /** Frees everything the last iteration wrote, so memory stays bounded and every write finds a hole. */
        @Setup(Level.Iteration)
        public void emptyTheDisk() {
            volume.trim(0, DISK_BYTES, false);
            store.commit();
            store.commit();
            next = 0;
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            volume.close();
            store.close();
        }
    }

    @Benchmark
    public void writeToHole(EmptyDisk state) {
        long offset = (long) state.permutation[state.next++] * BLOCK;
        state.volume.write(offset, state.data.clear(), false);
    }

    /** A 1 GiB disk with 64 blocks of data and a given number of snapshots already taken. */
    @State(Scope.Benchmark)
    public static class SnapshotHistory {
        @Param({"0", "10000"})
        public int priorSnapshots;

        Store store;
        SnapshotInfo taken;

        @Setup(Level.Trial)
        public void setUp() {
            store = Store.format(new MemoryBlockDevice(), GIB, Layout.defaultExtentBlocks(GIB), StoreOptions.defaults());
            store.create("disk", GIB);
            try (Volume volume = store.openVolume("disk")) {
                volume.write(0, ByteBuffer.allocate(64 * BLOCK), false);
            }
            for (int i = 0; i < priorSnapshots; i++) {
                store.snapshot("disk", null);
            }
            store.commit();
            store.commit();
        }

        @TearDown(Level.Invocation)
        public void deleteTheSnapshot() {
            store.deleteSnapshot(taken.reference());
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            store.close();
        }
    }

    @Benchmark
    public SnapshotInfo snapshotAndCommit(SnapshotHistory state) {
        state.taken = state.store.snapshot("disk", null);
        state.store.commit();
        return state.taken;
    }

    /**
     * A 1 GiB disk (512 leaves, two levels), every block written, whose data blocks are scattered over the
     * store as continuous snapshots leave them: after a sequential fill, every block is overwritten once in
     * random order while a snapshot is taken (and the previous one deleted and reclaimed) every 4,096
     * writes, so every write copies its block to the next free one. A leaf's 512 children then lie all over
     * the store's counters, as on a server taking a snapshot every 10 ms. The benchmarks go through
     * {@link Store#snapshot}, {@link Volume#write}, {@link Store#deleteSnapshot} and {@link Store#commit}
     * rather than TreeSpace: the counter updates are only part of a leaf copy (node copy, node cache, data
     * copy, commit), and the figure that matters is the whole per-leaf cost a server pays.
     */
    public abstract static class ScatteredDisk {
        static final long DISK_BYTES = GIB;
        static final int LEAVES = (int) (DISK_BYTES / BLOCK / Layout.POINTERS_PER_NODE);
        static final int WRITES_PER_SNAPSHOT = 4096;

        Store store;
        Volume volume;
        final ByteBuffer data = ByteBuffer.allocate(BLOCK);
        final Random random = new Random(6);
        /** One write offset per leaf, in random leaf order, at a random block of the leaf; new for each invocation. */
        final long[] leafWriteOffsets = new long[LEAVES];

        @Setup(Level.Trial)
        public void scatter() {
            store = Store.format(new MemoryBlockDevice(), 3 * GIB, Layout.defaultExtentBlocks(3 * GIB), StoreOptions.defaults());
            store.create("disk", DISK_BYTES);
            volume = store.openVolume("disk");
            random.nextBytes(data.array());
            int blocks = (int) (DISK_BYTES / BLOCK);
            for (long block = 0; block < blocks; block++) {
                volume.write(block * BLOCK, data.clear(), false);
            }
            store.commit();
            int[] order = permutation(blocks);
            SnapshotInfo previous = null;
            for (int i = 0; i < blocks; i++) {
                if (i % WRITES_PER_SNAPSHOT == 0) {
                    previous = rollSnapshot(previous);
                }
                volume.write((long) order[i] * BLOCK, data.clear(), false);
            }
            store.deleteSnapshot(previous.reference());
            store.commit();
            store.commit();
        }

        /** Takes a snapshot, deletes {@code previous} (if any) and commits, which reclaims it. */
        SnapshotInfo rollSnapshot(SnapshotInfo previous) {
            SnapshotInfo taken = store.snapshot("disk", null);
            if (previous != null) {
                store.deleteSnapshot(previous.reference());
            }
            store.commit();
            return taken;
        }

        int[] permutation(int size) {
            int[] order = new int[size];
            for (int i = 0; i < size; i++) {
                order[i] = i;
            }
            for (int i = size - 1; i > 0; i--) {
                int j = random.nextInt(i + 1);
                int swap = order[i];
                order[i] = order[j];
                order[j] = swap;
            }
            return order;
        }

        /** Writes once under every leaf, in random order: after a snapshot, each write copies its leaf. */
        void writeUnderEveryLeaf() {
            for (long offset : leafWriteOffsets) {
                volume.write(offset, data.clear(), false);
            }
        }

        void pickLeafWrites() {
            int[] leaves = permutation(LEAVES);
            for (int i = 0; i < LEAVES; i++) {
                long block = (long) leaves[i] * Layout.POINTERS_PER_NODE + random.nextInt(Layout.POINTERS_PER_NODE);
                leafWriteOffsets[i] = block * BLOCK;
            }
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            volume.close();
            store.close();
        }
    }

    /** Before each call a fresh snapshot of the scattered disk; after it, the snapshot is deleted and reclaimed. */
    @State(Scope.Benchmark)
    public static class LeafCopies extends ScatteredDisk {
        SnapshotInfo taken;

        @Setup(Level.Invocation)
        public void snapshot() {
            pickLeafWrites();
            taken = store.snapshot("disk", null);
        }

        @TearDown(Level.Invocation)
        public void deleteTheSnapshot() {
            store.deleteSnapshot(taken.reference());
            store.commit();
        }
    }

    @Benchmark
    @OperationsPerInvocation(ScatteredDisk.LEAVES)
    @Fork(value = 1, jvmArgsAppend = {"-Xms4g", "-Xmx4g"})
    public void leafCopy(LeafCopies state) {
        state.writeUnderEveryLeaf();
    }

    /**
     * Before each call: a snapshot, a write under every leaf (so the snapshot alone holds the old leaves), a
     * commit and the snapshot's deletion. The call commits, which makes the deletion durable and reclaims.
     */
    @State(Scope.Benchmark)
    public static class DeletedSnapshots extends ScatteredDisk {
        @Setup(Level.Invocation)
        public void copyEveryLeafAndDelete() {
            pickLeafWrites();
            SnapshotInfo taken = store.snapshot("disk", null);
            writeUnderEveryLeaf();
            store.commit();
            store.deleteSnapshot(taken.reference());
        }
    }

    @Benchmark
    @OperationsPerInvocation(ScatteredDisk.LEAVES)
    @Fork(value = 1, jvmArgsAppend = {"-Xms4g", "-Xmx4g"})
    public void reclaimCopiedLeaves(DeletedSnapshots state) {
        state.store.commit();
    }
}
