package io.cairn.space;

import io.cairn.gc.CheckReport;
import io.cairn.gc.Checker;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The exclusive bytes {@code du} reports are exactly what deleting frees: after each deletion (and
 * two commits) the store's used bytes drop by the reported figure, for snapshots and for disks, with
 * clones, snapshot chains and saturated counters.
 */
class ExclusiveSpaceTest {

    private static final int BLOCK = RandomHistory.BLOCK;

    @Test
    void chainOfSnapshotsAndAClone() {
        RandomHistory history = new RandomHistory(1, 0);
        history.write("d0", 0, filled(8 * BLOCK, 1));
        String first = history.snapshot("d0");
        history.write("d0", 2 * BLOCK, filled(BLOCK, 2));
        String second = history.snapshot("d0");
        history.write("d0", 3 * BLOCK, filled(2 * BLOCK, 3));
        history.cloneOf(first);
        history.write("d1", 7 * BLOCK, filled(BLOCK, 4));

        Map<String, DiskUsage.Entry> usage = byReference(DiskUsage.report(history.store, null));
        // The old block 2 is shared with the clone; d0@1 alone holds only its own (leaf) root node.
        assertEquals(BLOCK, usage.get(first).usage().exclusiveBytes());
        assertEquals(2L * BLOCK, usage.get("d1").usage().exclusiveBytes(), "its root and the block it wrote");
        assertEquals(8L * BLOCK, usage.get(first).writtenBytes());
        assertEquals(BLOCK, usage.get(second).writtenBytes());
        assertEquals(2L * BLOCK, usage.get("d0").writtenBytes());
        assertEquals(BLOCK, usage.get("d1").writtenBytes(), "a clone counts from the snapshot it came from");
        assertEquals(9L * BLOCK, usage.get("d0").usage().mappedBytes(), "8 data blocks and one leaf node");
        deleteEachAndCompare(history);
    }

    @Property(tries = 60)
    void exclusiveBytesAreWhatDeletingFrees(@ForAll long seed) {
        RandomHistory history = new RandomHistory(seed, 40 + (int) Math.floorMod(seed, 40L));
        deleteEachAndCompare(history);
    }

    /** Deletes every snapshot and disk in a random order, checking the figure before each deletion. */
    private static void deleteEachAndCompare(RandomHistory history) {
        CheckReport check = Checker.check(history.store);
        assertTrue(check.clean(), () -> history + ": " + check.summary());
        while (!history.models.isEmpty()) {
            List<String> candidates = new ArrayList<>(history.snapshots());
            candidates.addAll(history.disksWithoutSnapshots());
            String victim = history.pick(candidates);
            DiskUsage.Report report = DiskUsage.report(history.store, null);
            assertEquals(0, report.pendingReleases(), history::toString);
            Map<String, DiskUsage.Entry> entries = byReference(report);
            assertEquals(history.models.keySet(), entries.keySet(), history::toString);
            checkConsistent(history, entries);
            long before = report.store().dataBytes() + report.store().metadataBytes();
            assertEquals(before, history.usedBytes(), history + ": the report's store totals are current");
            long exclusive = entries.get(victim).usage().exclusiveBytes();
            DiskUsage.Entry alone = DiskUsage.report(history.store, victim).entries().stream()
                    .filter(entry -> entry.version().reference().equals(victim)).findFirst().orElseThrow();
            assertEquals(entries.get(victim), alone, history + ": selecting " + victim + " reports the same");

            if (victim.contains("@")) {
                history.store.deleteSnapshot(victim);
            } else {
                history.store.deleteVdi(victim, false);
            }
            history.models.remove(victim);
            history.store.commit();
            history.store.commit();
            assertEquals(exclusive, before - history.usedBytes(), history + ": deleting " + victim);
        }
        CheckReport empty = Checker.check(history.store);
        assertTrue(empty.clean(), () -> history + " after deleting everything: " + empty.summary());
    }

    private static void checkConsistent(RandomHistory history, Map<String, DiskUsage.Entry> entries) {
        for (Map.Entry<String, DiskUsage.Entry> each : entries.entrySet()) {
            SpaceAccounting.Usage usage = each.getValue().usage();
            byte[] model = history.models.get(each.getKey());
            long nonZeroBlocks = 0;
            for (int block = 0; block * BLOCK < model.length; block++) {
                if (!isZero(model, block)) {
                    nonZeroBlocks++;
                }
            }
            assertTrue(usage.mappedDataBlocks() >= nonZeroBlocks, history + ": " + each.getKey());
            assertTrue(usage.exclusiveBytes() <= usage.mappedBytes() && usage.sharedBytes() >= 0, history::toString);
            assertTrue(each.getValue().writtenBytes() <= usage.mappedDataBlocks() * BLOCK, history::toString);
        }
    }

    private static boolean isZero(byte[] model, int block) {
        for (int i = block * BLOCK; i < Math.min(model.length, (block + 1) * BLOCK); i++) {
            if (model[i] != 0) {
                return false;
            }
        }
        return true;
    }

    static Map<String, DiskUsage.Entry> byReference(DiskUsage.Report report) {
        return report.entries().stream().collect(Collectors.toMap(entry -> entry.version().reference(),
                Function.identity(), (a, b) -> a, java.util.LinkedHashMap::new));
    }

    static byte[] filled(int length, int value) {
        byte[] data = new byte[length];
        java.util.Arrays.fill(data, (byte) value);
        return data;
    }

}
