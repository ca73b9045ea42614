package io.cairn.volume;

import io.cairn.format.Layout;
import io.cairn.io.MemoryBlockDevice;
import io.cairn.tree.RootRef;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.ByteBuffer;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Caller mistakes: IllegalArgumentException with the values, and the store is left as it was. */
class StoreArgumentsTest {

    private static final long MIB = 1L << 20;

    private Store store;

    @BeforeEach
    void createStore() {
        store = Store.format(new MemoryBlockDevice(), 4 * MIB, 64, StoreOptions.defaults());
        store.create("disk", MIB);
        store.snapshot("disk", "base");
    }

    @AfterEach
    void closeStore() {
        store.close();
    }

    // ---------------------------------------------------------------- names and labels

    @ParameterizedTest
    @ValueSource(strings = {"", ".hidden", "-flag", "+x", "has space", "a/b", "a@b", "tab\there", "naïve", "x\u0000"})
    void invalidDiskNamesAreRefused(String name) {
        IllegalArgumentException failure = refused(() -> store.create(name, MIB));
        assertTrue(failure.getMessage().startsWith(name.isEmpty() ? "a disk name must not be empty" : "disk name '" + name + "'"),
                failure.getMessage());
        assertEquals(IllegalArgumentException.class, refused(() -> store.clone(name, "disk@base")).getClass());
    }

    @Test
    void diskNameLengthLimit() {
        String longest = "n".repeat(Names.MAX_NAME_CHARS);
        store.create(longest, MIB);
        IllegalArgumentException failure = refused(() -> store.create(longest + "n", MIB));
        assertEquals("disk name '" + longest + "n' is longer than 64 characters", failure.getMessage());
        assertEquals("a disk name must not be empty", refused(() -> store.create(null, MIB)).getMessage());
    }

    @Test
    void validDiskNames() {
        for (String name : new String[] {"a", "_", "0", "disk-1.raw", "vm_7+backup", "A.B-C_D+E"}) {
            store.create(name, MIB);
        }
        assertEquals(7, store.listVdis(false).size());
    }

    @ParameterizedTest
    @ValueSource(strings = {"123", "a@b", "a/b", "tab\there", "new\nline"})
    void invalidLabelsAreRefused(String label) {
        IllegalArgumentException failure = refused(() -> store.snapshot("disk", label));
        assertTrue(failure.getMessage().startsWith("label '" + label + "'"), failure.getMessage());
        assertEquals(IllegalArgumentException.class, refused(() -> store.label("disk@base", label)).getClass());
    }

    @Test
    void labelLengthIsCountedInUtf8Bytes() {
        store.snapshot("disk", "é".repeat(32)); // 64 bytes
        IllegalArgumentException failure = refused(() -> store.snapshot("disk", "é".repeat(32) + "x"));
        assertTrue(failure.getMessage().endsWith("is longer than 64 bytes"), failure.getMessage());
    }

    @Test
    void duplicateNamesAndLabelsAreRefused() {
        assertEquals("a disk named 'disk' already exists", refused(() -> store.create("disk", MIB)).getMessage());
        assertEquals("a disk named 'disk' already exists", refused(() -> store.clone("disk", "disk@base")).getMessage());
        assertEquals("disk 'disk' already has a snapshot labelled 'base' (id 1)",
                refused(() -> store.snapshot("disk", "base")).getMessage());
        store.snapshot("disk", "other");
        assertEquals("disk 'disk' already has a snapshot labelled 'base' (id 1)",
                refused(() -> store.label("disk@other", "base")).getMessage());
    }

    @Test
    void aDeletedNameMayBeUsedAgain() {
        store.create("gone", MIB);
        store.deleteVdi("gone", false);
        store.create("gone", 2 * MIB);
        assertEquals(2 * MIB, store.vdi("gone").sizeBytes());
    }

    // ---------------------------------------------------------------- sizes

    @Test
    void wrongDiskSizesAreRefused() {
        assertEquals("disk size must be positive, got 0", refused(() -> store.create("x", 0)).getMessage());
        assertEquals("disk size must be positive, got -4096", refused(() -> store.create("x", -4096)).getMessage());
        assertEquals("disk size must be a multiple of 512 bytes, got 1000", refused(() -> store.create("x", 1000)).getMessage());
        long tooBig = Layout.MAX_VDI_BYTES + 512;
        assertEquals("disk size " + tooBig + " exceeds the maximum of 256 TiB", refused(() -> store.create("x", tooBig)).getMessage());
    }

