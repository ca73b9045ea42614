package io.cairn.format;

import io.cairn.tree.RootRef;
import io.cairn.volume.MappedRange;
import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.VdiInfo;
import io.cairn.volume.Volume;
import io.cairn.format.GoldenStoreGenerator.Image;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPInputStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Opens the golden stores of format version 1 written by {@link GoldenStoreGenerator}, with 2-byte counters
 * and with 1-byte counters (incompatible feature bit 0), and checks everything in them. A change to the code
 * that can no longer read a version 1 store of either encoding fails here; the fix is never to regenerate an
 * image (see the generator).
 */
class GoldenStoreTest {

    private static final int BLOCK = Layout.BLOCK_BYTES;

    @TempDir
    Path directory;

    @ParameterizedTest
    @EnumSource(Image.class)
    void theImageIsSmall(Image golden) throws IOException {
        try (InputStream compressed = GoldenStoreTest.class.getResourceAsStream(golden.resource)) {
            assertNotNull(compressed, "missing test resource " + golden.resource);
            assertTrue(compressed.readAllBytes().length < 100 << 10, "keep the golden image under 100 KiB");
        }
    }

    @ParameterizedTest
    @EnumSource(Image.class)
    void superblockSlotsOfVersion1(Image golden) throws IOException {
        byte[] image = unpackedBytes(golden);
        ByteBuffer slotA = ByteBuffer.wrap(image, 0, BLOCK).slice();
        ByteBuffer slotB = ByteBuffer.wrap(image, BLOCK, BLOCK).slice();
        Superblock a = Superblock.decode(slotA, 0);
        Superblock b = Superblock.decode(slotB, 1);
        assertEquals(4, a.generation());
        // The image of 2-byte counters predates the copy of each commit into the other slot (FORMAT.md
        // section 5, step 5): its slot B still holds generation 3. Either way slot A is the store.
        assertEquals(golden.encoding == CounterEncoding.WIDE ? 3 : 4, b.generation());
        for (Superblock superblock : List.of(a, b)) {
            assertEquals(GoldenStoreGenerator.STORE_ID, superblock.storeId());
            assertEquals(golden.encoding.incompatibleFeature(), superblock.incompatibleFeatures());
            assertEquals(golden.encoding, superblock.counterEncoding());
            // The image of 2-byte counters also predates snapshot sketches (compatible feature bit 0).
            assertEquals(golden.encoding == CounterEncoding.WIDE ? 0 : Superblock.FEATURE_SNAPSHOT_SKETCHES,
                    superblock.compatibleFeatures());
            assertEquals(GoldenStoreGenerator.EXTENT_BLOCKS, superblock.extentBlocks());
            assertEquals(GoldenStoreGenerator.STORE_BYTES / BLOCK, superblock.storeBlocks());
        }
        assertEquals(5, a.nextVdiId());
        assertEquals(3, a.nextSnapshotId());
        assertEquals(1, image[Layout.HEADER_VERSION], "format version 1, low byte");
        assertEquals(0, image[Layout.HEADER_VERSION + 1]);
    }

