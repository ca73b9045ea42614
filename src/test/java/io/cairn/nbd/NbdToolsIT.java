package io.cairn.nbd;

import static io.cairn.nbd.NbdTestFixture.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** libnbd's tools (nbdinfo, nbdcopy) against the in-process server, and nbdinfo spawning it. */
@Timeout(120)
class NbdToolsIT {

    private NbdTestFixture fixture;

    @BeforeEach
    void setUp() throws Exception {
        fixture = NbdTestFixture.start();
    }

    @AfterEach
    void tearDown() throws Exception {
        fixture.close();
    }

    @Test
    void nbdinfoReportsSizeAndFlags() throws Exception {
        assumeTrue(hasTool("nbdinfo"), "nbdinfo not installed; skipping");
        assertEquals(String.valueOf(DISK_BYTES), runOk(60, "nbdinfo", "--size", fixture.tcpUri(DISK)).strip());
        String disk = runOk(60, "nbdinfo", "--json", fixture.unixUri(DISK));
        for (String expected : List.of("\"structured\": true", "\"is_read_only\": false", "\"can_flush\": true",
                "\"can_fua\": true", "\"can_trim\": true", "\"can_zero\": true", "\"can_fast_zero\": true",
                "\"can_cache\": true", "\"can_multi_conn\": true", "\"can_df\": true", "\"block_size_minimum\": 1",
                "\"block_size_preferred\": 4096", "\"block_size_maximum\": 33554432", "\"base:allocation\"")) {
            assertTrue(disk.contains(expected), expected + " in\n" + disk);
        }
        String golden = runOk(60, "nbdinfo", "--json", fixture.tcpUri(GOLDEN));
        for (String expected : List.of("\"is_read_only\": true", "\"can_trim\": false", "\"can_zero\": false",
                "\"export-size\": " + GOLDEN_BYTES)) {
            assertTrue(golden.contains(expected), expected + " in\n" + golden);
        }
    }

    @Test
    void nbdinfoListsEveryExport() throws Exception {
        assumeTrue(hasTool("nbdinfo"), "nbdinfo not installed; skipping");
        String list = runOk(60, "nbdinfo", "--list", "nbd://127.0.0.1:" + fixture.tcpAddress().getPort());
        for (String expected : List.of("export=\"disk\"", "export=\"sparse\"", "export=\"" + GOLDEN + "\"",
                "description: read-only snapshot", "export-size: " + SPARSE_BYTES)) {
            assertTrue(list.contains(expected), expected + " in\n" + list);
        }
    }

    @Test
    void nbdinfoMapShowsHolesAndData() throws Exception {
        assumeTrue(hasTool("nbdinfo"), "nbdinfo not installed; skipping");
        List<long[]> map = parseMap(runOk(60, "nbdinfo", "--map", fixture.tcpUri(SPARSE)));
        List<long[]> expected = List.of(
                new long[] {0, 1 << 20, 0},
                new long[] {1 << 20, (8L << 20) - (1 << 20), 3},
                new long[] {8L << 20, 64 << 10, 0},
                new long[] {(8L << 20) + (64 << 10), SPARSE_BYTES - (8L << 20) - (64 << 10), 3});
        assertEquals(expected.size(), map.size(), "extents");
        for (int i = 0; i < expected.size(); i++) {
            assertArrayEquals(expected.get(i), map.get(i), "extent " + i);
        }
    }

    @Test
    void nbdcopyRoundTripsASparseImage() throws Exception {
        assumeTrue(hasTool("nbdcopy"), "nbdcopy not installed; skipping");
        Path source = fixture.directory().resolve("sparse.raw");
        byte[] first = MemoryExport.pattern(11, 3_000_000);
        byte[] second = MemoryExport.pattern(12, 100_001);
        try (RandomAccessFile file = new RandomAccessFile(source.toFile(), "rw")) {
            file.setLength(DISK_BYTES);
            file.seek(4096);
            file.write(first);
            file.seek(10_000_000);
            file.write(second);
        }
        runOk(60, "nbdcopy", source.toString(), fixture.tcpUri(DISK));
        Path copy = fixture.directory().resolve("copy.raw");
        runOk(60, "nbdcopy", fixture.unixUri(DISK), copy.toString());
        assertArrayEquals(Files.readAllBytes(source), Files.readAllBytes(copy), "byte-for-byte round trip");
        if (hasTool("nbdinfo")) {
            List<long[]> map = parseMap(runOk(60, "nbdinfo", "--map", fixture.tcpUri(DISK)));
            assertTrue(map.stream().anyMatch(extent -> extent[2] == 3 && extent[1] >= 4 << 20),
                    "the zero runs of the image became holes in the export");
        }
    }

    @Test
    void nbdinfoSpawnsTheServerWithSocketActivation() throws Exception {
        assumeTrue(hasTool("nbdinfo") && hasTool("sh"), "nbdinfo not installed; skipping");
        // libnbd passes a listening socket as fd 3; Java inherits only fd 0, so the shell moves it there,
        // as a systemd unit with StandardInput=socket would.
        String server = String.join(" ", NbdTestFixture.inetdServerCommand().stream().map(NbdToolsIT::quote).toList());
        String size = runOk(60, "nbdinfo", "--size", "--", "[", "sh", "-c", "exec " + server + " 0<&3 3<&-", "]");
        assertEquals(String.valueOf(DISK_BYTES), size.strip(), "the default export");
        String map = runOk(60, "nbdinfo", "--map", "--", "[", "sh", "-c", "exec " + server + " 0<&3 3<&-", "]");
        assertEquals(1, parseMap(map).size(), map);
    }

    private static String quote(String word) {
        return "'" + word.replace("'", "'\\''") + "'";
    }

    /** nbdinfo --map lines: offset, length, type, description. */
    private static List<long[]> parseMap(String output) {
        List<long[]> extents = new ArrayList<>();
        for (String line : output.strip().split("\n")) {
            String[] fields = line.strip().split("\\s+");
            extents.add(new long[] {Long.parseLong(fields[0]), Long.parseLong(fields[1]), Long.parseLong(fields[2])});
        }
        return extents;
    }
}
