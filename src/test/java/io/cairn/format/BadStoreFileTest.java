package io.cairn.format;

import io.cairn.io.CorruptionException;
import io.cairn.io.StorageException;
import io.cairn.tree.RootRef;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Store files that are not what they should be. Each is refused with a message that says what is
 * wrong, and refusing it writes nothing: the file's bytes are the same before and after.
 */
class BadStoreFileTest {

    private static final int BLOCK = Layout.BLOCK_BYTES;
    private static final long STORE_BYTES = 2L << 20;
    private static final byte[] FIRST = GoldenStoreGenerator.pattern("first", 0, 2 * BLOCK);
    private static final byte[] SECOND = GoldenStoreGenerator.pattern("second", 600 * BLOCK, BLOCK);

    @TempDir
    Path directory;

    private Path store;

    /** A 2 MiB store with a 4 MiB disk "a" (two tree levels): blocks 0 and 1 and block 600 written. */
    @BeforeEach
    void createStore() {
        store = directory.resolve("store");
        try (Store created = Store.formatFile(store, STORE_BYTES, 64, StoreOptions.defaults())) {
            created.create("a", 4L << 20);
            try (Volume volume = created.openVolume("a")) {
                volume.write(0, ByteBuffer.wrap(FIRST), false);
                volume.write(600 * BLOCK, ByteBuffer.wrap(SECOND), false);
            }
        }
    }

    // ---------------------------------------------------------------- not a store

    @Test
    void aFileOfRandomBytesIsNotAStore() throws IOException {
        byte[] noise = new byte[64 << 10];
        new Random(7).nextBytes(noise);
        Files.write(store, noise);
        StorageException failure = refused(StorageException.class, () -> open(store));
        assertEquals(StorageException.Code.CORRUPT, failure.code());
        assertEquals("not a Cairn store: no superblock signature in blocks 0 and 1 (wrong file, or never formatted)",
                failure.getMessage());
    }

    @Test
    void aFileOfZerosIsNotAStore() throws IOException {
        Files.write(store, new byte[1 << 20]);
        StorageException failure = refused(StorageException.class, () -> open(store));
        assertTrue(failure.getMessage().startsWith("not a Cairn store: no superblock signature"), failure.getMessage());
    }

    @Test
    void aTinyOrEmptyFileIsNotAStore() throws IOException {
        Files.write(store, "hello".getBytes(StandardCharsets.US_ASCII));
        assertEquals("not a Cairn store: the device holds only 5 bytes",
                refused(StorageException.class, () -> open(store)).getMessage());
        Files.write(store, new byte[0]);
        assertEquals("not a Cairn store: the device holds only 0 bytes",
                refused(StorageException.class, () -> open(store)).getMessage());
    }

    @Test
    void wrongMagicInBothSlotsIsNotAStore() throws IOException {
        for (long slot = 0; slot < 2; slot++) {
            ByteBuffer image = readBlock(slot);
            image.putInt(Layout.HEADER_MAGIC, Layout.magic("QFI\u00fb"));
            FormatImages.resealHeader(image);
            writeBlock(slot, image);
        }
        StorageException failure = refused(StorageException.class, () -> open(store));
        assertTrue(failure.getMessage().startsWith("not a Cairn store: no superblock signature"), failure.getMessage());
    }

    @Test
    void aMissingFileIsNamed() {
        Path missing = directory.resolve("nothing-here");
        IllegalArgumentException failure = assertThrows(IllegalArgumentException.class, () -> open(missing));
        assertTrue(failure.getMessage().startsWith("no store at " + missing), failure.getMessage());
        assertTrue(Files.notExists(missing));
    }

    // ---------------------------------------------------------------- feature flags

    @Test
    void anUnknownIncompatibleFeatureAsksForAnUpgrade() throws IOException {
        long newest = newestSlot();
        ByteBuffer image = readBlock(newest);
        image.putLong(40, 1L << 17);
        FormatImages.resealHeader(image);
        writeBlock(newest, image);
        UnsupportedFormatException failure = refused(UnsupportedFormatException.class, () -> open(store));
        assertEquals("the store uses incompatible features 0x20000 that this version of Cairn does not know; upgrade Cairn",
                failure.getMessage());
    }

