package io.cairn.volume;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.gc.CheckReport;
import io.cairn.gc.Checker;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Several nodes serving one store file (Store design note 8), here as several Store instances in one
 * process over one file and one shared counter file: concurrent writers on different disks, commits
 * interleaved, admin changes on each node, takeover by a newer lease, and a clean store afterwards.
 */
class SharedStoreTest {

    private static final long STORE_BYTES = 512L << 20;
    private static final int EXTENT_BLOCKS = 2048;
    private static final long DISK_BYTES = 16L << 20;
    private static final int BLOCK = 4096;

    @TempDir
    Path dir;

    private Path storeFile() {
        return dir.resolve("store.cairn");
    }

    private Store node(int id) {
        return SharedNodes.open(storeFile(), dir.resolve("store.live"), id, java.time.Duration.ofSeconds(10));
    }

    private void format() {
        Store.formatFile(storeFile(), STORE_BYTES, EXTENT_BLOCKS, StoreOptions.defaults()).close();
    }

    @Test
    void twoNodesWriteTheirOwnDisksConcurrentlyAndTheStoreStaysConsistent() throws Exception {
        format();
        long seed = new SplittableRandom().nextLong();
        System.out.println("SharedStoreTest seed " + seed);
        byte[][] models = {new byte[(int) DISK_BYTES], new byte[(int) DISK_BYTES]};
        try (Store a = node(1); Store b = node(2)) {
            a.create("a0", DISK_BYTES);
            a.hold("a0", 10, () -> true);
            b.create("b0", DISK_BYTES);
            b.hold("b0", 20, () -> true);
            assertEquals(List.of("a0"), a.heldVdis());
            assertEquals(List.of("b0"), b.heldVdis());
            assertEquals(List.of("a0", "b0"), names(a.listVdis(false)), "each node sees the other's disk");
            assertEquals(List.of("a0", "b0"), names(b.listVdis(false)));

            Store[] nodes = {a, b};
            String[] disks = {"a0", "b0"};
            List<Thread> writers = new ArrayList<>();
            AtomicBoolean failed = new AtomicBoolean();
            List<Throwable> problems = java.util.Collections.synchronizedList(new ArrayList<>());
            for (int n = 0; n < 2; n++) {
                int which = n;
                writers.add(Thread.ofPlatform().start(() -> {
                    SplittableRandom random = new SplittableRandom(seed + which);
                    try (Volume volume = nodes[which].openVolume(disks[which])) {
                        for (int op = 0; op < 1500 && !failed.get(); op++) {
                            int choice = random.nextInt(100);
                            if (choice < 80) {
                                int blocks = 1 + random.nextInt(8);
                                long offset = (long) random.nextInt((int) (DISK_BYTES / BLOCK) - blocks) * BLOCK;
                                byte[] data = new byte[blocks * BLOCK];
                                random.nextBytes(data);
                                volume.write(offset, ByteBuffer.wrap(data), false);
                                System.arraycopy(data, 0, models[which], (int) offset, data.length);
                            } else if (choice < 92) {
                                volume.flush();
                            } else if (choice < 97) {
                                nodes[which].snapshot(disks[which], null);
                            } else {
                                nodes[which].create(disks[which] + "-extra-" + op, DISK_BYTES);
                            }
                        }
                        volume.flush();
                    } catch (Throwable problem) {
                        failed.set(true);
                        problems.add(problem);
                    }
                }));
            }
            for (Thread writer : writers) {
                writer.join();
            }
            if (!problems.isEmpty()) {
                AssertionError error = new AssertionError("a writer failed (seed " + seed + ")", problems.get(0));
                problems.stream().skip(1).forEach(error::addSuppressed);
                throw error;
            }
            assertArrayEquals(models[0], ModelSupport.readAll(a, "a0"), "a0 as node 1 reads it (seed " + seed + ")");
            assertArrayEquals(models[1], ModelSupport.readAll(b, "b0"), "b0 as node 2 reads it (seed " + seed + ")");
            assertEquals(a.listVdis(false).size(), b.listVdis(false).size());
        }
        try (Store alone = Store.openFile(storeFile(), StoreOptions.defaults())) {
            assertArrayEquals(models[0], ModelSupport.readAll(alone, "a0"), "seed " + seed);
            assertArrayEquals(models[1], ModelSupport.readAll(alone, "b0"), "seed " + seed);
            assertTrue(alone.snapshots("a0").size() + alone.snapshots("b0").size() > 0);
            CheckReport report = Checker.check(alone);
            assertTrue(report.clean(), "no damage after shared use (seed " + seed + "): " + report);
        }
    }

