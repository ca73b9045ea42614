package io.cairn.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The life of a store through the CLI, with disk contents written and checked through the engine. */
class CliLifecycleTest {

    private static final int DATA_BYTES = 20_000;

    @TempDir
    Path directory;

    private Path store;

    private Cli.Result ok(Object... args) {
        Cli.Result result = Cli.run(args);
        assertEquals(0, result.exitCode(), result::toString);
        assertEquals("", result.err(), result::toString);
        return result;
    }

    /** Builds the store the golden files show: two generations of clones, one of a deleted snapshot. */
    private void buildSampleStore() {
        store = directory.resolve("store.img");
        String formatted = ok("format", store, "--size", "256M", "--extent-size", "1M").out();
        assertTrue(formatted.startsWith("formatted " + store + ": 256 MiB in 256 extents of 1 MiB, store id "), formatted);
        assertEquals("created disk base (id 1, 64 MiB)\n", ok("create", store, "base", "--size", "64M").out());
        write("base", 4096, 1);
        assertEquals("1\n", ok("snapshot", store, "base", "--label", "gold").out());
        write("base", 4096, 2);
        assertEquals("2\n", ok("snapshot", store, "base").out());
        assertEquals("labelled base@2 nightly\n", ok("label", store, "base@2", "nightly").out());
        assertEquals("created disk kid (id 2, 64 MiB), a clone of base@1\n",
                ok("create", store, "kid", "--from", "base@gold").out());
        assertEquals("3\n", ok("snapshot", store, "kid", "--label", "v1").out());
        assertEquals("created disk kid2 (id 3, 64 MiB), a clone of base@2\n",
                ok("create", store, "kid2", "--from", "base@nightly").out());
        assertEquals("created disk plain (id 4, 1 GiB)\n", ok("create", store, "plain", "--size", "1GiB").out());
        assertEquals("deleted snapshot base@1\n", ok("delete", store, "base@gold").out());
    }

    @Test
    void listingsMatchTheGoldenFiles() throws IOException {
        buildSampleStore();
        Golden.assertMatches("list.txt", ok("list", store).out());
        Golden.assertMatches("snapshots.txt", ok("snapshots", store, "base").out());
        Golden.assertMatches("tree.txt", ok("tree", store).out());
        Golden.assertMatches("tree.dot", ok("tree", store, "--dot").out());

        assertEquals("cleared the label of base@2\n", ok("label", store, "base@2", "").out());
        assertEquals("labelled base@2 nightly\n", ok("label", store, "base@2", "nightly").out());
        assertEquals("deleted disk kid and its 1 snapshot(s)\n", ok("delete", store, "kid", "--with-snapshots").out());
        assertEquals("deleted disk plain\n", ok("delete", store, "plain").out());
        Golden.assertMatches("tree-after-deletes.txt", ok("tree", store).out());
    }

    @Test
    void disksKeepTheirContentThroughSnapshotsClonesAndDeletes() {
        buildSampleStore();
        // kid was cloned from base@gold, which is deleted now: it must still hold the first pattern.
        assertArrayEquals(pattern(1), read("kid"));
        assertArrayEquals(pattern(2), read("kid2"));
        assertArrayEquals(pattern(2), read("base"));
        assertArrayEquals(pattern(2), read("base@nightly"));
        assertArrayEquals(new byte[DATA_BYTES], read("plain"));
    }

