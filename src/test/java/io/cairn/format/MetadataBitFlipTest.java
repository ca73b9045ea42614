package io.cairn.format;

import io.cairn.io.CorruptionException;
import io.cairn.io.MemoryBlockDevice;
import io.cairn.tree.Node;
import io.cairn.tree.RootRef;
import io.cairn.tree.TreeSpace;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A store with one bit flipped in any table page or radix node: opening it reports damage naming that
 * block (and the store stays read-only), or reading fails with a CorruptionException naming it; no
 * read ever returns wrong data.
 */
class MetadataBitFlipTest {

    private static final int BLOCK = Layout.BLOCK_BYTES;
    private static final MemoryBlockDevice IMAGE;
    private static final List<Long> METADATA_BLOCKS;
    private static final Map<String, byte[]> EXPECTED = new LinkedHashMap<>();

    static {
        KeepOpenDevice device = new KeepOpenDevice();
        Store store = Store.format(device, 2L << 20, 64, StoreOptions.defaults());
        store.create("a", 4L << 20);
        byte[] a = new byte[4 << 20];
        write(store, a, 0, GoldenStoreGenerator.pattern("a", 0, 3 * BLOCK));
        write(store, a, 700 * BLOCK, GoldenStoreGenerator.pattern("a", 700 * BLOCK, BLOCK));
        store.snapshot("a", "s");
        EXPECTED.put("a@s", a.clone());
        store.clone("c", "a@s");
        EXPECTED.put("c", a.clone());
        write(store, a, BLOCK, GoldenStoreGenerator.pattern("a2", BLOCK, BLOCK));
        EXPECTED.put("a", a);
        store.close();
        IMAGE = device.memory;
        try (Store reopened = Store.open(IMAGE.copy(), null, StoreOptions.defaults().withReadOnly(true))) {
            METADATA_BLOCKS = List.copyOf(reopened.inspect(internals -> {
                TreeSet<Long> blocks = new TreeSet<>();
                for (RootRef root : internals.tableRoots()) {
                    collect(internals.trees(), root.root(), root.height(), true, blocks);
                }
                for (RootRef root : internals.vdiRoots().values()) {
                    collect(internals.trees(), root.root(), root.height(), false, blocks);
                }
                for (RootRef root : internals.snapshotRoots().values()) {
                    collect(internals.trees(), root.root(), root.height(), false, blocks);
                }
                return blocks;
            }));
        }
    }

    @Property(tries = 200)
    void aFlippedBitInATablePageOrRadixNodeIsNamedNeverRead(@ForAll("metadataBlocks") long block,
                                                            @ForAll @IntRange(min = 0, max = BLOCK * 8 - 1) int bit) {
        MemoryBlockDevice damaged = IMAGE.copy();
        ByteBuffer image = FormatImages.readBlock(damaged, block);
        FormatImages.flipBit(image, bit);
        FormatImages.writeBlock(damaged, block, image);

        List<String> detections = new ArrayList<>();
        try (Store store = Store.open(damaged, null, StoreOptions.defaults().withReadOnly(true))) {
            if (!store.damage().isEmpty()) {
                // Damage found while opening: the store says so, naming the block, and stays read-only.
                assertTrue(store.damage().getFirst().contains("block " + block + ":"), store.damage().toString());
                assertTrue(store.readOnly());
                detections.add("open");
            }
            for (Map.Entry<String, byte[]> export : EXPECTED.entrySet()) {
                try (Volume volume = store.openVolume(export.getKey())) {
                    ByteBuffer content = ByteBuffer.allocate(export.getValue().length);
                    volume.read(0, content);
                    assertArrayEquals(export.getValue(), content.array(), export.getKey() + " read wrong data");
                } catch (CorruptionException detected) {
                    assertEquals(block, detected.blockNumber(), detected.getMessage());
                    detections.add(export.getKey());
                } catch (java.util.NoSuchElementException missing) {
                    assertTrue(!store.damage().isEmpty(), export.getKey() + " vanished with no damage reported");
                }
            }
        } catch (CorruptionException detected) {
            assertEquals(block, detected.blockNumber(), detected.getMessage());
            detections.add("open");
        }
        assertTrue(!detections.isEmpty(), "bit " + bit + " of block " + block + " flipped without anyone noticing");
    }

    @Provide
    Arbitrary<Long> metadataBlocks() {
        return Arbitraries.of(METADATA_BLOCKS);
    }

    /** Node blocks of a tree and, for a system table, its pages (a disk's leaves are data, not metadata). */
    private static void collect(TreeSpace trees, long block, int level, boolean leavesAreMetadata, TreeSet<Long> blocks) {
        if (block == 0 || !blocks.add(block)) {
            return;
        }
        Node node = trees.node(block, level);
        for (int slot = 0; slot < Layout.POINTERS_PER_NODE; slot++) {
            long pointer = node.pointer(slot);
            if (Pointer.isHole(pointer)) {
                continue;
            }
            if (level > 1) {
                collect(trees, Pointer.blockOf(pointer), level - 1, leavesAreMetadata, blocks);
            } else if (leavesAreMetadata) {
                blocks.add(Pointer.blockOf(pointer));
            }
        }
    }

    private static void write(Store store, byte[] model, long offset, byte[] bytes) {
        try (Volume volume = store.openVolume("a")) {
            volume.write(offset, ByteBuffer.wrap(bytes), false);
        }
        System.arraycopy(bytes, 0, model, (int) offset, bytes.length);
    }
}
