package io.cairn.volume;

import static io.cairn.volume.ModelSupport.BLOCK;
import static io.cairn.volume.SnapshotCloneModelTest.assertClean;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.cairn.io.ReopenableMemoryDevice;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.constraints.IntRange;

/**
 * Many clones of one golden image against models (STYLE 9), with counters limited to 2 or 3 so that nearly every
 * share is beyond the limit and goes through a substitute (TreeSpace design note 5): the golden root, its leaves
 * and its data blocks are all shared through copies, which their first holders then write in place, move at a
 * commit, snapshot, clone again and delete. Every disk and snapshot is a {@code byte[]}; touched ranges are
 * compared after each write, random disks and snapshots whole along the way, everything whole at the end and
 * after a reopen, and the checker must find every counter equal to its references. Deleting every clone must
 * leave exactly the golden image's data.
 *
 * <p>Replaying a failure: put the printed {@code seed} on the property and run just this class.
 */
class SaturatedSharingModelTest {

    /** A tree of height 2 with two leaves, every block written. */
    private static final long DISK_BYTES = 520L * BLOCK + 1536;
    private static final long STORE_BYTES = 96L << 20;
    private static final int EXTENT_BLOCKS = 256;
    private static final int MAX_CLONES = 24;

    sealed interface Op permits Clone, Write, Snapshot, Delete, Verify, Settle {
    }

    /** Clones the golden snapshot, or a live snapshot of a clone (pick beyond the golden one). */
    record Clone(int pick) implements Op {
    }

    record Write(int pick, ModelSupport.Range range, int seed) implements Op {
    }

    record Snapshot(int pick) implements Op {
    }

    record Delete(int pick) implements Op {
    }

    record Verify(int pick) implements Op {
    }

    /** A commit, or a close and reopen (which starts without substitutes). */
    record Settle(boolean reopen) implements Op {
    }

    @Provide
    Arbitrary<List<Op>> operations() {
        Arbitrary<Integer> pick = Arbitraries.integers().between(0, 1000);
        Arbitrary<Op> op = Arbitraries.frequencyOf(
                Tuple.of(6, pick.map(Clone::new)),
                Tuple.of(10, Combinators.combine(pick, ModelSupport.ranges(DISK_BYTES), Arbitraries.integers()).as(Write::new)),
                Tuple.of(2, pick.map(Snapshot::new)),
                Tuple.of(2, pick.map(Delete::new)),
                Tuple.of(1, pick.map(Verify::new)),
                Tuple.of(4, Arbitraries.frequency(Tuple.of(3, false), Tuple.of(1, true)).map(Settle::new)));
        return op.list().ofMinSize(1).ofMaxSize(80);
    }

    @Property(tries = 100)
    void clonesOfAGoldenImageMatchTheirModels(@ForAll("operations") List<Op> operations,
                                              @ForAll @IntRange(min = 2, max = 3) int maxRefcount) {
        World world = new World(StoreOptions.defaults().withMaxRefcount(maxRefcount));
        try {
            for (int i = 0; i < operations.size(); i++) {
                world.apply(operations.get(i), "operation " + i + " " + operations.get(i));
            }
            world.verifyAndCheck("at the end");
            world.reopen();
            world.verifyAndCheck("after the final reopen");
            world.deleteClones();
        } finally {
            world.store.close();
        }
    }

    /** A disk or snapshot and its expected content. */
    record Image(String reference, byte[] model) {
    }

    private static final class World {
        final StoreOptions options;
        ReopenableMemoryDevice device = new ReopenableMemoryDevice();
        Store store;
        final Image golden;
        final long goldenDataBytes;
        final List<Image> clones = new ArrayList<>();
        /** Live snapshots: the golden one first, then snapshots of clones. */
        final List<Image> snapshots = new ArrayList<>();
        int nextName;

