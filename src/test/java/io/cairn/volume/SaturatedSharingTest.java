package io.cairn.volume;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.format.CounterEncoding;
import io.cairn.format.Pointer;
import io.cairn.gc.CheckReport;
import io.cairn.gc.Checker;
import io.cairn.io.ReopenableMemoryDevice;
import io.cairn.tree.TreeSpace;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Sharing a block whose counter is saturated shares the latest copy made of it until that copy saturates in turn
 * (TreeSpace design note 5, substitutes), with counters lowered by {@link StoreOptions#withMaxRefcount} so that a
 * few hundred clones of one image go far past the limit: copies made grow with the shares divided by the limit,
 * every clone reads what it should, deletions free the copies and forget them, a reopen starts afresh, and the
 * checker finds every counter equal to its references throughout. A copy that its first holder may write in
 * place, or moves, is never handed to anyone else.
 */
class SaturatedSharingTest {

    private static final int BLOCK_BYTES = 4096;
    private static final long STORE_BYTES = 256L << 20;
    private static final int EXTENT_BLOCKS = 256;
    /** 2048 blocks: a root over four leaves. */
    private static final long DISK_BYTES = 8L << 20;
    /** Written in the golden image: eight blocks of the first leaf, and one block of each other leaf. */
    private static final long[] GOLDEN_BLOCKS = {0, 1, 2, 3, 4, 5, 6, 7, 600, 1100, 1700};
    private static final long LEAF_ONE_BLOCK = 600;

    /**
     * With a test's limit of 16, and with no test limit (65535), where the limit is that of the store's 1-byte
     * counters, 255.
     */
    @ParameterizedTest
    @CsvSource({"16, 16, 400", "65535, 255, 600"})
    void sharesBeyondTheLimitMakeOneCopyPerLimitNotOnePerShare(int optionLimit, int limit, int clones) {
        StoreOptions options = StoreOptions.defaults().withMaxRefcount(optionLimit);
        ReopenableMemoryDevice device = new ReopenableMemoryDevice();
        Store store = Store.format(device, STORE_BYTES, EXTENT_BLOCKS, options);
        assertEquals(limit, (int) store.inspect(internals -> internals.space().maxRefcount()));
        try {
            String golden = goldenImage(store);
            long dataBytesOfGolden = store.spaceReport().dataBytes();

            // Cloning shares the snapshot's root: two references (disk and snapshot), then limit − 2 clones share
            // it, and every later clone shares a copy, each copy taking `limit` clones before it saturates.
            long before = saturatedCopies(store);
            List<String> names = new ArrayList<>();
            for (int i = 0; i < clones; i++) {
                names.add("clone" + i);
                store.clone("clone" + i, golden);
            }
            // Each root copy shares the four golden leaves in turn (one reference each to start with), and those
            // saturate as well. Without substitutes every share beyond the limit would copy: 386 roots, and more.
            int rootCopies = ceilDiv(clones - (limit - 2), limit);
            int leafCopies = 4 * ceilDiv(rootCopies - (limit - 1), limit);
            assertEquals(rootCopies + leafCopies, saturatedCopies(store) - before, "copies for " + clones + " clones");

            // Each write copies the clone's root, whose four leaves gain a reference, and the first leaf, whose
            // eight data blocks gain one. Once the first leaf is saturated, the clone's own copy of it is made by
            // sharing (a copy that the write then changes in place, so it is the clone's private leaf, not extra
            // work): one per clone. Every other saturated block, three leaves and seven data blocks, is copied
            // once per `limit` shares. Without substitutes each of those eleven would be copied for every clone.
            before = saturatedCopies(store);
            for (int i = 0; i < clones; i++) {
                writeBlock(store, names.get(i), 0, 1_000_000 + i);
                if (i % 10 == 9) {
                    store.commit();
                }
            }
            long writeCopies = saturatedCopies(store) - before;
            long bound = clones + 10L * (ceilDiv(clones, limit) + 1);
            assertTrue(writeCopies <= bound, "copies made by " + clones + " written clones: " + writeCopies + ", at most " + bound);
            assertTrue(substituteCount(store) > 0, "saturated blocks have substitutes");

            verifyClones(store, names, 0);
            verifyGolden(store, "golden");
            store.commit();
            assertClean(store, "after the clones were written");

            store.close();
            device = device.reopen();
            store = Store.open(device, null, options);
            assertEquals(0, substituteCount(store), "substitutes are not durable");
            verifyClones(store, names, 0);
            before = saturatedCopies(store);
            for (int i = 0; i < limit; i++) {
                String name = "late" + i;
                store.clone(name, golden);
                writeBlock(store, name, 0, 2_000_000 + i);
                names.add(name);
            }
            assertTrue(saturatedCopies(store) - before <= 2L * (1 + 11),
                    "after a reopen each saturated block is copied afresh once: " + (saturatedCopies(store) - before));
            verifyClones(store, names.subList(clones, names.size()), 1_000_000);
            store.commit();
            assertClean(store, "after the reopen");

            for (String name : names) {
                store.deleteVdi(name, true);
            }
            store.commit();
            assertEquals(0, substituteCount(store),
                    "every copy was freed with the clones, and its substitute entry with it");
            assertEquals(dataBytesOfGolden, store.spaceReport().dataBytes(), "data copies freed with the clones");
            verifyGolden(store, "golden");
            assertClean(store, "after deleting the clones");

            store.deleteVdi("golden", true);
            store.commit();
            assertEquals(0, store.spaceReport().dataBytes());
            assertClean(store, "after deleting everything");
        } finally {
            store.close();
        }
    }

    @Test
    void aDataCopyItsFirstHolderWritesInPlaceIsNotSharedAgain() {
        try (Store store = storeWithLimit(3)) {
            String golden = goldenImage(store);
            long goldenBlockFive = physical(store, "golden", 5);
            saturate(store, golden, goldenBlockFive); // each written clone copies the first leaf, sharing block 5
            store.clone("writer", golden);
            writeBlock(store, "writer", 0, 8);
            long substitute = substituteOf(store, goldenBlockFive);
            assertNotEquals(0, substitute, "the writer's leaf shares a copy of the saturated block");
            assertEquals(substitute, physical(store, "writer", 5));

            writeBlock(store, "writer", 5, 9); // only the writer holds the copy: it is written in place
            assertEquals(substitute, physical(store, "writer", 5), "written in place");
            assertEquals(0, substituteOf(store, goldenBlockFive),
                    "a copy written in place is no longer a substitute");

            store.clone("reader", golden);
            writeBlock(store, "reader", 0, 10);
            assertNotEquals(substitute, physical(store, "reader", 5));
            assertEquals(expectedGolden(5), readBlock(store, "reader", 5), "the reader sees the golden image");
            assertEquals(9, readBlock(store, "writer", 5));
            store.commit();
            assertClean(store, "after the in-place write");
        }
    }

    @Test
    void aLeafCopyItsFirstHolderChangesInPlaceOrMovesIsNotSharedAgain() {
        try (Store store = storeWithLimit(3)) {
            String golden = goldenImage(store);
            long goldenLeafOne = leafOf(store, "golden", LEAF_ONE_BLOCK);
            saturate(store, golden, goldenLeafOne); // each written clone copies its root, sharing the golden leaves

            // Changed in place: copied for the writer in this transaction, then written through at once.
            store.clone("inPlace", golden);
            writeBlock(store, "inPlace", 0, 8);
            long copy = substituteOf(store, goldenLeafOne);
            assertNotEquals(0, copy);
            assertEquals(copy, leafOf(store, "inPlace", LEAF_ONE_BLOCK));
            assertEquals(1, count(store, copy), "only its first holder has it");
            writeBlock(store, "inPlace", LEAF_ONE_BLOCK + 1, 9);
            assertEquals(copy, leafOf(store, "inPlace", LEAF_ONE_BLOCK), "the leaf changed in place");
            assertEquals(0, substituteOf(store, goldenLeafOne), "a copy changed in place is no longer a substitute");

            // Moved: a fresh copy for the next clone, committed, then written through (a durable node with one
            // reference moves: its shadow takes over its children's references).
            store.clone("mover", golden);
            writeBlock(store, "mover", 0, 11);
            long moved = substituteOf(store, goldenLeafOne);
            assertNotEquals(0, moved);
            assertNotEquals(copy, moved);
            assertEquals(moved, leafOf(store, "mover", LEAF_ONE_BLOCK));
            assertEquals(1, count(store, moved));
            store.commit();
            writeBlock(store, "mover", LEAF_ONE_BLOCK + 2, 12);
            assertNotEquals(moved, leafOf(store, "mover", LEAF_ONE_BLOCK), "the durable leaf moved");
            assertEquals(0, substituteOf(store, goldenLeafOne), "a moved copy is no longer a substitute");

            store.clone("reader", golden);
            writeBlock(store, "reader", 0, 10);
            long readerLeaf = leafOf(store, "reader", LEAF_ONE_BLOCK);
            assertNotEquals(copy, readerLeaf);
            assertNotEquals(moved, readerLeaf);
            assertEquals(0, readBlock(store, "reader", LEAF_ONE_BLOCK + 1), "the reader's leaf has no block 601");
            assertEquals(0, readBlock(store, "reader", LEAF_ONE_BLOCK + 2), "nor block 602");
            store.commit();
            assertClean(store, "after the moves");

            store.deleteVdi("mover", false);
            store.commit();
            for (String name : List.of("reader", "inPlace")) {
                assertEquals(expectedGolden(LEAF_ONE_BLOCK), readBlock(store, name, LEAF_ONE_BLOCK));
            }
            assertEquals(9, readBlock(store, "inPlace", LEAF_ONE_BLOCK + 1));
            assertClean(store, "after deleting the mover");
        }
    }

    /** A test's limit lowers the format's and never raises it: the counters of a store hold only its format's maximum. */
    @ParameterizedTest
    @CsvSource({"NARROW, 2, 2", "NARROW, 254, 254", "NARROW, 255, 255", "NARROW, 256, 255", "NARROW, 65535, 255",
            "WIDE, 16, 16", "WIDE, 1000, 1000", "WIDE, 65535, 65535"})
    void aTestLimitOnlyLowersTheFormatsLimit(CounterEncoding encoding, int optionLimit, int limit) {
        ReopenableMemoryDevice device = new ReopenableMemoryDevice();
        StoreOptions options = StoreOptions.defaults().withMaxRefcount(optionLimit);
        try (Store store = Store.format(device, STORE_BYTES, EXTENT_BLOCKS, options, java.util.UUID.randomUUID(), encoding)) {
            assertEquals(limit, (int) store.inspect(internals -> internals.space().maxRefcount()));
        }
        try (Store reopened = Store.open(device.reopen(), null, options)) {
            assertEquals(encoding, reopened.geometry().counterEncoding());
            assertEquals(limit, (int) reopened.inspect(internals -> internals.space().maxRefcount()), "after a reopen");
        }
    }

    private static Store storeWithLimit(int limit) {
        return Store.format(new ReopenableMemoryDevice(), STORE_BYTES, EXTENT_BLOCKS, StoreOptions.defaults().withMaxRefcount(limit));
    }

    /** Clones {@code golden} and writes block 0 of each clone ("fill0", "fill1", ...) until {@code block} is saturated. */
    private static void saturate(Store store, String golden, long block) {
        int limit = store.inspect(internals -> internals.space().maxRefcount());
        for (int clone = 0; count(store, block) < limit; clone++) {
            store.clone("fill" + clone, golden);
            writeBlock(store, "fill" + clone, 0, 7);
        }
    }

    /** Makes disk "golden" with {@link #GOLDEN_BLOCKS} written and returns its snapshot's reference. */
    private static String goldenImage(Store store) {
        store.create("golden", DISK_BYTES);
        for (long block : GOLDEN_BLOCKS) {
            writeBlock(store, "golden", block, expectedGolden(block));
        }
        return store.snapshot("golden", "gold").reference();
    }

    private static long expectedGolden(long block) {
        return 100 + block;
    }

    private static long saturatedCopies(Store store) {
        return store.inspect(internals -> internals.trees().saturatedCopies());
    }

    private static int ceilDiv(int dividend, int divisor) {
        return Math.max(0, Math.ceilDiv(dividend, divisor));
    }

    private static int substituteCount(Store store) {
        return store.inspect(internals -> internals.trees().substituteCount());
    }

    private static long substituteOf(Store store, long block) {
        return store.inspect(internals -> internals.trees().substituteOf(block));
    }

    private static int count(Store store, long block) {
        return store.inspect(internals -> internals.space().count(block));
    }

    private static void verifyGolden(Store store, String name) {
        for (long block : GOLDEN_BLOCKS) {
            assertEquals(expectedGolden(block), readBlock(store, name, block), name + " block " + block);
        }
    }

    /** Clone i of {@code names} holds 1,000,000 + {@code offset} + i in block 0 and the golden image elsewhere. */
    private static void verifyClones(Store store, List<String> names, long offset) {
        for (int i = 0; i < names.size(); i++) {
            String name = names.get(i);
            assertEquals(1_000_000 + i + offset, readBlock(store, name, 0), name + " block 0");
            for (int j = 1; j < GOLDEN_BLOCKS.length; j++) {
                long block = GOLDEN_BLOCKS[j];
                assertEquals(expectedGolden(block), readBlock(store, name, block), name + " block " + block);
            }
        }
    }

    private static void writeBlock(Store store, String name, long block, long value) {
        try (Volume volume = store.openVolume(name)) {
            volume.write(block * BLOCK_BYTES, ByteBuffer.allocate(BLOCK_BYTES).putLong(0, value).putLong(BLOCK_BYTES - 8, value), false);
        }
    }

    private static long readBlock(Store store, String name, long block) {
        ByteBuffer buffer = ByteBuffer.allocate(BLOCK_BYTES);
        try (Volume volume = store.openVolume(name)) {
            volume.read(block * BLOCK_BYTES, buffer);
        }
        assertEquals(buffer.getLong(0), buffer.getLong(BLOCK_BYTES - 8), name + " block " + block + " is whole");
        return buffer.getLong(0);
    }

    private static long physical(Store store, String name, long block) {
        return Pointer.blockOf(leafEntry(store, name, block, 1));
    }

    private static long leafOf(Store store, String name, long block) {
        return Pointer.blockOf(leafEntry(store, name, block, 2));
    }

    /** The pointer that {@code level} (1 = the leaf's entry for the block, 2 = the root's entry for its leaf) holds. */
    private static long leafEntry(Store store, String name, long block, int level) {
        long id = store.listVdis(false).stream().filter(vdi -> vdi.name().equals(name)).findFirst().orElseThrow().id();
        return store.inspect(internals -> {
            var root = internals.vdiRoots().get(id);
            TreeSpace trees = internals.trees();
            return level == 1 ? trees.lookup(root.root(), root.height(), block)
                    : trees.nodes().pointers(root.root(), root.height())[TreeSpace.slotAt(block, root.height())];
        });
    }

    private static void assertClean(Store store, String context) {
        CheckReport report = Checker.check(store);
        assertTrue(report.clean(), () -> context + ": " + report.summary());
    }
}
