package io.cairn.volume;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.gc.CheckReport;
import io.cairn.gc.Checker;
import io.cairn.io.FileBlockDevice;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A node whose lease lapsed (ZooKeeper away past the validity window) goes on writing its disk while the
 * store's durable record still names it, through other nodes' commits, and stops the moment another node
 * has taken the disk over (Store design note 10, {@code Store.mayWrite}).
 */
class LapsedLeaseTest {

    private static final int BLOCK = 4096;

    @TempDir
    Path dir;

    @Test
    void aNodeWritesOnAfterItsLeaseLapsedUntilAnotherNodeTakesTheDiskOver() {
        Path file = dir.resolve("store.cairn");
        Store.formatFile(file, 256L << 20, 2048, StoreOptions.defaults()).close();
        AtomicBoolean leaseValid = new AtomicBoolean(true);
        try (Store a = node(file, 1); Store b = node(file, 2)) {
            a.create("vm", 4L << 20);
            a.hold("vm", 10, leaseValid::get);
            try (Volume disk = a.openVolume("vm")) {
                write(disk, 0, 0x11);
                disk.flush();
                leaseValid.set(false); // from here on only the store's record lets node 1 write
                write(disk, 0, 0x13); // in place
                write(disk, 1, 0x12); // a fresh block
                b.create("other", 1L << 20); // another node's commit moves the superblock: node 1 reads its record again
                write(disk, 2, 0x14);
                disk.flush();

                String takeover = b.hold("vm", 20, () -> true);
                assertNotNull(takeover, "node 2 took the disk over from a holder that never gave it back");
                Store.NotHeldException refused = assertThrows(Store.NotHeldException.class, () -> write(disk, 0, 0x15),
                        "an in-place write after the takeover");
                assertEquals("this node's lease on disk 'vm' has lapsed, and the store does not show that the node still "
                        + "holds it (another node took it over, or its record could not be read)", refused.getMessage());
                assertThrows(Store.NotHeldException.class, () -> write(disk, 3, 0x16), "a copying write after the takeover");
            }
            try (Volume disk = b.openVolume("vm")) {
                assertBlock(disk, 0, 0x13);
                assertBlock(disk, 1, 0x12);
                assertBlock(disk, 2, 0x14);
                assertBlock(disk, 3, 0x00);
            }
        }
        try (Store alone = Store.openFile(file, StoreOptions.defaults())) {
            CheckReport report = Checker.check(alone);
            assertTrue(report.clean(), report.toString());
        }
    }

    private Store node(Path file, int id) {
        return Store.openShared(FileBlockDevice.open(file, false), null, StoreOptions.defaults(), id,
                dir.resolve("store.live"), Duration.ofSeconds(10));
    }

    private static void write(Volume disk, long block, int fill) {
        byte[] data = new byte[BLOCK];
        Arrays.fill(data, (byte) fill);
        disk.write(block * BLOCK, ByteBuffer.wrap(data), false);
    }

    private static void assertBlock(Volume disk, long block, int fill) {
        byte[] expected = new byte[BLOCK];
        Arrays.fill(expected, (byte) fill);
        assertArrayEquals(expected, ModelSupport.read(disk, block * BLOCK, BLOCK), "block " + block);
    }
}
