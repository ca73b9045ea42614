package io.cairn.gc;

import io.cairn.io.MemoryBlockDevice;
import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The collector never frees a live block, on random histories of writes, snapshots, clones, deletions
 * and commits with leaks injected along the way: it finds exactly the leaks the checker sees (every one
 * injected among them), every disk and
 * snapshot reads the same after it, and the checker finds the store clean. A second list of operations
 * runs while the roots are pinned, before the scan; the content compared is the one those operations
 * leave, and the leaks they inject are left for the next collection. Also with counters saturating at
 * 3, so that roots are pinned through copies.
 *
 * <p>Replaying a failure: jqwik prints the failing sample and its {@code seed}; put the seed on the
 * property, e.g. {@code @Property(tries = 60, seed = "-1234")}.
 */
class GarbageCollectorPropertyTest {

    private static final long STORE_BYTES = 32L << 20;
    private static final int EXTENT_BLOCKS = 256;
    private static final long DISK_BYTES = 3L << 20;
    private static final int DISK_BLOCKS = (int) (DISK_BYTES / 4096);

    sealed interface Op permits Write, Snapshot, Clone, DeleteSnapshot, DeleteVdi, Create, Commit, Leak {
    }

    record Write(int disk, int firstBlock, int blocks, int seed) implements Op {
    }

    record Snapshot(int disk) implements Op {
    }

    record Clone(int snapshot) implements Op {
    }

    record DeleteSnapshot(int snapshot) implements Op {
    }

    record DeleteVdi(int disk) implements Op {
    }

    record Create() implements Op {
    }

    record Commit() implements Op {
    }

    record Leak(int seed) implements Op {
    }

    @Provide
    Arbitrary<List<Op>> history() {
        return operations(40);
    }

    @Provide
    Arbitrary<List<Op>> duringScan() {
        return operations(8);
    }

    private static Arbitrary<List<Op>> operations(int maxSize) {
        Arbitrary<Integer> pick = Arbitraries.integers().between(0, 1000);
        // Blocks near 0 and near the leaf boundary at 512 share leaf nodes; anywhere else spreads them.
        Arbitrary<Integer> firstBlock = Arbitraries.frequencyOf(
                Tuple.of(2, Arbitraries.integers().between(0, 8)),
                Tuple.of(2, Arbitraries.integers().between(505, 520)),
                Tuple.of(1, Arbitraries.integers().between(0, DISK_BLOCKS - 4)));
        Arbitrary<Op> op = Arbitraries.frequencyOf(
                Tuple.of(10, Combinators.combine(pick, firstBlock, Arbitraries.integers().between(1, 4), Arbitraries.integers())
                        .as(Write::new)),
                Tuple.of(3, pick.map(Snapshot::new)),
                Tuple.of(2, pick.map(Clone::new)),
                Tuple.of(2, pick.map(DeleteSnapshot::new)),
                Tuple.of(1, pick.map(DeleteVdi::new)),
                Tuple.of(1, Arbitraries.just(new Create())),
                Tuple.of(2, Arbitraries.just(new Commit())),
                Tuple.of(3, Arbitraries.integers().map(Leak::new)));
        return op.list().ofMaxSize(maxSize);
    }

    @Property(tries = 60)
    void theCollectorNeverFreesALiveBlock(@ForAll("history") List<Op> history, @ForAll("duringScan") List<Op> during) {
        run(history, during, StoreOptions.defaults());
    }

    @Property(tries = 30)
    void theCollectorNeverFreesALiveBlockWhenCountersSaturate(@ForAll("history") List<Op> history,
                                                               @ForAll("duringScan") List<Op> during) {
        run(history, during, StoreOptions.defaults().withMaxRefcount(3));
    }

    private static void run(List<Op> history, List<Op> during, StoreOptions options) {
        World world = new World(Store.format(new MemoryBlockDevice(), STORE_BYTES, EXTENT_BLOCKS, options));
        world.apply(history);
        // A collection in the middle of the history, then more leaks: each collection finds its own.
        Map<String, byte[]> content = StoreContent.of(world.store);
        collectExpecting(world, () -> { });
        StoreContent.assertSame(content, StoreContent.of(world.store), "after the first gc");
        world.apply(history.subList(history.size() / 2, history.size()));

        List<Map<String, byte[]>> expected = new ArrayList<>();
        collectExpecting(world, () -> {
            world.apply(during);
            expected.add(StoreContent.of(world.store));
        });
        StoreContent.assertSame(expected.getFirst(), StoreContent.of(world.store), "after gc");
        // Leaks made after the checkpoint are left alone, and the next collection finds them.
        collectExpecting(world, () -> { });
        StoreContent.assertSame(expected.getFirst(), StoreContent.of(world.store), "after the next gc");
        CheckReport check = Checker.check(world.store);
        assertTrue(check.clean(), check.summary());
        world.store.close();
    }

