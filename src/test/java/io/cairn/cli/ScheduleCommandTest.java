package io.cairn.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.format.Layout;
import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code schedule}, {@code stats} and {@code snapshot --no-wait} as the admin server runs them: against a
 * store registered as served by this process (what {@code cairn serve} does), in this JVM.
 */
@Timeout(120)
class ScheduleCommandTest {

    @TempDir
    Path directory;

    @Test
    void schedulesListStopAndReportLatenciesOnAServedStore() throws Exception {
        Path path = directory.resolve("store.cairn");
        Store store = Store.formatFile(path, 256L << 20, Layout.defaultExtentBlocks(256L << 20), StoreOptions.defaults());
        store.create("disk0", 8L << 20);
        LiveStores.register(path, store);
        try {
            Cli.Result started = Cli.run("schedule", path, "disk0", "--every", "2ms", "--keep", "3");
            assertEquals(0, started.exitCode(), started::toString);
            assertEquals("snapshotting disk0 every 2ms, keeping the newest 3\n", started.out());

            Cli.Result byHand = Cli.run("snapshot", path, "disk0", "--label", "mine", "--no-wait");
            assertEquals(0, byHand.exitCode(), byHand::toString);
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (store.latencies().report().snapshotTaken().count() < 20) {
                assertTrue(System.nanoTime() < deadline, "the schedule runs");
                Thread.sleep(5);
            }
            Cli.Result listed = Cli.run("schedule", path);
            assertEquals(0, listed.exitCode(), listed::toString);
            String row = listed.out().lines().skip(1).findFirst().orElseThrow();
            assertTrue(row.matches("disk0\\s+2ms\\s+3\\s+\\d+\\s+\\d+\\s+\\d+\\s+[34]\\s+disk0@\\d+\\s+running"), listed.out()); // 4 between a tick's snapshot and its deletion

            Cli.Result stopped = Cli.run("schedule", path, "disk0", "--stop");
            assertEquals(0, stopped.exitCode(), stopped::toString);
            assertTrue(stopped.out().matches("stopped snapshotting disk0 after \\d+ snapshot\\(s\\); 3 of them kept\n"),
                    stopped.out());
            List<SnapshotInfo> left = store.snapshots("disk0");
            assertEquals(4, left.size(), "the newest three and the one by hand: " + left);
            assertTrue(left.stream().anyMatch(snapshot -> snapshot.label().equals("mine")));

            Cli.Result stats = Cli.run("stats", path, "--json", "--reset");
            assertEquals(0, stats.exitCode(), stats::toString);
            Map<?, ?> figures = (Map<?, ?>) JsonParser.parse(stats.out());
            Map<?, ?> taken = (Map<?, ?>) figures.get("snapshot_taken");
            long count = ((Number) taken.get("count")).longValue();
            assertTrue(count >= 20, stats.out());
            assertTrue(((Number) taken.get("p50Nanos")).longValue() <= ((Number) taken.get("maxNanos")).longValue());
            Map<?, ?> copyOnWrite = (Map<?, ?>) figures.get("copy_on_write");
            for (String shadowCount : new String[] {"leavesCopied", "innerNodesCopied", "nodesMoved"}) {
                assertTrue(((Number) copyOnWrite.get(shadowCount)).longValue() >= 0, stats.out());
            }
            Cli.Result afterReset = Cli.run("stats", path);
            assertEquals(0, afterReset.exitCode(), afterReset::toString);
            assertTrue(afterReset.out().lines().anyMatch(line -> line.matches("snapshot taken\\s+0\\s+-.*")), afterReset.out());
            assertTrue(afterReset.out().contains("copy-on-write: 0 leaves and 0 inner nodes copied (shared), 0 nodes moved (durable)\n"),
                    afterReset.out());
        } finally {
            LiveStores.unregister(path);
            store.close();
        }
    }

    @Test
    void commandsThatNeedAServerSaySoAndBadArgumentsAreUsageErrors() throws Exception {
        Path path = directory.resolve("store.cairn");
        Store.formatFile(path, 256L << 20, Layout.defaultExtentBlocks(256L << 20), StoreOptions.defaults()).close();
        Cli.Result schedule = Cli.run("schedule", path, "disk0", "--every", "10ms");
        assertEquals(ExitCodes.USAGE, schedule.exitCode(), schedule::toString);
        assertTrue(schedule.err().contains("cairn schedule needs a running server, and none serves"), schedule.err());
        Cli.Result stats = Cli.run("stats", path);
        assertEquals(ExitCodes.USAGE, stats.exitCode(), stats::toString);
        assertTrue(stats.err().contains("cairn stats needs a running server"), stats.err());

        Cli.Result badInterval = Cli.run("schedule", path, "disk0", "--every", "10 parsecs");
        assertEquals(ExitCodes.USAGE, badInterval.exitCode(), badInterval::toString);
        assertTrue(badInterval.err().contains("'10 parsecs' is not an interval"), badInterval.err());

        Store store = Store.openFile(path, StoreOptions.defaults());
        LiveStores.register(path, store);
        try {
            Cli.Result both = Cli.run("schedule", path, "disk0", "--every", "10ms", "--stop");
            assertEquals(ExitCodes.USAGE, both.exitCode(), both::toString);
            Cli.Result tooFast = Cli.run("schedule", path, "disk0", "--every", "500us");
            assertEquals(ExitCodes.USAGE, tooFast.exitCode(), tooFast::toString);
            assertTrue(tooFast.err().contains("at least 1 ms"), tooFast.err());
            Cli.Result noDisk = Cli.run("schedule", path, "nope", "--every", "10ms");
            assertEquals(ExitCodes.NOT_FOUND, noDisk.exitCode(), noDisk::toString);
            Cli.Result noSchedule = Cli.run("schedule", path, "nope", "--stop");
            assertEquals(ExitCodes.NOT_FOUND, noSchedule.exitCode(), noSchedule::toString);
        } finally {
            LiveStores.unregister(path);
            store.close();
        }
    }

    @Test
    void intervalsReadAndPrintAsTyped() {
        assertEquals(Duration.ofMillis(10), Durations.parse("10ms"));
        assertEquals(Duration.ofNanos(250_000), Durations.parse("250us"));
        assertEquals(Duration.ofMinutes(5), Durations.parse(" 5M "));
        assertEquals("10ms", Durations.human(Duration.ofMillis(10)));
        assertEquals("2s", Durations.human(Duration.ofMillis(2000)));
        assertEquals("1500ms", Durations.human(Duration.ofMillis(1500)));
        assertEquals("1h", Durations.human(Duration.ofMinutes(60)));
    }
}