    @Test
    void treeHeightFollowsTheSize() {
        long[] sizes = {512, 2 * MIB, 2 * MIB + 512, 1L << 30, (1L << 30) + 512, 512L << 30, (512L << 30) + 512, Layout.MAX_VDI_BYTES};
        int[] heights = {1, 1, 2, 2, 3, 3, 4, 4};
        for (int i = 0; i < sizes.length; i++) {
            store.create("h" + i, sizes[i]);
        }
        Map<Long, RootRef> roots = store.inspect(Store.Internals::vdiRoots);
        for (int i = 0; i < sizes.length; i++) {
            long id = store.vdi("h" + i).id();
            assertEquals(heights[i], roots.get(id).height(), sizes[i] + " bytes");
        }
    }

    @Test
    void aStoreTooSmallForTwoExtentsIsRefused() {
        IllegalArgumentException failure = assertThrows(IllegalArgumentException.class,
                () -> Store.format(new MemoryBlockDevice(), 300 << 10, 64, StoreOptions.defaults()));
        assertEquals("a store needs at least two extents of 262144 bytes; 307200 bytes is too small", failure.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Store.format(new MemoryBlockDevice(), 4 * MIB, 100, StoreOptions.defaults()));
    }

    // ---------------------------------------------------------------- volume I/O

    @Test
    void outOfRangeVolumeIoNamesTheRange() {
        try (Volume volume = store.openVolume("disk")) {
            String outside = "is outside volume 'disk' of 1048576 bytes";
            assertEquals("range [1048575, +2) " + outside, refused(() -> volume.read(MIB - 1, ByteBuffer.allocate(2))).getMessage());
            assertEquals("range [-1, +1) " + outside, refused(() -> volume.read(-1, ByteBuffer.allocate(1))).getMessage());
            assertEquals("range [1048576, +4096) " + outside,
                    refused(() -> volume.write(MIB, ByteBuffer.allocate(4096), false)).getMessage());
            assertEquals("range [4096, +1048576) " + outside, refused(() -> volume.trim(4096, MIB, false)).getMessage());
            assertEquals("range [0, +-1) " + outside, refused(() -> volume.writeZeroes(0, -1, true, false)).getMessage());
            assertEquals("range [9223372036854775807, +1) " + outside, refused(() -> volume.mapping(Long.MAX_VALUE, 1)).getMessage());
            volume.read(MIB, ByteBuffer.allocate(0)); // an empty range at the end is fine
            volume.write(MIB - 4096, ByteBuffer.allocate(4096), false);
        }
        try (Volume snapshot = store.openVolume("disk@base")) {
            assertEquals("range [0, +1048577) is outside volume 'disk@base' of 1048576 bytes",
                    refused(() -> snapshot.read(0, ByteBuffer.allocate((int) MIB + 1))).getMessage());
        }
    }

    @Test
    void unknownNamesAndReferences() {
        assertEquals("no disk named 'nope'", assertThrows(Store.NoSuchElementException.class, () -> store.openVolume("nope")).getMessage());
        assertEquals("disk 'disk' has no snapshot labelled nope",
                assertThrows(Store.NoSuchElementException.class, () -> store.openVolume("disk@nope")).getMessage());
        assertEquals("disk 'disk' has no snapshot with id 99",
                assertThrows(Store.NoSuchElementException.class, () -> store.clone("c", "disk@99")).getMessage());
        assertEquals("'disk@' is not a snapshot reference; write NAME@ID or NAME@LABEL", refused(() -> store.clone("c", "disk@")).getMessage());
    }

    /** Asserts an IllegalArgumentException and that the store's durable state did not move. */
    private IllegalArgumentException refused(Executable call) {
        store.commit();
        store.commit(); // the removals the first commit made durable, applied after it
        long generation = store.durableGeneration();
        int disks = store.listVdis(true).size();
        IllegalArgumentException failure = assertThrows(IllegalArgumentException.class, call);
        store.commit();
        assertEquals(disks, store.listVdis(true).size(), "a refused call created nothing");
        assertEquals(generation, store.durableGeneration(), "a refused call left nothing to commit");
        return failure;
    }
}
