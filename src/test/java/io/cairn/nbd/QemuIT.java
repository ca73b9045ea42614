package io.cairn.nbd;

import static io.cairn.nbd.NbdTestFixture.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** qemu-img and qemu-io against the in-process server. */
@Timeout(120)
class QemuIT {

    private NbdTestFixture fixture;

    @BeforeEach
    void setUp() throws Exception {
        assumeTrue(hasTool("qemu-img") && hasTool("qemu-io"), "qemu-img/qemu-io not installed; skipping qemu tests");
        fixture = NbdTestFixture.start();
    }

    @AfterEach
    void tearDown() throws Exception {
        if (fixture != null) {
            fixture.close();
        }
    }

    @Test
    void qemuImgInfoReportsTheSizeOverTcpAndUnix() throws Exception {
        String expected = "virtual size: 16 MiB (" + DISK_BYTES + " bytes)";
        assertTrue(runOk(60, "qemu-img", "info", fixture.tcpUri(DISK)).contains(expected));
        assertTrue(runOk(60, "qemu-img", "info", fixture.unixUri(DISK)).contains(expected));
        assertTrue(runOk(60, "qemu-img", "info", fixture.tcpUri(GOLDEN)).contains("(" + GOLDEN_BYTES + " bytes)"));
    }

    @Test
    void qemuImgConvertsIntoAndOutOfAnExport() throws Exception {
        Path source = fixture.directory().resolve("source.raw");
        byte[] image = new byte[(int) DISK_BYTES];
        byte[] data = MemoryExport.pattern(5, 3_000_001);
        System.arraycopy(data, 0, image, 12_345, data.length);
        System.arraycopy(data, 0, image, 9_000_000, 1_000_000);
        Files.write(source, image);

        runOk(60, "qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", source.toString(), fixture.tcpUri(DISK));
        assertArrayEquals(image, fixture.contents(DISK, 0, (int) DISK_BYTES), "converted into the export");

        Path copy = fixture.directory().resolve("copy.raw");
        runOk(60, "qemu-img", "convert", "-f", "raw", "-O", "raw", fixture.unixUri(DISK), copy.toString());
        assertArrayEquals(image, Files.readAllBytes(copy), "converted out of the export");
        runOk(60, "qemu-img", "compare", "-f", "raw", "-F", "raw", source.toString(), fixture.tcpUri(DISK));
    }

    @Test
    void qemuIoPatternsAtOddOffsets() throws Exception {
        fixture.seed(DISK, 131_072, MemoryExport.pattern(1, 65_536));
        String output = runOk(60, "qemu-io", "-f", "raw",
                "-c", "write -P 0xab 1001 5003",
                "-c", "read -P 0xab 1001 5003",
                "-c", "write -f -P 0x11 300001 777",
                "-c", "read -P 0x11 300001 777",
                "-c", "write -z 8193 65536",
                "-c", "read -P 0 8193 65536",
                "-c", "discard 131072 65536",
                "-c", "write -P 0x5a 16777215 1",
                "-c", "read -P 0x5a 16777215 1",
                "-c", "flush",
                fixture.tcpUri(DISK));
        assertTrue(!output.contains("failed") && !output.contains("error"), output);
        assertArrayEquals(filled(5003, 0xab), fixture.contents(DISK, 1001, 5003));
        assertArrayEquals(filled(777, 0x11), fixture.contents(DISK, 300_001, 777));
        assertArrayEquals(new byte[65536], fixture.contents(DISK, 8193, 65536));
        assertArrayEquals(new byte[1000], fixture.contents(DISK, 0, 1000), "untouched bytes stay zero");
        assertArrayEquals(filled(1, 0x5a), fixture.contents(DISK, DISK_BYTES - 1, 1));
    }

    @Test
    void qemuIoWritePastTheEndFails() throws Exception {
        Result result = run(60, "qemu-io", "-f", "raw", "-c", "write -P 1 16777000 1000", fixture.tcpUri(DISK));
        assertTrue(result.output().contains("write failed"), result.output());
        assertArrayEquals(new byte[216], fixture.contents(DISK, 16_777_000, 216), "nothing was written");
    }

    @Test
    void qemuIoCannotWriteToTheReadOnlyExport() throws Exception {
        Result result = run(60, "qemu-io", "-f", "raw", "-c", "write -P 1 0 512", fixture.tcpUri(GOLDEN));
        assertNotEquals(0, result.exitCode(), result.output());
        assertTrue(result.output().contains("Permission denied") || result.output().contains("read-only"), result.output());
        assertArrayEquals(Arrays.copyOf(goldenContent(), 512), fixture.contents(GOLDEN, 0, 512));
        runOk(60, "qemu-io", "-r", "-f", "raw", "-c", "read -v 0 16", fixture.tcpUri(GOLDEN));
    }

    private static byte[] filled(int length, int value) {
        byte[] bytes = new byte[length];
        Arrays.fill(bytes, (byte) value);
        return bytes;
    }
}