    /**
     * The counter slots hold each counter in the encoding's width: the bytes of every current slot, read
     * straight from the image, are the counters the store loads.
     */
    @ParameterizedTest
    @EnumSource(Image.class)
    void counterSlotsHoldTheEncodingsBytes(Image golden) throws IOException {
        byte[] image = unpackedBytes(golden);
        Path store = unpack(golden);
        try (Store opened = Store.openFile(store, StoreOptions.defaults().withReadOnly(true))) {
            StoreGeometry geometry = opened.geometry();
            assertEquals(golden.encoding, geometry.counterEncoding());
            assertEquals(1, geometry.counterBlocksPerExtent(), "64-block extents: one counter block");
            long generation = opened.durableGeneration();
            int checked = 0;
            for (int extent = 0; extent < geometry.extentCount(); extent++) {
                int held = extent;
                char[] loaded = opened.inspect(internals -> internals.space().copyCounters(held));
                if (loaded == null) {
                    continue; // a free extent: no counters on disk
                }
                ByteBuffer current = null;
                for (int slot = 0; slot < 2; slot++) {
                    long block = geometry.counterSlotBlock(extent, 0, slot);
                    ByteBuffer slotImage = ByteBuffer.wrap(image, (int) block * BLOCK, BLOCK).slice().order(ByteOrder.LITTLE_ENDIAN);
                    if (BlockHeader.isValid(slotImage, Layout.MAGIC_REFCOUNT, block) && BlockHeader.generation(slotImage) <= generation
                            && (current == null || BlockHeader.generation(slotImage) > BlockHeader.generation(current))) {
                        current = slotImage;
                    }
                }
                assertNotNull(current, "extent " + extent + " has a current counter slot");
                for (int offset = 0; offset < geometry.extentBlocks(); offset++) {
                    int onDisk = golden.encoding == CounterEncoding.WIDE
                            ? Short.toUnsignedInt(current.getShort(Layout.HEADER_BYTES + 2 * offset))
                            : Byte.toUnsignedInt(current.get(Layout.HEADER_BYTES + offset));
                    assertEquals(loaded[offset], onDisk, "extent " + extent + " offset " + offset);
                }
                int usedBytes = geometry.extentBlocks() * golden.encoding.counterBytes();
                for (int at = Layout.HEADER_BYTES + usedBytes; at < BLOCK; at++) {
                    assertEquals(0, current.get(at), "counters past the extent's end are zero, byte " + at);
                }
                checked++;
            }
            assertTrue(checked >= 2, "the system extent and at least one data extent, checked " + checked);
        }
    }

    @ParameterizedTest
    @EnumSource(Image.class)
    void readsEverythingInTheVersion1Store(Image golden) throws IOException {
        Path store = unpack(golden);
        String before = FormatImages.sha256(store);
        try (Store opened = Store.openFile(store, StoreOptions.defaults().withReadOnly(true))) {
            assertEquals(GoldenStoreGenerator.STORE_ID, opened.storeId());
            assertEquals(4, opened.durableGeneration());
            assertEquals(1024, opened.geometry().storeBlocks());
            assertEquals(64, opened.geometry().extentBlocks());
            assertVdis(opened);
            assertContent(opened, GoldenStoreGenerator.expectedContent());
            assertEquals(List.of(
                            // alpha@v1 shares what alpha has not rewritten since (blocks 0, 2, 3).
                            new MappedRange(0, BLOCK, MappedRange.State.SHARED),
                            new MappedRange(BLOCK, BLOCK, MappedRange.State.OWNED),
                            new MappedRange(2 * BLOCK, 2 * BLOCK, MappedRange.State.SHARED),
                            new MappedRange(4 * BLOCK, (256 - 5) * BLOCK, MappedRange.State.HOLE),
                            new MappedRange(255 * BLOCK, BLOCK, MappedRange.State.OWNED)),
                    mapping(opened, "alpha"));
            Map<Long, RootRef> roots = opened.inspect(internals -> internals.vdiRoots());
            assertEquals(1, roots.get(1L).height(), "alpha: 1 MiB needs one level");
            assertEquals(2, roots.get(2L).height(), "beta: 3 MiB needs two");
            assertEquals(1, roots.get(4L).height(), "gamma inherits alpha@v1's height");
            assertEquals(StoreRecount.references(opened), StoreRecount.counters(opened));
        }
        assertEquals(before, FormatImages.sha256(store), "a read-only open changes nothing");
    }

