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
            store = Store.format(new MemoryBlockDevice(), 8 * GIB, Layout.DEFAULT_EXTENT_BLOCKS, StoreOptions.defaults());
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
            store = Store.format(new MemoryBlockDevice(), GIB, Layout.DEFAULT_EXTENT_BLOCKS, StoreOptions.defaults());
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
            store = Store.format(new MemoryBlockDevice(), 32 * GIB, Layout.DEFAULT_EXTENT_BLOCKS, StoreOptions.defaults());
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
            store = Store.format(new MemoryBlockDevice(), GIB, Layout.DEFAULT_EXTENT_BLOCKS, StoreOptions.defaults());
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
}