    @Test
    void narrowCountersAreAKnownIncompatibleFeatureOtherBitsAreNot() throws IOException {
        long newest = newestSlot();
        ByteBuffer image = readBlock(newest);
        assertEquals(Superblock.FEATURE_NARROW_COUNTERS, image.getLong(40), "a new store has 1-byte counters");
        image.putLong(40, Superblock.FEATURE_NARROW_COUNTERS | 1L << 3);
        FormatImages.resealHeader(image);
        writeBlock(newest, image);
        UnsupportedFormatException failure = refused(UnsupportedFormatException.class, () -> open(store));
        assertEquals("the store uses incompatible features 0x8 that this version of Cairn does not know; upgrade Cairn",
                failure.getMessage(), "bit 0 is known, so only bit 3 is named");
    }

    @Test
    void anUnknownCompatibleFeatureIsIgnoredAndKept() throws IOException {
        // A writer that knew the feature would have set it in both slots (a commit writes both).
        for (long slot = 0; slot < 2; slot++) {
            ByteBuffer image = readBlock(slot);
            image.putLong(48, 1L << 40);
            FormatImages.resealHeader(image);
            writeBlock(slot, image);
        }
        String before = FormatImages.sha256(store);
        try (Store opened = Store.openFile(store, StoreOptions.defaults().withReadOnly(true))) {
            assertArrayEquals(FIRST, read(opened, 0, FIRST.length));
        }
        assertEquals(before, FormatImages.sha256(store));
        try (Store opened = open(store)) {
            write(opened, 2 * BLOCK, FIRST);
        }
        try (Store opened = open(store)) {
            // ... and adds the one it maintains itself (snapshot sketches).
            assertEquals(1L << 40 | Superblock.FEATURE_SNAPSHOT_SKETCHES,
                    (long) opened.inspect(internals -> internals.durableSuperblock().compatibleFeatures()),
                    "a writer carries compatible features it does not know over to its commits");
            assertArrayEquals(FIRST, read(opened, 2 * BLOCK, FIRST.length));
        }
    }

    // ---------------------------------------------------------------- damage

    @Test
    void aTruncatedStoreSaysHowMuchIsMissing() throws IOException {
        try (RandomAccessFile file = new RandomAccessFile(store.toFile(), "rw")) {
            file.setLength(STORE_BYTES - 3 * BLOCK);
        }
        StorageException failure = refused(StorageException.class, () -> open(store));
        assertEquals(StorageException.Code.CORRUPT, failure.code());
        assertEquals("truncated store: the device has " + (STORE_BYTES - 3 * BLOCK) + " bytes but the store needs "
                + STORE_BYTES, failure.getMessage());
    }

    @Test
    void bothSuperblockSlotsDamaged() throws IOException {
        flipBit(0, 100 * 8 + 3);
        flipBit(1, 2000 * 8);
        CorruptionException failure = refused(CorruptionException.class, () -> open(store));
        assertEquals(0, failure.blockNumber());
        assertTrue(failure.getMessage().startsWith("corrupt metadata in block 0: checksum mismatch"), failure.getMessage());
    }

    @Test
    void aDamagedNewestSlotFallsBackToTheOlderCommit() throws IOException {
        Path beforeCommit = directory.resolve("before");
        Path crashed = directory.resolve("crashed");
        long generation;
        try (Store opened = open(store)) {
            Files.copy(store, beforeCommit, StandardCopyOption.REPLACE_EXISTING);
            write(opened, 2 * BLOCK, SECOND);
            opened.commit();
            generation = opened.durableGeneration();
            Files.copy(store, crashed, StandardCopyOption.REPLACE_EXISTING);
        }
        // The power failed while the commit's own slot was written: it landed garbled, and the copy into
        // the other slot, written only after it, never happened (that slot still holds the older commit).
        long own = Superblock.slotFor(generation);
        long other = Superblock.otherSlot(generation);
        try (RandomAccessFile file = new RandomAccessFile(crashed.toFile(), "rw");
             RandomAccessFile old = new RandomAccessFile(beforeCommit.toFile(), "r")) {
            byte[] previous = new byte[BLOCK];
            old.seek(other * BLOCK);
            old.readFully(previous);
            file.seek(other * BLOCK);
            file.write(previous);
            file.seek(own * BLOCK + 64); // a few garbled bytes in the slot's fields
            file.write(new byte[] {1, 2, 3});
        }
        try (Store opened = Store.openFile(crashed, StoreOptions.defaults().withReadOnly(true))) {
            assertTrue(opened.durableGeneration() < generation, "opened at " + opened.durableGeneration());
            assertArrayEquals(FIRST, read(opened, 0, FIRST.length), "the older commit's data");
            assertArrayEquals(SECOND, read(opened, 600 * BLOCK, SECOND.length));
            byte[] third = read(opened, 2 * BLOCK, BLOCK);
            assertArrayEquals(new byte[BLOCK], third, "the damaged commit's write is not there");
            assertCountersCoverReferences(opened);
        }
    }