    @ParameterizedTest
    @EnumSource(Image.class)
    void aVersion1StoreStaysWritable(Image golden) throws IOException {
        Path store = unpack(golden);
        Map<String, byte[]> expected = GoldenStoreGenerator.expectedContent();
        byte[] update = GoldenStoreGenerator.pattern("upgrade", 5 * BLOCK, 3 * BLOCK);
        try (Store opened = Store.openFile(store, StoreOptions.defaults())) {
            opened.snapshot("gamma", "before");
            try (Volume volume = opened.openVolume("gamma")) {
                volume.write(5 * BLOCK, ByteBuffer.wrap(update), true);
            }
            opened.clone("delta", "beta@" + opened.snapshot("beta", "b1").id());
            opened.deleteVdi("alpha", true);
        }
        try (Store reopened = Store.openFile(store, StoreOptions.defaults().withReadOnly(true))) {
            byte[] gamma = expected.get("gamma").clone();
            System.arraycopy(update, 0, gamma, 5 * BLOCK, update.length);
            assertContent(reopened, Map.of(
                    "gamma", gamma,
                    "gamma@before", expected.get("gamma"),
                    "beta", expected.get("beta"),
                    "delta", expected.get("beta")));
            assertEquals(List.of("beta", "gamma", "delta"), reopened.listVdis(false).stream().map(VdiInfo::name).toList());
            assertEquals(StoreRecount.references(reopened), StoreRecount.counters(reopened));
            assertEquals(golden.encoding, reopened.geometry().counterEncoding(), "writing keeps the store's encoding");
        }
    }

    private static void assertVdis(Store store) {
        List<VdiInfo> vdis = store.listVdis(true);
        assertEquals(List.of("alpha", "beta", "doomed", "gamma"), vdis.stream().map(VdiInfo::name).toList());
        assertEquals(List.of(1L, 2L, 3L, 4L), vdis.stream().map(VdiInfo::id).toList());
        assertEquals(List.of(1L << 20, 3L << 20, 64L << 10, 1L << 20), vdis.stream().map(VdiInfo::sizeBytes).toList());
        assertEquals(List.of(false, false, true, false), vdis.stream().map(VdiInfo::deleted).toList());
        assertEquals(List.of(0L, 0L, 0L, 1L), vdis.stream().map(VdiInfo::parentSnapshotId).toList());
        assertEquals("alpha@1", vdis.get(3).parentName());
        assertEquals(1, vdis.get(0).snapshotCount());
        assertEquals(List.of("alpha", "beta", "gamma"), store.listVdis(false).stream().map(VdiInfo::name).toList());

        List<SnapshotInfo> alphaSnapshots = store.snapshots("alpha");
        assertEquals(1, alphaSnapshots.size());
        assertEquals("v1", alphaSnapshots.getFirst().label());
        assertEquals(1, alphaSnapshots.getFirst().id());
        List<SnapshotInfo> all = store.allSnapshots();
        assertEquals(2, all.size());
        assertEquals("tmp", all.get(1).label());
        assertTrue(all.get(1).deleted());
        assertEquals(1L << 20, all.get(0).sizeBytes());
    }

    private static void assertContent(Store store, Map<String, byte[]> expected) {
        for (Map.Entry<String, byte[]> export : expected.entrySet()) {
            try (Volume volume = store.openVolume(export.getKey())) {
                assertEquals(export.getValue().length, volume.sizeBytes(), export.getKey());
                ByteBuffer content = ByteBuffer.allocate(export.getValue().length);
                volume.read(0, content);
                int mismatch = Arrays.mismatch(export.getValue(), content.array());
                assertEquals(-1, mismatch, export.getKey() + " differs first at byte " + mismatch);
            }
        }
    }

    private static List<MappedRange> mapping(Store store, String name) {
        try (Volume volume = store.openVolume(name)) {
            return volume.mapping(0, volume.sizeBytes());
        }
    }

    private static byte[] unpackedBytes(Image golden) throws IOException {
        try (InputStream compressed = GoldenStoreTest.class.getResourceAsStream(golden.resource)) {
            assertNotNull(compressed, "missing test resource " + golden.resource);
            return new GZIPInputStream(compressed).readAllBytes();
        }
    }

    private Path unpack(Image golden) throws IOException {
        Path store = directory.resolve(golden.name() + ".img");
        Files.write(store, unpackedBytes(golden));
        return store;
    }
}
