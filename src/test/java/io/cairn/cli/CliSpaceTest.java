package io.cairn.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** du, diff, export-diff and import-diff through the CLI, against golden files and byte models. */
class CliSpaceTest {

    private static final int BLOCK = 4096;
    /** Two tree levels, and a partial last block. */
    private static final int DISK_BYTES = (8 << 20) + 512;

    @TempDir
    Path directory;

    private Path store;
    private byte[] monday;
    private byte[] tuesday;
    private byte[] now;

    private Cli.Result ok(Object... args) {
        Cli.Result result = Cli.run(args);
        assertEquals(0, result.exitCode(), result::toString);
        assertEquals("", result.err(), result::toString);
        return result;
    }

    private Cli.Result fails(int exitCode, Object... args) {
        Cli.Result result = Cli.run(args);
        assertEquals(exitCode, result.exitCode(), result::toString);
        assertEquals("", result.out(), result::toString);
        assertTrue(result.err().startsWith("cairn: ") && result.err().endsWith("\n"), result::toString);
        return result;
    }

    /** vm: monday (blocks 0-9), tuesday (block 3 rewritten, 100-101 new), now (block 5 discarded, 2047 and the tail). */
    @BeforeEach
    void buildStore() {
        store = directory.resolve("store.img");
        ok("format", store, "--size", "256M", "--extent-size", "1M");
        ok("create", store, "vm", "--size", DISK_BYTES);
        byte[] model = new byte[DISK_BYTES];
        Random random = new Random(11);
        write(model, random, 0, 10 * BLOCK);
        monday = model.clone();
        ok("snapshot", store, "vm", "--label", "monday");
        write(model, random, 3 * BLOCK, BLOCK);
        write(model, random, 100 * BLOCK, 2 * BLOCK);
        tuesday = model.clone();
        ok("snapshot", store, "vm", "--label", "tuesday");
        ok("create", store, "test", "--from", "vm@monday");
        try (Store opened = Store.openFile(store, StoreOptions.defaults());
             Volume volume = opened.openVolume("vm")) {
            volume.trim(5 * BLOCK, BLOCK, false);
        }
        Arrays.fill(model, 5 * BLOCK, 6 * BLOCK, (byte) 0);
        write(model, random, 2047 * BLOCK, BLOCK + 512);
        now = model;
    }

    private void write(byte[] model, Random random, int offset, int length) {
        byte[] data = new byte[length];
        random.nextBytes(data);
        System.arraycopy(data, 0, model, offset, length);
        try (Store opened = Store.openFile(store, StoreOptions.defaults());
             Volume volume = opened.openVolume("vm")) {
            volume.write(offset, ByteBuffer.wrap(data), false);
        }
    }

    @Test
    void duMatchesTheGoldenFile() throws IOException {
        Golden.assertMatches("du.txt", ok("du", store).out());
        Golden.assertMatches("du-vm-tuesday.txt", ok("du", store, "vm@tuesday").out());
    }

    @Test
    @SuppressWarnings("unchecked")
    void duJsonIsExactAndAddsUp() {
        Map<String, Object> report = JsonParser.parseObject(ok("du", store, "--json").out());
        Map<String, Object> space = (Map<String, Object>) report.get("space");
        assertEquals(((Number) space.get("dataBytes")).longValue() + ((Number) space.get("metadataBytes")).longValue(),
                ((Number) space.get("usedBytes")).longValue());
        List<Map<String, Object>> entries = (List<Map<String, Object>>) report.get("entries");
        assertEquals(List.of("vm", "vm@1", "vm@2", "test"), entries.stream().map(entry -> entry.get("reference")).toList());
        for (Map<String, Object> entry : entries) {
            assertEquals(number(entry, "mappedBytes") - number(entry, "exclusiveBytes"), number(entry, "sharedBytes"));
            assertEquals((number(entry, "mappedDataBlocks") + number(entry, "mappedNodeBlocks")) * BLOCK,
                    number(entry, "mappedBytes"));
        }
        Map<String, Object> tuesdayEntry = entries.get(2);
        assertEquals("tuesday", tuesdayEntry.get("label"));
        assertEquals("vm@1", tuesdayEntry.get("since"));
        assertEquals(3L * BLOCK, number(tuesdayEntry, "writtenBytes"));
        assertEquals(0L, number(entries.get(3), "writtenBytes"), "the clone wrote nothing since vm@monday");
    }

    private static long number(Map<String, Object> object, String name) {
        return ((Number) object.get(name)).longValue();
    }

    @Test
    void diffMatchesTheGoldenFileAndTheModel() throws IOException {
        String out = ok("diff", store, "vm@tuesday", "vm").out();
        assertTrue(out.matches("(?s).* radix nodes read in \\d+\\.\\d\\d ms\n"), out);
        Golden.assertMatches("diff.txt", out.replaceAll("in \\d+\\.\\d\\d ms", "in N ms"));
        Golden.assertMatches("diff-clone.txt", ok("diff", store, "vm@monday", "test").out()
                .replaceAll("in \\d+\\.\\d\\d ms", "in N ms"));

        @SuppressWarnings("unchecked")
        List<Map<String, Object>> ranges = (List<Map<String, Object>>) JsonParser.parseObject(
                ok("diff", store, "vm@monday", "vm", "--json").out()).get("ranges");
        byte[] patched = monday.clone();
        for (Map<String, Object> range : ranges) {
            int offset = (int) number(range, "offset");
            int length = (int) number(range, "length");
            System.arraycopy(now, offset, patched, offset, length);
        }
        assertArrayEquals(now, patched);
    }