    @Test
    void aNewerLeaseTakesADiskOverAndTheOldHolderWritesNothingMore() {
        format();
        byte[] first = ModelSupport.randomBytes(1, BLOCK);
        byte[] second = ModelSupport.randomBytes(2, BLOCK);
        try (Store a = node(1); Store b = node(2)) {
            a.create("vm", DISK_BYTES);
            assertNull(a.hold("vm", 5, () -> true), "a disk this node created needs no takeover snapshot");
            try (Volume volume = a.openVolume("vm")) {
                volume.write(0, ByteBuffer.wrap(first), false);
                volume.flush();
                assertThrows(Store.NotHeldException.class, () -> b.openVolume("vm"), "only the holder serves a disk");
                assertThrows(Store.NotHeldException.class, () -> b.snapshot("vm", null));

                // Node 1 stops answering; node 2 gets the lease with a newer token.
                String takeover = b.hold("vm", 6, () -> true);
                assertNotNull(takeover, "a disk another node never gave back is taken over with a snapshot");
                assertTrue(takeover.startsWith("vm@"), takeover);
                try (Volume taken = b.openVolume("vm")) {
                    assertArrayEquals(first, ModelSupport.read(taken, 0, BLOCK), "every flushed write is there");
                    taken.write(BLOCK, ByteBuffer.wrap(second), true);
                }
                // Node 1's next commit finds the newer token: it drops the disk and refuses writes.
                a.commit();
                assertEquals(List.of(), a.heldVdis());
                assertThrows(Store.NotHeldException.class, () -> volume.write(0, ByteBuffer.wrap(second), false));
                assertThrows(Store.NotHeldException.class, () -> a.hold("vm", 5, () -> true),
                        "a stale lease cannot take the disk back");
            }
            b.releaseHold("vm");
            assertEquals(List.of(), b.heldVdis());
            assertNull(a.hold("vm", 7, () -> true), "a disk given back is taken without a snapshot");
            try (Volume volume = a.openVolume("vm")) {
                assertArrayEquals(second, ModelSupport.read(volume, BLOCK, BLOCK), "node 1 reads what node 2 wrote");
            }
        }
        try (Store alone = Store.openFile(storeFile(), StoreOptions.defaults())) {
            CheckReport report = Checker.check(alone);
            assertTrue(report.clean(), report.toString());
        }
    }

    @Test
    void aNodeStoppedCleanlyTakesItsDisksBackWithoutATakeoverSnapshot() {
        format();
        try (Store a = node(1)) {
            a.create("vm", DISK_BYTES);
            a.hold("vm", 4, () -> true);
        }
        try (Store a = node(1); Store b = node(2)) {
            assertEquals(1, a.vdi("vm").holderNode(), "the record still names the node that stopped");
            assertNull(a.hold("vm", 5, () -> true), "after a clean stop nothing is in flight: no snapshot");
            assertEquals(List.of(), a.snapshots("vm"));
        }
        try (Store b = node(2)) {
            assertNull(b.hold("vm", 6, () -> true), "nor when another node takes a disk given up cleanly");
        }
    }

    private static List<String> names(List<VdiInfo> infos) {
        return infos.stream().map(VdiInfo::name).filter(name -> !name.contains("-extra-")).sorted().toList();
    }
}
