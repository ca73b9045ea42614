package io.cairn.nbd;

import static io.cairn.nbd.NbdTestFixture.hasTool;
import static io.cairn.nbd.NbdTestFixture.run;
import static io.cairn.nbd.NbdTestFixture.runOk;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.cairn.nbd.store.ChangedSinceContexts;
import io.cairn.nbd.store.StoreExportCatalog;
import io.cairn.space.DiffExport;
import io.cairn.space.DiffImport;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code cairn:changed-since:SNAP} context with the real {@code nbdinfo --map}, and an incremental
 * import checked with {@code qemu-img compare}, against an in-process server on a store.
 */
@Timeout(120)
class ChangedSinceIT {

    private static final int BLOCK = 4096;
    private static final long DISK_BYTES = 64L << 20;

    @TempDir
    Path directory;

    private Store store;
    private NbdServer server;
    private InetSocketAddress address;

    /** vm: data in blocks 0-3 and at 32 MiB, snapshot 1 "base"; then block 0 discarded, 1 MiB and 10 MiB written. */
    @BeforeEach
    void setUp() throws Exception {
        store = Store.formatFile(directory.resolve("store.cairn"), 256L << 20, 256, StoreOptions.defaults());
        store.create("vm", DISK_BYTES);
        write("vm", 0, 4 * BLOCK, 1);
        write("vm", 32L << 20, BLOCK, 2);
        store.snapshot("vm", "base");
        try (Volume volume = store.openVolume("vm")) {
            volume.trim(0, BLOCK, false);
        }
        write("vm", 1L << 20, BLOCK, 3);
        write("vm", 10L << 20, 2 * BLOCK, 4);
        store.clone("restore", "vm@base");
        store.commit();
        server = new NbdServer(new StoreExportCatalog(store, "vm"),
                MetaContexts.standard().with(new ChangedSinceContexts(store)));
        address = server.listenTcp("127.0.0.1", 0);
    }

    @AfterEach
    void tearDown() {
        server.close();
        store.close();
    }

    private void write(String disk, long offset, int length, int value) {
        byte[] data = new byte[length];
        java.util.Arrays.fill(data, (byte) value);
        try (Volume volume = store.openVolume(disk)) {
            volume.write(offset, ByteBuffer.wrap(data), false);
        }
    }

    private String uri(String export) {
        return "nbd://127.0.0.1:" + address.getPort() + "/" + export;
    }

    @Test
    void nbdinfoMapsTheBlocksChangedSinceASnapshot() throws Exception {
        assumeTrue(hasTool("nbdinfo"), "nbdinfo not installed; skipping");
        List<String> expected = List.of(
                "0 4096 3",
                "4096 1044480 0",
                (1L << 20) + " 4096 1",
                ((1L << 20) + BLOCK) + " " + ((9L << 20) - BLOCK) + " 0",
                (10L << 20) + " 8192 1",
                ((10L << 20) + 2 * BLOCK) + " " + (DISK_BYTES - (10L << 20) - 2 * BLOCK) + " 0");
        long start = System.nanoTime();
        assertEquals(expected, map(runOk(60, "nbdinfo", "--map=" + ChangedSinceContexts.PREFIX + "1", uri("vm"))));
        System.out.printf("nbdinfo --map=cairn:changed-since:1 over %d MiB: %.0f ms%n", DISK_BYTES >> 20,
                (System.nanoTime() - start) / 1e6);
        assertEquals(expected, map(runOk(60, "nbdinfo", "--map=cairn:changed-since:base", uri("vm"))));
        assertEquals(expected, map(runOk(60, "nbdinfo", "--map=cairn:changed-since:vm@base", uri("vm"))));
        // The clone has not changed since the snapshot it came from; the snapshot not since itself.
        assertEquals(List.of("0 " + DISK_BYTES + " 0"),
                map(runOk(60, "nbdinfo", "--map=cairn:changed-since:vm@1", uri("restore"))));
        assertEquals(List.of("0 " + DISK_BYTES + " 0"),
                map(runOk(60, "nbdinfo", "--map=cairn:changed-since:1", uri("vm@base"))));

        String contexts = runOk(60, "nbdinfo", "--json", uri("vm"));
        assertTrue(contexts.contains("\"cairn:changed-since:1\""), contexts);
        NbdTestFixture.Result unknown = run(60, "nbdinfo", "--map=cairn:changed-since:nosuch", uri("vm"));
        assertNotEquals(0, unknown.exitCode(), unknown.output());
    }

    @Test
    void anIncrementalImportMakesTheCloneEqualTheDisk() throws Exception {
        assumeTrue(hasTool("qemu-img"), "qemu-img not installed; skipping");
        Path stream = directory.resolve("changes.diff");
        try (OutputStream out = Files.newOutputStream(stream)) {
            DiffExport.write(store, "vm@base", "vm", out, offset -> { });
        }
        NbdTestFixture.Result before = run(60, "qemu-img", "compare", "-f", "raw", "-F", "raw", uri("restore"), uri("vm"));
        assertEquals(1, before.exitCode(), before.output());
        DiffImport.verify(stream);
        try (Volume restore = store.openVolume("restore")) {
            DiffImport.apply(stream, restore, offset -> { });
        }
        String same = runOk(60, "qemu-img", "compare", "-f", "raw", "-F", "raw", uri("restore"), uri("vm"));
        assertTrue(same.contains("Images are identical"), same);
    }

    /** nbdinfo's map lines as "offset length flags", descriptions dropped. */
    private static List<String> map(String output) {
        List<String> lines = new ArrayList<>();
        for (String line : output.strip().split("\n")) {
            String[] fields = line.strip().split("\\s+");
            lines.add(fields[0] + " " + fields[1] + " " + fields[2]);
        }
        return lines;
    }
}
