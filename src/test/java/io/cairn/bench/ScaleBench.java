package io.cairn.bench;

import io.cairn.format.Layout;
import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;

import java.io.File;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.function.LongSupplier;

/**
 * Cost of everyday operations as a store grows to many VDIs, or one VDI to many snapshots (issue 7,
 * target 5: 100,000 of each; "flat, or explain the growth"). A program, not a test; run it with
 * {@code bench/scale.sh}.
 *
 * <p>One store in a sparse file holds a 64 MiB disk {@code data} full of random data. It then grows in
 * steps to each size in SIZES — in mode {@code vdis} by creating empty VDIs, in mode {@code snapshots} by
 * taking snapshots of {@code data} with a 4 KiB write to a random block before each (so every snapshot
 * holds its own path of nodes, as a real history does) — committing every {@value #BATCH} changes. At
 * each size it prints (medians; the machine's other load shows in single figures):
 * <ul>
 *   <li>{@code grow/s}: VDIs created or snapshots taken per second while growing to this size;</li>
 *   <li>{@code list}: {@link Store#listVdis}, ms; {@code log}: {@link Store#snapshots} of {@code data}, ms;</li>
 *   <li>{@code snap}, {@code label}, {@code create}: {@link Store#snapshot} without and with a new label, and
 *       {@link Store#create}, µs, without the commit; {@code snap+c}: a durable snapshot (snapshot and
 *       commit, which flushes the device twice), ms, and the same on the thread's CPU clock (no waiting for
 *       the flushes or for other processes), µs;</li>
 *   <li>{@code delete}: {@link Store#deleteSnapshot} of one of the snapshots just taken, in memory, µs;</li>
 *   <li>{@code open@old}: opening and closing the oldest snapshot of {@code data} as {@code data@ID}
 *       (what an NBD client's export name costs), µs;</li>
 *   <li>{@code read50}, {@code read99}: 4 KiB random reads of {@code data} through {@link Volume#read}, µs;</li>
 *   <li>{@code open}: {@link Store#openFile} of the closed store (writable, as a server opens it), ms, and
 *       {@code heap}: the Java heap in use with it open, MiB;</li>
 *   <li>{@code cli-list}: wall time of {@code cairn list STORE --json} in a new JVM (about half a second of
 *       it is the JVM's start), s.</li>
 * </ul>
 *
 * <p>Arguments: {@code PATH vdis|snapshots SIZES CAIRN}, e.g. {@code target/scale.cairn vdis
 * 1000,10000,100000 bin/cairn}. PATH must not exist; it is deleted at the end.
 */
public final class ScaleBench {

    private static final int BATCH = 1000;
    private static final long DATA_BYTES = 64L << 20;
    private static final int READS = 20_000;

    private final Path path;
    private final boolean snapshotMode;
    private final String cli;
    private final SplittableRandom random = new SplittableRandom(11);
    private final ByteBuffer block = ByteBuffer.allocate(Layout.BLOCK_BYTES);
    private int vdiCount;      // VDIs created so far, the data disk included
    private int snapshotCount; // snapshots taken so far, of any disk
    private int measurement;   // numbers the extra VDIs and labels the measurements add