    @Test
    void aDecayedSlotIsCoveredByItsCopyAndLosesNothing() throws IOException {
        long generation;
        try (Store opened = open(store)) {
            write(opened, 2 * BLOCK, SECOND);
            opened.commit();
            generation = opened.durableGeneration();
        }
        try (RandomAccessFile file = new RandomAccessFile(store.toFile(), "r")) {
            assertEquals(generationOf(file, 0), generationOf(file, 1), "a settled store has the commit in both slots");
        }
        try (RandomAccessFile file = new RandomAccessFile(store.toFile(), "rw")) {
            file.seek(Superblock.slotFor(generation) * BLOCK + 64);
            file.write(new byte[] {1, 2, 3});
        }
        try (Store opened = Store.openFile(store, StoreOptions.defaults().withReadOnly(true))) {
            assertTrue(opened.durableGeneration() >= generation);
            assertArrayEquals(SECOND, read(opened, 2 * BLOCK, SECOND.length), "the last commit survived");
            assertCountersCoverReferences(opened);
        }
    }

    @Test
    void aBitFlipInTheVdiTablePageIsNamed() throws IOException {
        long page = vdiTablePage();
        for (int bit : new int[] {3, 40 * 8 + 1, (32 + 128) * 8 + 6, BLOCK * 8 - 1}) {
            flipBit(page, bit);
            String before = FormatImages.sha256(store);
            try (Store opened = Store.openFile(store, StoreOptions.defaults())) {
                // It opens, read-only, and says which block is damaged; the disks on that page are missing.
                assertTrue(opened.readOnly());
                assertEquals(1, opened.damage().size(), opened.damage().toString());
                assertTrue(opened.damage().getFirst().contains("block " + page + ":"), opened.damage().toString());
                StorageException refusal = assertThrows(StorageException.class, () -> opened.create("new", BLOCK));
                assertEquals(StorageException.Code.READ_ONLY, refusal.code());
                assertTrue(refusal.getMessage().contains("block " + page), refusal.getMessage());
            }
            assertEquals(before, FormatImages.sha256(store), "a damaged store is never written");
            flipBit(page, bit);
        }
        try (Store opened = open(store)) {
            assertArrayEquals(FIRST, read(opened, 0, FIRST.length), "undoing the flips repairs the store");
        }
    }

    @Test
    void aBitFlipInARadixNodeFailsTheReadNeverReturnsWrongData() throws IOException {
        long[] nodes = leafNodes();
        long leafOfBlock0 = nodes[0];
        flipBit(leafOfBlock0, 5 * 64 + 13); // entry 5's pointer bits
        String before = FormatImages.sha256(store);
        try (Store opened = open(store)) {
            assertArrayEquals(SECOND, read(opened, 600 * BLOCK, SECOND.length), "the other leaf node is intact");
            CorruptionException failure = assertThrows(CorruptionException.class, () -> read(opened, 0, BLOCK));
            assertEquals(leafOfBlock0, failure.blockNumber());
            assertTrue(failure.getMessage().contains("radix node checksum mismatch"), failure.getMessage());
            StorageException refusal = assertThrows(StorageException.class, () -> write(opened, 600 * BLOCK, FIRST));
            assertEquals(StorageException.Code.READ_ONLY, refusal.code());
            assertTrue(refusal.getMessage().contains("block " + leafOfBlock0), refusal.getMessage());
        }
        assertEquals(before, FormatImages.sha256(store), "a store that found corruption writes nothing, not even at close");
    }

    // ---------------------------------------------------------------- owner lock

    @Test
    void aSecondOpenerInThisProcessIsRefused() throws IOException {
        try (Store first = open(store)) {
            String before = FormatImages.sha256(store);
            StorageException failure = assertThrows(StorageException.class, () -> open(store));
            assertEquals(StorageException.Code.LOCKED, failure.code());
            assertTrue(failure.getMessage().contains("in use by this process"), failure.getMessage());
            assertEquals(StorageException.Code.LOCKED, assertThrows(StorageException.class,
                    () -> Store.openFile(store, StoreOptions.defaults().withReadOnly(true))).code());
            assertEquals(before, FormatImages.sha256(store));
            assertArrayEquals(FIRST, read(first, 0, FIRST.length), "the first opener is unaffected");
        }
    }