        World(StoreOptions options) {
            this.options = options;
            store = Store.format(device, STORE_BYTES, EXTENT_BLOCKS, options);
            store.create("golden", DISK_BYTES);
            byte[] content = ModelSupport.randomBytes(7, (int) DISK_BYTES);
            try (Volume volume = store.openVolume("golden")) {
                volume.write(0, ByteBuffer.wrap(content), false);
            }
            golden = new Image("golden", content);
            snapshots.add(new Image(store.snapshot("golden", "gold").reference(), content.clone()));
            store.commit();
            goldenDataBytes = store.spaceReport().dataBytes();
        }

        void apply(Op op, String context) {
            switch (op) {
                case Clone(int pick) -> {
                    if (clones.size() < MAX_CLONES) {
                        // The golden snapshot half the time, so its blocks stay the most shared.
                        Image source = snapshots.get(pick % 2 == 0 ? 0 : pick % snapshots.size());
                        String name = "c" + nextName++;
                        store.clone(name, source.reference());
                        clones.add(new Image(name, source.model().clone()));
                    }
                }
                case Write(int pick, ModelSupport.Range range, int seed) -> {
                    if (!clones.isEmpty()) {
                        Image clone = clones.get(pick % clones.size());
                        byte[] bytes = ModelSupport.randomBytes(seed, range.length());
                        try (Volume volume = store.openVolume(clone.reference())) {
                            volume.write(range.offset(), ByteBuffer.wrap(bytes), false);
                            System.arraycopy(bytes, 0, clone.model(), (int) range.offset(), bytes.length);
                            ModelSupport.assertMatches(volume, clone.model(), range.offset(), range.length(), context);
                        }
                    }
                }
                case Snapshot(int pick) -> {
                    if (!clones.isEmpty()) {
                        Image clone = clones.get(pick % clones.size());
                        snapshots.add(new Image(store.snapshot(clone.reference(), null).reference(), clone.model().clone()));
                    }
                }
                case Delete(int pick) -> {
                    if (!clones.isEmpty()) {
                        Image clone = clones.remove(pick % clones.size());
                        store.deleteVdi(clone.reference(), true);
                        snapshots.removeIf(snapshot -> snapshot.reference().startsWith(clone.reference() + "@"));
                    }
                }
                case Verify(int pick) -> verify(pick, context);
                case Settle(boolean reopen) -> {
                    store.commit();
                    if (reopen) {
                        reopen();
                        verifyAll(context);
                    }
                }
            }
        }

        void reopen() {
            store.close();
            device = device.reopen();
            store = Store.open(device, null, options);
        }

        /** Disk or snapshot {@code pick} (modulo everything live): the golden disk, then clones, then snapshots. */
        void verify(int pick, String context) {
            List<Image> all = new ArrayList<>();
            all.add(golden);
            all.addAll(clones);
            all.addAll(snapshots);
            Image image = all.get(pick % all.size());
            ModelSupport.assertSame(image.model(), ModelSupport.readAll(store, image.reference()), 0,
                    context + ", " + image.reference());
        }

        /** Every disk and snapshot whole, then a commit and the checker. */
        void verifyAndCheck(String context) {
            verifyAll(context);
            store.commit();
            assertClean(store, context);
        }

        void verifyAll(String context) {
            for (int i = 0; i < 1 + clones.size() + snapshots.size(); i++) {
                verify(i, context);
            }
        }

        /** Deletes every clone with its snapshots: only the golden image's data may stay, and nothing may leak. */
        void deleteClones() {
            for (Image clone : clones) {
                store.deleteVdi(clone.reference(), true);
            }
            store.commit();
            assertEquals(goldenDataBytes, store.spaceReport().dataBytes(), "data left after deleting every clone");
            assertEquals(0, (int) store.inspect(internals -> internals.trees().substituteCount()),
                    "no copy is left to share once the clones are gone");
            verify(0, "after deleting every clone");
            assertClean(store, "after deleting every clone");
        }
    }
}
