package io.cairn.gc;

import io.cairn.io.FaultInjectingBlockDevice;
import io.cairn.io.MemoryBlockDevice;
import io.cairn.io.ReopenableMemoryDevice;
import io.cairn.io.SimulatedCrashException;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Cuts the power at every write of a workload of writes, snapshots, clones, deletions and commits
 * (STYLE 8), and runs the checker on the store found after each crash: it must open without repair and
 * hold no damage (DESIGN §4: leaks are allowed after a crash, a dangling pointer or a counter below
 * the true count never is); repair must then leave it clean. Each crash draws the fate of every
 * write still in the volatile cache (dropped, applied or torn) from a seed named in the failure.
 */
class CrashCheckTest {

    private static final int OUTCOMES_PER_WRITE = 3;

    @Test
    void everyCrashLeavesAStoreWithoutDamage() {
        ReopenableMemoryDevice formatting = new ReopenableMemoryDevice();
        Store.format(formatting, 64L << 20, 256, StoreOptions.defaults()).close();
        MemoryBlockDevice formatted = formatting.medium();

        FaultInjectingBlockDevice dryRun = new FaultInjectingBlockDevice(formatted.copy());
        workload(dryRun);
        long writes = dryRun.writeCount();
        assertTrue(writes > 50, "the workload writes " + writes + " times");

        int crashesWithLeaks = 0;
        for (long crashAt = 1; crashAt <= writes; crashAt++) {
            FaultInjectingBlockDevice device = new FaultInjectingBlockDevice(formatted.copy());
            device.crashAtWrite(crashAt);
            try {
                workload(device);
            } catch (SimulatedCrashException expected) {
                // the power went out at write crashAt
            }
            for (int outcome = 0; outcome < OUTCOMES_PER_WRITE; outcome++) {
                long seed = crashAt * 1000 + outcome;
                String context = "crash at write " + crashAt + " of " + writes + ", outcome seed " + seed;
                Store store = Store.open(device.crash(new Random(seed)), null, StoreOptions.defaults());
                CheckReport report = Checker.check(store);
                assertFalse(report.damaged(), () -> context + ": " + report.summary());
                crashesWithLeaks += report.leaksOnly() ? 1 : 0;
                CheckReport repair = Checker.repair(store);
                assertFalse(repair.damaged(), () -> context + ": " + repair.summary());
                CheckReport after = Checker.check(store);
                assertTrue(after.clean(), () -> context + ", after repair: " + after.summary());
                store.close();
            }
        }
        // Removals reach the counters on disk one commit late, so some crashes must have left leaks:
        // otherwise the checker saw nothing worth checking.
        assertTrue(crashesWithLeaks > 0, "no crash out of " + writes * OUTCOMES_PER_WRITE + " left a leak");
    }

    /** Writes, snapshots, a clone, deletions and commits; every step some writes reach the device. */
    private static void workload(FaultInjectingBlockDevice device) {
        Store store = Store.open(device, null, StoreOptions.defaults());
        store.create("disk", 3L << 20);
        write(store, "disk", 0, 5 * 4096 + 10, 1);
        store.commit();
        store.snapshot("disk", "one");
        write(store, "disk", 2 * 4096 - 5, 3 * 4096, 2);
        write(store, "disk", (2L << 20) + 100, 4096, 3);
        store.commit();
        store.clone("copy", "disk@one");
        write(store, "copy", 4096, 2 * 4096, 4);
        try (Volume volume = store.openVolume("disk")) {
            volume.trim(0, 3 * 4096, false);
        }
        store.commit();
        store.deleteSnapshot("disk@one");
        write(store, "copy", 0, 100, 5);
        store.commit();
        store.deleteVdi("disk", true);
        store.commit();
        store.close();
    }

    private static void write(Store store, String vdi, long offset, int length, int seed) {
        byte[] bytes = new byte[length];
        new Random(seed).nextBytes(bytes);
        try (Volume volume = store.openVolume(vdi)) {
            volume.write(offset, ByteBuffer.wrap(bytes), false);
        }
    }
}