    @Test
    void aSecondOpenerInAnotherProcessIsRefused() throws Exception {
        try (Store first = open(store)) {
            String childSays = runChild();
            assertTrue(childSays.startsWith("LOCKED "), childSays);
            assertTrue(childSays.contains("in use by another process"), childSays);
            assertArrayEquals(FIRST, read(first, 0, FIRST.length));
        }
        assertEquals("OPENED 1", runChild(), "closing the store releases it");
    }

    // ---------------------------------------------------------------- helpers

    private static Store open(Path path) {
        return Store.openFile(path, StoreOptions.defaults());
    }

    /** Asserts that opening fails with {@code type} and leaves every byte of the file as it was. */
    private <T extends Throwable> T refused(Class<T> type, Executable open) throws IOException {
        String before = FormatImages.sha256(store);
        T failure = assertThrows(type, open);
        assertEquals(before, FormatImages.sha256(store), "refusing the store changed its bytes");
        return failure;
    }

    private ByteBuffer readBlock(long block) throws IOException {
        byte[] bytes = new byte[BLOCK];
        try (RandomAccessFile file = new RandomAccessFile(store.toFile(), "r")) {
            file.seek(block * BLOCK);
            file.readFully(bytes);
        }
        return ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    }

    private void writeBlock(long block, ByteBuffer image) throws IOException {
        try (RandomAccessFile file = new RandomAccessFile(store.toFile(), "rw")) {
            file.seek(block * BLOCK);
            file.write(image.array());
        }
    }

    private void flipBit(long block, int bit) throws IOException {
        ByteBuffer image = readBlock(block);
        FormatImages.flipBit(image, bit);
        writeBlock(block, image);
    }

    private static long generationOf(RandomAccessFile file, long slot) throws IOException {
        byte[] bytes = new byte[BLOCK];
        file.seek(slot * BLOCK);
        file.readFully(bytes);
        return ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(Layout.HEADER_GENERATION);
    }

    private long newestSlot() throws IOException {
        try (RandomAccessFile file = new RandomAccessFile(store.toFile(), "r")) {
            return generationOf(file, 0) > generationOf(file, 1) ? 0 : 1;
        }
    }

    private long vdiTablePage() {
        try (Store opened = Store.openFile(store, StoreOptions.defaults().withReadOnly(true))) {
            return opened.inspect(internals -> {
                RootRef vdiTable = internals.tableRoots().get(1);
                assertEquals(1, vdiTable.height());
                return Pointer.blockOf(internals.trees().node(vdiTable.root(), 1).pointer(0));
            });
        }
    }

    /** The two leaf nodes of disk "a": the one mapping blocks 0..511 and the one mapping 512..1023. */
    private long[] leafNodes() {
        try (Store opened = Store.openFile(store, StoreOptions.defaults().withReadOnly(true))) {
            return opened.inspect(internals -> {
                RootRef root = internals.vdiRoots().values().iterator().next();
                assertEquals(2, root.height());
                long[] leaves = new long[2];
                for (int i = 0; i < 2; i++) {
                    leaves[i] = Pointer.blockOf(internals.trees().node(root.root(), 2).pointer(i));
                }
                return leaves;
            });
        }
    }

    private static void write(Store store, long offset, byte[] bytes) {
        try (Volume volume = store.openVolume("a")) {
            volume.write(offset, ByteBuffer.wrap(bytes), false);
        }
    }

    private static byte[] read(Store store, long offset, int length) {
        try (Volume volume = store.openVolume("a")) {
            ByteBuffer buffer = ByteBuffer.allocate(length);
            volume.read(offset, buffer);
            return buffer.array();
        }
    }

    /** After a crash the counters may exceed the references (removals not yet durable), never fall short. */
    private static void assertCountersCoverReferences(Store store) {
        Map<Long, Integer> references = StoreRecount.references(store);
        Map<Long, Integer> counters = StoreRecount.counters(store);
        for (Map.Entry<Long, Integer> reference : references.entrySet()) {
            int count = counters.getOrDefault(reference.getKey(), 0);
            assertTrue(count >= reference.getValue(), "block " + reference.getKey() + " has " + reference.getValue()
                    + " references but a count of " + count);
        }
    }

    private String runChild() throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process child = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
                StoreOpenChild.class.getName(), store.toString())
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start();
        child.getOutputStream().close();
        String output = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertTrue(child.waitFor(60, TimeUnit.SECONDS), "child did not exit");
        return output;
    }
}