    private ScaleBench(Path path, boolean snapshotMode, String cli) {
        this.path = path;
        this.snapshotMode = snapshotMode;
        this.cli = cli;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 4 || !(args[1].equals("vdis") || args[1].equals("snapshots"))) {
            throw new IllegalArgumentException("usage: ScaleBench PATH vdis|snapshots SIZES CAIRN");
        }
        Path path = Path.of(args[0]);
        if (Files.exists(path)) {
            throw new IllegalArgumentException(path + " already exists; remove it first");
        }
        int[] sizes = Arrays.stream(args[2].split(",")).mapToInt(s -> Integer.parseInt(s.trim())).sorted().toArray();
        try {
            new ScaleBench(path, args[1].equals("snapshots"), args[3]).run(sizes);
        } finally {
            Files.deleteIfExists(path);
        }
    }

    private void run(int[] sizes) throws Exception {
        // Each VDI takes one root node; each snapshot-with-write about three blocks (two nodes, one data).
        long largest = sizes[sizes.length - 1];
        long storeBytes = DATA_BYTES + (snapshotMode ? 3 : 1) * (largest + 2 * BATCH) * Layout.BLOCK_BYTES + (1L << 30);
        Store store = Store.formatFile(path, storeBytes, Layout.DEFAULT_EXTENT_BLOCKS, StoreOptions.defaults());
        store.create("data", DATA_BYTES);
        vdiCount = 1;
        try (Volume volume = store.openVolume("data")) {
            byte[] chunk = new byte[4 << 20];
            for (long offset = 0; offset < DATA_BYTES; offset += chunk.length) {
                new java.util.Random(offset).nextBytes(chunk);
                volume.write(offset, ByteBuffer.wrap(chunk), false);
            }
        }
        store.commit();
        System.out.printf(Locale.ROOT, "%s: %s%n", snapshotMode ? "snapshots of one VDI" : "VDIs in one store", path);
        System.out.printf(Locale.ROOT, "%8s %9s %8s %8s %8s %8s %8s %8s %9s %8s %9s %8s %8s %8s %8s %8s%n",
                "size", "grow/s", "list", "log", "snap", "label", "create", "snap+c", "snap+c", "delete", "open@old", "read50",
                "read99", "open", "heap", "cli-list");
        System.out.printf(Locale.ROOT, "%8s %9s %8s %8s %8s %8s %8s %8s %9s %8s %9s %8s %8s %8s %8s %8s%n",
                "", "", "ms", "ms", "µs", "µs", "µs", "ms", "cpu µs", "µs", "µs", "µs", "µs", "ms", "MiB", "s");
        for (int size : sizes) {
            long started = System.nanoTime();
            int grown = grow(store, size);
            double growPerSecond = grown / ((System.nanoTime() - started) / 1e9);
            Row row = measureOpen(store);
            store.close();
            store = null; // the closed store's cache still holds nodes: let the heap figure leave it out
            long[] open = openAndHeap();
            double cliSeconds = cliList();
            System.out.printf(Locale.ROOT, "%8d %9.0f %8.2f %8.2f %8.1f %8.1f %8.1f %8.2f %9.0f %8.1f %9.0f %8.1f %8.1f %8.0f %8.0f %8.2f%n",
                    size, growPerSecond, row.listMillis, row.logMillis, row.snapshotMicros, row.labelledMicros,
                    row.createMicros, row.snapshotCommitMillis, row.snapshotCommitCpuMicros, row.deleteMicros, row.openOldestMicros, row.read50Micros, row.read99Micros,
                    open[0] / 1e6, open[1] / 1048576.0, cliSeconds);
            store = Store.openFile(path, StoreOptions.defaults());
        }
        store.close();
    }

    /** Adds VDIs or snapshots until there are {@code size}; returns how many it added. */
    private int grow(Store store, int size) {
        int added = 0;
        if (snapshotMode) {
            try (Volume volume = store.openVolume("data")) {
                while (snapshotCount < size) {
                    random.nextBytes(block.array());
                    volume.write(random.nextLong(DATA_BYTES / Layout.BLOCK_BYTES) * Layout.BLOCK_BYTES, block.clear(), false);
                    store.snapshot("data", null);
                    snapshotCount++;
                    if (++added % BATCH == 0) {
                        store.commit();
                    }
                }
            }
        } else {
            while (vdiCount < size) {
                store.create(String.format(Locale.ROOT, "vdi-%06d", vdiCount), 1L << 30);
                vdiCount++;
                if (++added % BATCH == 0) {
                    store.commit();
                }
            }
        }
        store.commit();
        return added;
    }

    private record Row(double listMillis, double logMillis, double snapshotMicros, double labelledMicros,
                       double createMicros, double snapshotCommitMillis, double snapshotCommitCpuMicros, double deleteMicros, double openOldestMicros, double read50Micros, double read99Micros) {
    }

    private Row measureOpen(Store store) {
        double list = median(5, () -> {
            long t = System.nanoTime();
            int n = store.listVdis(false).size();
            if (n != vdiCount) {
                throw new IllegalStateException("listed " + n + " disks, expected " + vdiCount);
            }
            return System.nanoTime() - t;
        }) / 1e6;
        double log = median(5, () -> {
            long t = System.nanoTime();
            store.snapshots("data");
            return System.nanoTime() - t;
        }) / 1e6;
        double snapshot = median(21, () -> {
            long t = System.nanoTime();
            store.snapshot("data", null);
            long elapsed = System.nanoTime() - t;
            snapshotCount++;
            return elapsed;
        }) / 1e3;
        double labelled = median(21, () -> {
            String label = "m" + (measurement++);
            long t = System.nanoTime();
            store.snapshot("data", label);
            long elapsed = System.nanoTime() - t;
            snapshotCount++;
            return elapsed;
        }) / 1e3;
        double create = median(21, () -> {
            String name = "extra-" + (measurement++);
            long t = System.nanoTime();
            store.create(name, 1L << 30);
            long elapsed = System.nanoTime() - t;
            vdiCount++;
            return elapsed;
        }) / 1e3;
        store.commit();
        double snapshotCommit = median(11, () -> {
            long t = System.nanoTime();
            store.snapshot("data", null);
            store.commit();
            snapshotCount++;
            return System.nanoTime() - t;
        }) / 1e6;
        // The same on this thread's CPU clock: without the waits for the two flushes and for other processes.
        java.lang.management.ThreadMXBean threads = java.lang.management.ManagementFactory.getThreadMXBean();
        double snapshotCommitCpu = median(11, () -> {
            long t = threads.getCurrentThreadCpuTime();
            store.snapshot("data", null);
            store.commit();
            snapshotCount++;
            return threads.getCurrentThreadCpuTime() - t;
        }) / 1e3;
        List<SnapshotInfo> log0 = store.snapshots("data");
        String oldest = log0.getFirst().reference();
        // Deletes the newest snapshots, which the measurements above added (the sizes stay as grown).
        List<SnapshotInfo> newest = log0.subList(log0.size() - 11, log0.size());
        int[] next = {0};
        double delete = median(11, () -> {
            String reference = newest.get(next[0]++).reference();
            long t = System.nanoTime();
            store.deleteSnapshot(reference);
            return System.nanoTime() - t;
        }) / 1e3;
        snapshotCount -= 11;
        store.commit();
        double openOldest = median(11, () -> {
            long t = System.nanoTime();
            store.openVolume(oldest).close();
            return System.nanoTime() - t;
        }) / 1e3;
        long[] reads = new long[READS];
        try (Volume volume = store.openVolume("data")) {
            ByteBuffer buffer = ByteBuffer.allocateDirect(Layout.BLOCK_BYTES);
            long blocks = DATA_BYTES / Layout.BLOCK_BYTES;
            for (int i = 0; i < READS; i++) { // warm-up
                volume.read(random.nextLong(blocks) * Layout.BLOCK_BYTES, buffer.clear());
            }
            for (int i = 0; i < READS; i++) {
                long t = System.nanoTime();
                volume.read(random.nextLong(blocks) * Layout.BLOCK_BYTES, buffer.clear());
                reads[i] = System.nanoTime() - t;
            }
        }
        Arrays.sort(reads);
        return new Row(list, log, snapshot, labelled, create, snapshotCommit, snapshotCommitCpu, delete, openOldest, reads[READS / 2] / 1e3,
                reads[READS * 99 / 100] / 1e3);
    }

    /** Median of 3 opens (writable, as a server opens it), each closed at once; and the heap held by an open store. */
    private long[] openAndHeap() {
        long[] times = new long[3];
        long heap = 0;
        for (int i = 0; i < times.length; i++) {
            long t = System.nanoTime();
            Store store = Store.openFile(path, StoreOptions.defaults());
            times[i] = System.nanoTime() - t;
            if (i == times.length - 1) {
                heap = heldHeap();
            }
            store.close();
        }
        Arrays.sort(times);
        return new long[] {times[1], heap};
    }

    private static long heldHeap() {
        Runtime runtime = Runtime.getRuntime();
        for (int i = 0; i < 3; i++) {
            System.gc();
        }
        return runtime.totalMemory() - runtime.freeMemory();
    }

    /** Median wall time of three runs of {@code cairn list STORE --json}, whose output must list every VDI. */
    private double cliList() throws Exception {
        double[] seconds = {cliListOnce(), cliListOnce(), cliListOnce()};
        Arrays.sort(seconds);
        return seconds[1];
    }

    private double cliListOnce() throws Exception {
        File output = File.createTempFile("scale-list", ".json");
        try {
            long t = System.nanoTime();
            Process process = new ProcessBuilder(cli, "list", path.toString(), "--json")
                    .redirectOutput(output).redirectError(ProcessBuilder.Redirect.INHERIT).start();
            int status = process.waitFor();
            double seconds = (System.nanoTime() - t) / 1e9;
            if (status != 0) {
                throw new IllegalStateException(cli + " list exited with " + status);
            }
            String json = Files.readString(output.toPath());
            int names = json.split("\"name\"", -1).length - 1;
            if (names != vdiCount) {
                throw new IllegalStateException("cairn list --json printed " + names + " disks, expected " + vdiCount);
            }
            return seconds;
        } finally {
            Files.deleteIfExists(output.toPath());
        }
    }

    private static double median(int runs, LongSupplier nanos) {
        long[] values = new long[runs];
        for (int i = 0; i < runs; i++) {
            values[i] = nanos.getAsLong();
        }
        Arrays.sort(values);
        return values[runs / 2];
    }
}
