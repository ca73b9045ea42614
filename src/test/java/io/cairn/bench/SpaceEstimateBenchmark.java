package io.cairn.bench;

import io.cairn.space.SketchedSpace;
import io.cairn.space.SnapshotHistory;
import io.cairn.space.SpaceSelection;
import io.cairn.volume.SketchCatalog;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * The sketched space report over a disk with 10,000 snapshots ({@link SnapshotHistory}: 4 random block
 * writes between snapshots, about 40,500 distinct data blocks). Run with {@code bench/jmh.sh SpaceEstimate}.
 *
 * <ul>
 *   <li>{@link #report}: held and freed-if-deleted for a selection, from a catalogue of deltas already in
 *       memory, with the checkpoint cache warm (a server answering repeated reports).</li>
 *   <li>{@link #catalogueAndReport}: the same, plus taking the store's catalogue (checking every snapshot's
 *       delta is current and comparing the live disk with its newest snapshot): what one
 *       {@code du --estimate} against a running server costs.</li>
 *   <li>{@link #coldReport}: a report with an empty checkpoint cache (the first report after opening,
 *       once the deltas are in memory).</li>
 * </ul>
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xms2g", "-Xmx2g"})
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
public class SpaceEstimateBenchmark {

    @State(Scope.Benchmark)
    public static class History {
        /** Which snapshots: all, the first half, or the newest 100. */
        @Param({"all", "half", "newest100"})
        String selection;

        SnapshotHistory history;
        SketchCatalog catalog;
        Set<Long> selected;
        final SketchedSpace warm = new SketchedSpace();

        @Setup(Level.Trial)
        public void setUp() {
            history = SnapshotHistory.build(10_000, 4, 20261121L);
            catalog = history.store.sketchCatalog(false);
            String target = switch (selection) {
                case "all" -> SnapshotHistory.DISK;
                case "half" -> history.range(0, 4_999);
                default -> history.range(9_900, 9_999);
            };
            selected = SpaceSelection.resolve(history.store, target).snapshotIds();
            warm.report(catalog, selected);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            history.store.close();
        }
    }

    @Benchmark
    public SketchedSpace.Report report(History state) {
        return state.warm.report(state.catalog, state.selected);
    }

    @Benchmark
    public SketchedSpace.Report catalogueAndReport(History state) {
        return state.warm.report(state.history.store.sketchCatalog(false), state.selected);
    }

    @Benchmark
    public SketchedSpace.Report coldReport(History state) {
        return new SketchedSpace().report(state.catalog, state.selected);
    }
}