    @Test
    @SuppressWarnings("unchecked")
    void jsonListingsAreValidAndCarryExactValues() {
        buildSampleStore();
        List<Map<String, Object>> disks = (List<Map<String, Object>>) JsonParser.parseObject(ok("list", store, "--json").out())
                .get("disks");
        assertEquals(List.of("base", "kid", "kid2", "plain"), disks.stream().map(disk -> disk.get("name")).toList());
        Map<String, Object> kid = disks.get(1);
        assertEquals(2L, kid.get("id"));
        assertEquals(64L << 20, kid.get("sizeBytes"));
        assertEquals("base@1", kid.get("parent"));
        assertEquals(1L, kid.get("snapshots"));
        assertTrue(((String) kid.get("created")).matches("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ"), kid.toString());
        assertEquals(null, disks.get(0).get("parent"));

        Map<String, Object> snapshots = JsonParser.parseObject(ok("snapshots", store, "base", "--json").out());
        assertEquals("base", snapshots.get("disk"));
        Map<String, Object> nightly = ((List<Map<String, Object>>) snapshots.get("snapshots")).getFirst();
        assertEquals(Map.of("id", 2L, "reference", "base@2", "label", "nightly", "sizeBytes", 64L << 20),
                Map.of("id", nightly.get("id"), "reference", nightly.get("reference"), "label", nightly.get("label"),
                        "sizeBytes", nightly.get("sizeBytes")));

        Map<String, Object> tree = JsonParser.parseObject(ok("tree", store, "--json").out());
        List<Map<String, Object>> roots = (List<Map<String, Object>>) tree.get("disks");
        assertEquals(List.of("base", "plain"), roots.stream().map(disk -> disk.get("name")).toList());

        Map<String, Object> info = JsonParser.parseObject(ok("info", store, "--json").out());
        assertEquals(256L << 20, info.get("sizeBytes"));
        assertEquals(1L << 20, info.get("extentBytes"));
        assertEquals(256L, info.get("extents"));
        assertEquals(1L, info.get("counterBytes"));
        assertEquals(255L, info.get("maxReferences"));
        assertEquals(4L, info.get("disks"));
        assertEquals(2L, info.get("snapshots"));
        assertEquals(1L, info.get("deletedSnapshots"));
        Map<String, Object> space = (Map<String, Object>) info.get("space");
        assertEquals(256L << 20, space.get("totalBytes"));
        assertEquals(space.get("totalBytes"), (Long) space.get("dataBytes") + (Long) space.get("metadataBytes")
                + (Long) space.get("freeBytes"));
        // Two versions of the 4 blocks written to base, the first still held through kid's history.
        assertEquals(2L * 4 * 4096, space.get("dataBytes"), space.toString());
    }

    @Test
    void infoPrintsTheStoreInHumanUnits() {
        buildSampleStore();
        String info = ok("info", store).out();
        assertTrue(info.startsWith("store       " + store + "\nid          "), info);
        assertTrue(info.contains("\nsize        256 MiB (268435456 bytes)\nextents     256 of 1 MiB\n"
                + "counters    1 byte, up to 255 references\n"), info);
        assertTrue(info.contains("\ndisks       4\nsnapshots   2 (and 1 deleted)\n"), info);
    }

    /** Without --extent-size a store of 16 GiB or more gets 256 MiB extents, a smaller one 64 MiB extents. */
    @Test
    void formatChoosesTheExtentSizeByTheStoresSize() {
        Path large = directory.resolve("large.img");
        String formatted = ok("format", large, "--size", "16G").out();
        assertTrue(formatted.startsWith("formatted " + large + ": 16 GiB in 64 extents of 256 MiB, store id "), formatted);
        Path small = directory.resolve("small.img");
        formatted = ok("format", small, "--size", "16383M").out();
        assertTrue(formatted.startsWith("formatted " + small + ": 15.9 GiB in 255 extents of 64 MiB, store id "), formatted);
        Path chosen = directory.resolve("chosen.img");
        formatted = ok("format", chosen, "--size", "16G", "--extent-size", "64M").out();
        assertTrue(formatted.startsWith("formatted " + chosen + ": 16 GiB in 256 extents of 64 MiB, store id "), formatted);
        assertTrue(ok("info", large).out().contains("\ncounters    1 byte, up to 255 references\n"));
    }

    @Test
    void debugFlagIsAcceptedBeforeAndAfterTheSubcommand() {
        buildSampleStore();
        assertEquals(ok("list", store).out(), ok("--debug", "list", store).out());
        assertEquals(ok("list", store).out(), ok("list", store, "--debug").out());
    }

    private void write(String disk, long offsetBytes, int seed) {
        try (Store opened = Store.openFile(store, StoreOptions.defaults());
             Volume volume = opened.openVolume(disk)) {
            volume.write(offsetBytes, ByteBuffer.wrap(Arrays.copyOfRange(pattern(seed), (int) offsetBytes, DATA_BYTES)), false);
        }
    }

    private byte[] read(String export) {
        try (Store opened = Store.openFile(store, StoreOptions.defaults().withReadOnly(true));
             Volume volume = opened.openVolume(export)) {
            ByteBuffer buffer = ByteBuffer.allocate(DATA_BYTES);
            volume.read(0, buffer);
            return buffer.array();
        }
    }

    /** Zeros in the first block, then seeded random bytes, so disks differ by seed and start with a hole. */
    private static byte[] pattern(int seed) {
        byte[] bytes = new byte[DATA_BYTES];
        byte[] random = new byte[DATA_BYTES - 4096];
        new Random(seed).nextBytes(random);
        System.arraycopy(random, 0, bytes, 4096, random.length);
        return bytes;
    }
}
