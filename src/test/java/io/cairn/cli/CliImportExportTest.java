package io.cairn.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.volume.MappedRange;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Raw images in and out, checked byte for byte against a model, with holes where the zeros are. */
class CliImportExportTest {

    private static final int BLOCK = 4096;
    /** Not a multiple of 4 KiB, so the last block is partial. */
    private static final int DISK_BYTES = (8 << 20) + 1536;

    @TempDir
    Path directory;

    private Path store;
    private byte[] model;

    @BeforeEach
    void createDiskWithDataHolesAndWrittenZeros() {
        store = directory.resolve("store.img");
        assertEquals(0, Cli.run("format", store, "--size", "256M", "--extent-size", "1M").exitCode());
        assertEquals(0, Cli.run("create", store, "source", "--size", DISK_BYTES).exitCode());
        model = new byte[DISK_BYTES];
        Random random = new Random(42);
        write(random, 0, BLOCK);                        // block 0
        write(random, 3 * BLOCK + 50, 100);             // part of block 3; the rest of it is zeros
        write(random, 10 * BLOCK, 290 * BLOCK);         // across the 1 MiB copy chunk at block 256
        write(random, 1000 * BLOCK, 11 * BLOCK);        // a run with block 1005 zeroed below
        write(new byte[BLOCK], 5 * BLOCK);              // written zeros: mapped, yet no data to copy
        write(new byte[BLOCK], 1005 * BLOCK);
        write(random, DISK_BYTES - 1000, 1000);         // the partial last block
    }

    @Test
    void exportWritesTheDiskAndImportKeepsZeroBlocksAsHoles() throws IOException {
        Path image = directory.resolve("source.raw");
        Cli.Result exported = Cli.run("export", store, "source", image);
        assertEquals(0, exported.exitCode(), exported::toString);
        assertEquals("", exported.err());
        assertEquals(DISK_BYTES, Files.size(image));
        assertArrayEquals(model, Files.readAllBytes(image));

        Cli.Result imported = Cli.run("import", store, "copy", image);
        assertEquals(0, imported.exitCode(), imported::toString);
        assertEquals("", imported.err());
        assertTrue(imported.out().startsWith("imported " + image + " as disk copy (8.0 MiB): "), imported.out());
        try (Store opened = Store.openFile(store, StoreOptions.defaults().withReadOnly(true));
             Volume copy = opened.openVolume("copy")) {
            assertEquals(DISK_BYTES, copy.sizeBytes());
            assertArrayEquals(model, read(copy));
            assertEquals(nonZeroBlocks(model), mappedBlocks(copy));
        }
    }

    @Test
    void exportWritesOnlyNonZeroBlocks() throws IOException {
        // Blocks the export does not write keep this filler, which shows exactly what was written.
        byte[] filler = new byte[DISK_BYTES];
        Arrays.fill(filler, (byte) 0xA5);
        Path image = directory.resolve("filled.raw");
        Files.write(image, filler);
        try (Store opened = Store.openFile(store, StoreOptions.defaults().withReadOnly(true));
             Volume source = opened.openVolume("source");
             FileChannel channel = FileChannel.open(image, StandardOpenOption.WRITE);
             Progress quiet = new Progress(new PrintWriter(new StringWriter()), "export", DISK_BYTES, false)) {
            assertTrue(mappedBlocks(source).get(5) && mappedBlocks(source).get(1005), "written zeros are mapped");
            RawImage.Copied copied = RawImage.exportFrom(source, channel, quiet);
            assertEquals(DISK_BYTES, copied.dataBytes() + copied.holeBytes());
        }
        byte[] written = Files.readAllBytes(image);
        BitSet expected = nonZeroBlocks(model);
        for (int block = 0; block * BLOCK < DISK_BYTES; block++) {
            int start = block * BLOCK;
            int end = Math.min(DISK_BYTES, start + BLOCK);
            byte[] expectedBlock = Arrays.copyOfRange(expected.get(block) ? model : filler, start, end);
            assertArrayEquals(expectedBlock, Arrays.copyOfRange(written, start, end), "block " + block);
        }
    }

    @Test
    void exportOfASnapshotShowsTheDiskAsItWas() throws IOException {
        byte[] before = model.clone();
        assertEquals(0, Cli.run("snapshot", store, "source", "--label", "before").exitCode());
        write(new Random(7), 2 * BLOCK, 3 * BLOCK);
        Path image = directory.resolve("snapshot.raw");
        assertEquals(0, Cli.run("export", store, "source@before", image).exitCode());
        assertArrayEquals(before, Files.readAllBytes(image));
        assertEquals(0, Cli.run("export", store, "source", image, "--force").exitCode());
        assertArrayEquals(model, Files.readAllBytes(image));
    }

    @Test
    void forcedExportReplacesALongerFileCompletely() throws IOException {
        Path image = directory.resolve("old.raw");
        byte[] old = new byte[DISK_BYTES + 3 * BLOCK];
        Arrays.fill(old, (byte) 0x5A);
        Files.write(image, old);
        assertEquals(0, Cli.run("export", store, "source", image, "--force").exitCode());
        assertArrayEquals(model, Files.readAllBytes(image));
    }

    @Test
    void importRoundsTheSizeUpTo512OrTakesTheGivenSize() throws IOException {
        byte[] odd = new byte[10_000];
        new Random(3).nextBytes(odd);
        Path image = directory.resolve("odd.raw");
        Files.write(image, odd);
        assertEquals(0, Cli.run("import", store, "odd", image).exitCode());
        assertEquals(0, Cli.run("import", store, "big", image, "--size", "1M").exitCode());
        try (Store opened = Store.openFile(store, StoreOptions.defaults().withReadOnly(true))) {
            assertEquals(10_240, opened.vdi("odd").sizeBytes());
            assertEquals(1 << 20, opened.vdi("big").sizeBytes());
            try (Volume volume = opened.openVolume("odd")) {
                assertArrayEquals(Arrays.copyOf(odd, 10_240), read(volume));
            }
            try (Volume volume = opened.openVolume("big")) {
                assertArrayEquals(Arrays.copyOf(odd, 1 << 20), read(volume));
                assertEquals(nonZeroBlocks(odd), mappedBlocks(volume));
            }
        }
    }

    private void write(Random random, int offset, int length) {
        byte[] data = new byte[length];
        random.nextBytes(data);
        write(data, offset);
    }

    private void write(byte[] data, int offset) {
        System.arraycopy(data, 0, model, offset, data.length);
        try (Store opened = Store.openFile(store, StoreOptions.defaults());
             Volume volume = opened.openVolume("source")) {
            volume.write(offset, ByteBuffer.wrap(data), false);
        }
    }

    private static byte[] read(Volume volume) {
        ByteBuffer buffer = ByteBuffer.allocate((int) volume.sizeBytes());
        volume.read(0, buffer);
        return buffer.array();
    }

    private static BitSet nonZeroBlocks(byte[] bytes) {
        BitSet blocks = new BitSet();
        for (int i = 0; i < bytes.length; i++) {
            if (bytes[i] != 0) {
                blocks.set(i / BLOCK);
            }
        }
        return blocks;
    }

    private static BitSet mappedBlocks(Volume volume) {
        BitSet blocks = new BitSet();
        for (MappedRange range : volume.mapping(0, volume.sizeBytes())) {
            if (range.mapped()) {
                int first = (int) (range.offsetBytes() / BLOCK);
                blocks.set(first, (int) ((range.offsetBytes() + range.lengthBytes() + BLOCK - 1) / BLOCK));
            }
        }
        return blocks;
    }
}
