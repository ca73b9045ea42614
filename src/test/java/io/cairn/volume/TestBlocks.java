package io.cairn.volume;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.gc.CheckReport;
import io.cairn.gc.Checker;
import java.nio.ByteBuffer;

/** Block contents and checks shared by the tests that hold I/O on the device (commits, reclamation, snapshots). */
final class TestBlocks {

    static final int BLOCK = 4096;

    private TestBlocks() {
    }

    /** A block image unique to {@code block} and {@code generation}, so a read tells which write it saw. */
    static ByteBuffer pattern(long block, int generation) {
        ByteBuffer buffer = ByteBuffer.allocate(BLOCK);
        for (int i = 0; i < BLOCK; i += 8) {
            buffer.putLong(i, block * 1_000_003L + generation * 7919L + i);
        }
        return buffer;
    }

    /** Block {@code block} of export {@code reference} (a disk or a snapshot). */
    static byte[] read(Store store, String reference, long block) {
        try (Volume volume = store.openVolume(reference)) {
            ByteBuffer buffer = ByteBuffer.allocate(BLOCK);
            volume.read(block * BLOCK, buffer);
            return buffer.array();
        }
    }

    /** Commits, then asserts that the checker finds every counter exact. */
    static void commitAndCheckClean(Store store) {
        store.commit();
        CheckReport report = Checker.check(store);
        assertTrue(report.clean(), report::summary);
    }
}
