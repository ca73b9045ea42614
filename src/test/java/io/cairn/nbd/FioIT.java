package io.cairn.nbd;

import static io.cairn.nbd.NbdTestFixture.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** fio's nbd engine: many requests in flight on several connections, every block verified. */
@Timeout(180)
class FioIT {

    private NbdTestFixture fixture;

    @BeforeEach
    void setUp() throws Exception {
        assumeTrue(hasTool("fio"), "fio not installed; skipping");
        fixture = NbdTestFixture.start();
    }

    @AfterEach
    void tearDown() throws Exception {
        if (fixture != null) {
            fixture.close();
        }
    }

    @Test
    void randomWritesVerifyWithCrc32cAtDepth16() throws Exception {
        verifyWithFio("verify", fixture.tcpUri(DISK), "--rw=randwrite", "--bsrange=512-64k", "--size=4M",
                "--offset_increment=4M", "--numjobs=3");
    }

    @Test
    void mixedReadWriteOverUnixSocketWithVerify() throws Exception {
        verifyWithFio("mixed", fixture.unixUri(DISK), "--rw=randrw", "--bs=4k", "--size=2M", "--offset_increment=2M",
                "--numjobs=2");
    }

    /** Large blocks (up to 1 MiB) read and written at once, every one verified. */
    @Test
    void largeBlocksMixedWithVerifyOverTcp() throws Exception {
        verifyWithFio("large", fixture.tcpUri(DISK), "--rw=randrw", "--bsrange=64k-1m", "--size=8M",
                "--offset_increment=8M", "--numjobs=2");
    }

    /** Runs one fio job at depth 16 that verifies every block with crc32c; fails on any verify error. */
    private static void verifyWithFio(String name, String uri, String... jobOptions) throws Exception {
        List<String> command = new ArrayList<>(List.of("fio", "--name=" + name,
                "--ioengine=nbd", "--uri=" + uri));
        command.addAll(List.of(jobOptions));
        command.addAll(List.of("--iodepth=16", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1",
                "--verify_state_save=0", "--group_reporting", "--output-format=terse", "--terse-version=3"));
        String output = runOk(120, command.toArray(String[]::new));
        assertFalse(output.contains("verify:") || output.contains("bad magic"), output);
        String[] fields = output.strip().lines().reduce((first, second) -> second).orElseThrow().split(";");
        assertEquals("0", fields[4], "fio error field:\n" + output);
    }
}
