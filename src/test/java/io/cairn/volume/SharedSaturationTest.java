package io.cairn.volume;

import io.cairn.format.CounterEncoding;
import io.cairn.gc.CheckReport;
import io.cairn.gc.Checker;
import io.cairn.tree.RootRef;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.UUID;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Saturation in shared mode (several node processes serving one store, docs/CLUSTER.md) at the limit of the
 * store's counter encoding: every node's map stops a counter at the format's maximum (255 with 1-byte counters),
 * and every share beyond it copies (no substitutes in shared mode: TreeSpace substitutes rule 6), so the counters
 * written to the shared store always fit the encoding and a store opened alone afterwards checks clean.
 */
class SharedSaturationTest {

    private static final long STORE_BYTES = 512L << 20;
    private static final int EXTENT_BLOCKS = 2048;
    private static final int BLOCK = 4096;

    @TempDir
    Path dir;

    @ParameterizedTest
    @CsvSource({"NARROW, 65535, 255, 300", "NARROW, 16, 16, 40", "WIDE, 16, 16, 40"})
    void everyNodeStopsCountersAtTheFormatsLimitAndCopiesBeyondIt(CounterEncoding encoding, int optionLimit, int limit,
                                                                int clones) {
        Path storeFile = dir.resolve("store.cairn");
        try (io.cairn.io.FileBlockDevice device = io.cairn.io.FileBlockDevice.create(storeFile, 0)) {
            Store.format(device, STORE_BYTES, EXTENT_BLOCKS, StoreOptions.defaults(), UUID.randomUUID(), encoding).close();
        }
        StoreOptions options = StoreOptions.defaults().withMaxRefcount(optionLimit);
        byte[] content = new byte[BLOCK];
        new java.util.Random(7).nextBytes(content);
        long sharedRoot;
        try (Store a = node(storeFile, 1, options); Store b = node(storeFile, 2, options)) {
            assertEquals(limit, (int) a.inspect(internals -> internals.space().maxRefcount()));
            assertEquals(limit, (int) b.inspect(internals -> internals.space().maxRefcount()));
            a.create("golden", 1L << 20);
            a.hold("golden", 10, () -> true);
            try (Volume volume = a.openVolume("golden")) {
                volume.write(0, ByteBuffer.wrap(content), false);
            }
            String golden = a.snapshot("golden", "gold").reference();
            a.commit();
            long goldenId = a.vdi("golden").id();
            sharedRoot = a.inspect(internals -> internals.vdiRoots().get(goldenId).root());
            for (int i = 0; i < clones; i++) {
                a.clone("c" + i, golden);
            }
            a.commit();
            int count = a.inspect(internals -> internals.space().count(sharedRoot));
            assertEquals(limit, count, "the disk, its snapshot and the clones that share the root itself");
            Map<Long, RootRef> roots = a.inspect(internals -> internals.vdiRoots());
            Set<Long> copies = new HashSet<>();
            long sharing = 0;
            for (RootRef root : roots.values()) {
                if (root.root() == sharedRoot) {
                    sharing++;
                } else {
                    assertTrue(copies.add(root.root()), "in shared mode every share beyond the limit is a copy of its own");
                }
            }
            assertEquals(limit - 1, sharing, "the disk and limit - 2 clones (the snapshot holds the other reference)");
            assertEquals(clones - (limit - 2), copies.size());
        }
        try (Store alone = Store.openFile(storeFile, StoreOptions.defaults())) {
            assertEquals(encoding, alone.geometry().counterEncoding());
            assertEquals(limit, (int) alone.inspect(internals -> internals.space().count(sharedRoot)), "after a reopen");
            for (String name : new String[] {"golden", "c0", "c" + (clones - 1)}) {
                byte[] first = new byte[BLOCK];
                try (Volume volume = alone.openVolume(name)) {
                    volume.read(0, ByteBuffer.wrap(first));
                }
                assertArrayEquals(content, first, name);
            }
            CheckReport report = Checker.check(alone);
            assertTrue(report.clean(), report.summary());
        }
    }

    private Store node(Path storeFile, int id, StoreOptions options) {
        return SharedNodes.open(storeFile, dir.resolve("store.live"), id, Duration.ofSeconds(10), options);
    }
}
