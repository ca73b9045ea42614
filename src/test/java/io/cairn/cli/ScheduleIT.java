package io.cairn.cli;

import static io.cairn.cli.Served.cairnOk;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.format.Layout;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Continuous snapshots in a real server: {@code serve --snapshot-every}, the latencies it reports, a
 * {@code --no-wait} snapshot, and what survives a stop: the schedule's newest snapshots and the one taken by
 * hand, in a store the checker finds clean.
 */
@Timeout(value = 110, unit = TimeUnit.SECONDS)
class ScheduleIT {

    @TempDir
    Path directory;

    @Test
    @SuppressWarnings("unchecked")
    void aServerSnapshotsOnScheduleKeepsTheNewestAndReportsWhatItCost() throws Exception {
        Path storeFile = directory.resolve("store.cairn");
        try (Store created = Store.formatFile(storeFile, 1L << 30, Layout.defaultExtentBlocks(1L << 30), StoreOptions.defaults())) {
            created.create("disk0", 16L << 20);
            try (Volume volume = created.openVolume("disk0")) {
                volume.write(0, ByteBuffer.allocate(1 << 20), false);
            }
        }
        String store = storeFile.toString();
        try (Served server = Served.start(directory, store, "--snapshot-every", "5ms:disk0", "--keep-snapshots", "4")) {
            Thread.sleep(1000);
            String id = cairnOk(directory, "snapshot", store, "disk0", "--label", "by-hand", "--no-wait").out().strip();
            assertTrue(id.matches("\\d+"), id);

            Map<String, Object> stats = JsonParser.parseObject(cairnOk(directory, "stats", store, "--json").out());
            Map<String, Object> taken = (Map<String, Object>) stats.get("snapshot_taken");
            Map<String, Object> durable = (Map<String, Object>) stats.get("snapshot_durable");
            assertTrue(((Number) taken.get("count")).longValue() >= 20, stats.toString());
            assertTrue(((Number) durable.get("count")).longValue() >= 1, stats.toString());
            assertTrue(((Number) durable.get("maxNanos")).longValue() >= ((Number) taken.get("p50Nanos")).longValue(),
                    "durable includes taken: " + stats);

            String listing = cairnOk(directory, "schedule", store).out();
            assertTrue(listing.lines().skip(1).findFirst().orElseThrow().matches("disk0\\s+5ms\\s+4\\s+.*running"), listing);
            assertEquals(0, server.signal("TERM", Duration.ofSeconds(60)), server::describe);
        }
        // Stopped: the schedule's newest four and the one by hand are committed; nothing else is left.
        Map<String, Object> listed = JsonParser.parseObject(cairnOk(directory, "snapshots", store, "disk0", "--json").out());
        List<Map<String, Object>> snapshots = (List<Map<String, Object>>) listed.get("snapshots");
        assertEquals(5, snapshots.size(), listed.toString());
        assertTrue(snapshots.stream().anyMatch(snapshot -> "by-hand".equals(snapshot.get("label"))), listed.toString());
        cairnOk(directory, "check", store);
    }
}