    /**
     * Collects with {@code afterCheckpoint} as the fault point and checks the leaks found: exactly the
     * ones the checker sees right before (a leaked node's unreachable children included), among them
     * every leak injected since the last collection with at least its injected excess.
     */
    private static GcReport collectExpecting(World world, Runnable afterCheckpoint) {
        Map<Long, Integer> injected = world.takeInjected();
        Map<Long, Integer> present = new TreeMap<>();
        for (CheckReport.Finding leak : Checker.check(world.store).leaks()) {
            present.put(leak.block(), Math.toIntExact(leak.counter() - leak.trueCount()));
        }
        injected.forEach((block, excess) -> assertTrue(present.getOrDefault(block, 0) >= excess,
                "injected leak of " + excess + " at block " + block + " not seen by the checker: " + present));
        GcReport report = GarbageCollector.collect(world.store, afterCheckpoint);
        assertFalse(report.damaged(), report.summary());
        assertEquals(present, excessByBlock(report), report.summary());
        return report;
    }

    private static Map<Long, Integer> excessByBlock(GcReport report) {
        Map<Long, Integer> excess = new TreeMap<>();
        for (CheckReport.Finding leak : report.leaks()) {
            excess.put(leak.block(), Math.toIntExact(leak.counter() - leak.trueCount()));
        }
        return excess;
    }

    /** The store, the names in it, and the leaks injected since the last collection. */
    private static final class World {
        final Store store;
        private final List<String> disks = new ArrayList<>();
        private final List<String> snapshots = new ArrayList<>();
        private Map<Long, Integer> injected = new TreeMap<>();
        private int created;

        World(Store store) {
            this.store = store;
            create();
        }

        Map<Long, Integer> takeInjected() {
            Map<Long, Integer> taken = injected;
            injected = new TreeMap<>();
            return taken;
        }

        void apply(List<Op> operations) {
            for (Op op : operations) {
                apply(op);
            }
        }

        private void apply(Op op) {
            switch (op) {
                case Write(int disk, int firstBlock, int blocks, int seed) -> {
                    if (disks.isEmpty()) {
                        return;
                    }
                    byte[] data = new byte[blocks * 4096 - (seed & 511)];
                    new Random(seed).nextBytes(data);
                    try (Volume volume = store.openVolume(disks.get(disk % disks.size()))) {
                        volume.write(firstBlock * 4096L + (seed & 511), ByteBuffer.wrap(data), false);
                    }
                }
                case Snapshot(int disk) -> {
                    if (!disks.isEmpty()) {
                        SnapshotInfo info = store.snapshot(disks.get(disk % disks.size()), null);
                        snapshots.add(info.reference());
                    }
                }
                case Clone(int snapshot) -> {
                    if (!snapshots.isEmpty()) {
                        String name = "disk" + created++;
                        store.clone(name, snapshots.get(snapshot % snapshots.size()));
                        disks.add(name);
                    }
                }
                case DeleteSnapshot(int snapshot) -> {
                    if (!snapshots.isEmpty()) {
                        store.deleteSnapshot(snapshots.remove(snapshot % snapshots.size()));
                    }
                }
                case DeleteVdi(int disk) -> {
                    if (!disks.isEmpty()) {
                        String name = disks.remove(disk % disks.size());
                        store.deleteVdi(name, true);
                        snapshots.removeIf(reference -> reference.startsWith(name + "@"));
                    }
                }
                case Create() -> create();
                case Commit() -> store.commit();
                case Leak(int seed) -> {
                    StoreContent.Leak leak = StoreContent.inject(store, new Random(seed), false);
                    injected.merge(leak.block(), leak.excess(), Integer::sum);
                }
            }
        }

        private void create() {
            String name = "disk" + created++;
            store.create(name, DISK_BYTES);
            disks.add(name);
        }
    }
}
