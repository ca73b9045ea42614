package io.cairn.bench;

import io.cairn.alloc.SpaceMap;
import io.cairn.format.Layout;
import io.cairn.format.Pointer;
import io.cairn.format.StoreGeometry;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * What one counter change of a copy-on-write counter pass costs, per counter: a copied leaf references its 512
 * targets once more ({@link SpaceMap#incrementPointers}) and, when the leaf is freed, takes the references back
 * ({@link SpaceMap#decrementHoldingPointers}). Each counter change is a compare-and-set (LocalCounters note 3), so
 * that the passes can run without the store's metadata lock. {@link #plainPassReference} makes the same changes
 * to a plain array of the same size with plain loads and stores, as the counter store did before its changes
 * were atomic: the difference is what atomicity costs per counter. Targets are spread over a 3 GiB store
 * ({@code scattered}, the way continuous snapshots under random writes leave a leaf) or consecutive.
 * Run with {@code bench/jmh.sh CounterPassBenchmark} (its short defaults set the iterations).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xms1g", "-Xmx1g"})
public class CounterPassBenchmark {

    /** Counter changes per invocation: one leaf's targets referenced and released again. */
    private static final int CHANGES = 2 * Layout.POINTERS_PER_NODE;
    /** 3 GiB of 4 KiB blocks, as the snapshot-latency benchmark's store for a 1 GiB disk. */
    private static final long STORE_BLOCKS = 3L << 18;

    @State(Scope.Thread)
    public static class Leaf {
        @Param({"scattered", "consecutive"})
        String targets;

        SpaceMap space;
        final long[] pointers = new long[Layout.POINTERS_PER_NODE];
        final long[] unreferenced = new long[Layout.POINTERS_PER_NODE];
        char[] plainCounters;

        @Setup(Level.Trial)
        public void allocate() {
            StoreGeometry geometry = new StoreGeometry(STORE_BLOCKS, 1 << 15);
            space = new SpaceMap(geometry, Layout.MAX_REFCOUNT);
            space.formatSystemExtent();
            long[] blocks = new long[(int) (STORE_BLOCKS * 3 / 4)];
            for (int i = 0; i < blocks.length; i++) {
                blocks[i] = space.allocate(SpaceMap.Purpose.DATA);
            }
            Random random = new Random(7);
            int first = random.nextInt(blocks.length - pointers.length);
            for (int i = 0; i < pointers.length; i++) {
                long block = targets.equals("scattered") ? blocks[random.nextInt(blocks.length)] : blocks[first + i];
                pointers[i] = Pointer.readOnly(block);
                space.increment(block); // two references, so a release never makes a block held
            }
            plainCounters = new char[(int) STORE_BLOCKS];
            java.util.Arrays.fill(plainCounters, (char) 2);
        }
    }

    @Benchmark
    @OperationsPerInvocation(CHANGES)
    public int atomicPass(Leaf leaf) {
        leaf.space.incrementPointers(leaf.pointers, 0);
        return leaf.space.decrementHoldingPointers(leaf.pointers, leaf.unreferenced);
    }

    @Benchmark
    @OperationsPerInvocation(CHANGES)
    public int plainPassReference(Leaf leaf) {
        char[] counters = leaf.plainCounters;
        for (long pointer : leaf.pointers) {
            counters[(int) (pointer & Pointer.BLOCK_MASK)]++;
        }
        int unreferenced = 0;
        for (long pointer : leaf.pointers) {
            if (--counters[(int) (pointer & Pointer.BLOCK_MASK)] == 0) {
                unreferenced++;
            }
        }
        return unreferenced;
    }
}