    @Test
    void backupToAnotherStoreFullThenIncremental() throws IOException {
        Path backup = directory.resolve("backup.img");
        ok("format", backup, "--size", "64M", "--extent-size", "1M");
        Path full = directory.resolve("monday.diff");
        Path incremental = directory.resolve("tuesday.diff");
        Path live = directory.resolve("now.diff");
        assertTrue(ok("export-diff", store, "vm@monday", full).out()
                .startsWith("exported all of vm@1 (monday) to " + full + ": "));
        assertTrue(ok("export-diff", store, "vm@monday", "vm@tuesday", incremental).out()
                .startsWith("exported the changes from vm@1 (monday) to vm@2 (tuesday) to " + incremental + ": 2 records, 12 KiB of data"));
        ok("export-diff", store, "vm@tuesday", "vm", live);

        Cli.Result first = ok("import-diff", backup, "copy", full);
        assertTrue(first.out().endsWith("snapshot copy@1 (monday)\n"), first.out());
        assertArrayEquals(monday, read(backup, "copy"));
        fails(4, "import-diff", backup, "copy", live); // copy holds monday, the stream starts at tuesday
        Cli.Result second = ok("import-diff", backup, "copy", incremental);
        assertTrue(second.out().endsWith("snapshot copy@2 (tuesday)\n"), second.out());
        assertArrayEquals(tuesday, read(backup, "copy"));
        assertArrayEquals(monday, read(backup, "copy@monday"));
        Cli.Result third = ok("import-diff", backup, "copy", live);
        assertFalse(third.out().contains("snapshot"), "the live disk has no snapshot to mirror: " + third.out());
        assertArrayEquals(now, read(backup, "copy"));
        assertEquals("", ok("diff", backup, "copy@tuesday", "copy", "--json").err());
    }

    @Test
    void sameStoreImportOntoAClone() throws IOException {
        Path stream = directory.resolve("changes.diff");
        ok("export-diff", store, "vm@monday", "vm", stream);
        Cli.Result applied = ok("import-diff", store, "test", stream);
        assertTrue(applied.out().startsWith("applied " + stream + " to disk test (changes from vm@1 (monday) to vm): "),
                applied.out());
        assertArrayEquals(now, read(store, "test"));
        // test no longer holds monday: a second import is refused, and nothing is written.
        String refused = fails(4, "import-diff", store, "test", stream).err();
        assertTrue(refused.contains("differs from vm@1") && refused.contains("nothing was written"), refused);
        Cli.Result forced = Cli.run("import-diff", store, "test", stream, "--force");
        assertEquals(0, forced.exitCode(), forced::toString);
        assertTrue(forced.err().startsWith("cairn: warning: disk 'test' differs from vm@1"), forced.err());
        assertArrayEquals(now, read(store, "test"));
    }

    @Test
    void damagedStreamsAndWrongTargetsChangeNothing() throws IOException {
        Path stream = directory.resolve("changes.diff");
        ok("export-diff", store, "vm@monday", "vm@tuesday", stream);
        fails(4, "export-diff", store, "vm@monday", "vm@tuesday", stream);
        byte[] bytes = Files.readAllBytes(stream);
        Path damaged = directory.resolve("damaged.diff");

        byte[] flipped = bytes.clone();
        flipped[bytes.length / 2] ^= 0x10;
        Files.write(damaged, flipped);
        String corrupt = fails(5, "import-diff", store, "test", damaged).err();
        assertTrue(corrupt.startsWith("cairn: corrupt diff stream " + damaged + " at byte "), corrupt);
        assertTrue(corrupt.contains("checksum mismatch"), corrupt);
        Files.write(damaged, Arrays.copyOf(bytes, bytes.length - 10));
        assertTrue(fails(5, "import-diff", store, "test", damaged).err().contains("the stream ends early"));
        assertArrayEquals(monday, read(store, "test"), "nothing was written");
        assertEquals("", ok("snapshots", store, "test", "--json").out().replaceAll(".*\"snapshots\":\\[\\]}\n", ""));

        fails(3, "import-diff", store, "nosuchdisk", stream);
        fails(3, "import-diff", store, "test", directory.resolve("missing.diff"));
        ok("create", store, "small", "--size", "1M");
        assertTrue(fails(4, "import-diff", store, "small", stream).err().contains("bytes but the stream is for a disk of"));
        fails(3, "export-diff", store, "vm@nosuch", "vm", directory.resolve("x.diff"));
        assertFalse(Files.exists(directory.resolve("x.diff")));
        fails(2, "diff", store, "vm@monday", "small");
    }

    private static byte[] read(Path store, String reference) {
        try (Store opened = Store.openFile(store, StoreOptions.defaults().withReadOnly(true));
             Volume volume = opened.openVolume(reference)) {
            ByteBuffer buffer = ByteBuffer.allocate((int) volume.sizeBytes());
            volume.read(0, buffer);
            return buffer.array();
        }
    }
}
