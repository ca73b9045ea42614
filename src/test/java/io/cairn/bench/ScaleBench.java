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
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.LongSupplier;

/**
 * Cost of everyday operations as a store grows to many VDIs, one VDI to many snapshots, or one snapshot to
 * many clones (issue 7, target 5: 100,000 of each; "flat, or explain the growth"). A program, not a test;
 * run it with {@code bench/scale.sh}.
 *
 * <p>One store in a sparse file holds a 64 MiB disk {@code data} full of random data. It then grows in
 * steps to each size in SIZES — in mode {@code vdis} by creating empty VDIs, in mode {@code snapshots} by
 * taking snapshots of {@code data} with a 4 KiB write to a random block before each (so every snapshot
 * holds its own path of nodes, as a real history does), in mode {@code clones} by cloning one snapshot of
 * {@code data} ({@code data@gold}, the golden image) and writing 4 KiB to a random block of each clone (so
 * every clone holds its own path of nodes, as a booted VM's disk does) — committing every {@value #BATCH}
 * changes. At each size it prints (medians; the machine's other load shows in single figures):
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
 *   <li>{@code held}: the Java heap in use by the process that grew the store, with the store still open
 *       (what a server keeps that created or wrote the disks added since the previous size: the store is
 *       reopened for each size), MiB; {@code meta}: the store's metadata
 *       (radix nodes, tables, counters), MiB;</li>
 *   <li>{@code open}: {@link Store#openFile} of the closed store (writable, as a server opens it), ms, and
 *       {@code heap}: the Java heap in use with it open, MiB;</li>
 *   <li>{@code cli-list}: wall time of {@code cairn list STORE --json} in a new JVM (about half a second of
 *       it is the JVM's start), s.</li>
 * </ul>
 * In mode {@code clones} also, in µs and in memory (without the commit): {@code clone}, one more clone of
 * {@code data@gold}; {@code rmclone}, deleting one clone ({@link Store#deleteVdi}); {@code csnap} and
 * {@code cdel}, a snapshot of a clone and deleting it; and {@code cread50}, {@code cread99}: 4 KiB random
 * reads of one clone (blocks it shares with the golden image but one).
 *
 * <p>Arguments: {@code PATH vdis|snapshots|clones SIZES CAIRN}, e.g. {@code target/scale.cairn vdis
 * 1000,10000,100000 bin/cairn}. PATH must not exist; it is deleted at the end.
 */
public final class ScaleBench {

    private static final int BATCH = 1000;
    private static final long DATA_BYTES = 64L << 20;
    private static final int READS = 20_000;
    private static final String GOLD = "data@gold";

    private enum Mode { VDIS, SNAPSHOTS, CLONES }

    /** A printed column: the key rows give its value by, its heading, unit and format. */
    private record Column(String key, String heading, String unit, int width, int decimals) {
        Column(String key, String unit, int width, int decimals) {
            this(key, key, unit, width, decimals);
        }
    }

    private static final List<Column> COLUMNS = List.of(
            new Column("size", "", 8, 0), new Column("grow/s", "", 9, 0), new Column("list", "ms", 8, 2),
            new Column("log", "ms", 8, 2), new Column("snap", "µs", 8, 1), new Column("label", "µs", 8, 1),
            new Column("create", "µs", 8, 1), new Column("snap+c", "ms", 8, 2),
            new Column("snap+c cpu", "snap+c", "cpu µs", 9, 0), new Column("delete", "µs", 8, 1),
            new Column("open@old", "µs", 9, 0), new Column("read50", "µs", 8, 1), new Column("read99", "µs", 8, 1),
            new Column("held", "MiB", 8, 0), new Column("meta", "MiB", 8, 0), new Column("open", "ms", 8, 0),
            new Column("heap", "MiB", 8, 0), new Column("cli-list", "s", 8, 2));
    private static final List<Column> CLONE_COLUMNS = List.of(
            new Column("clone", "µs", 8, 1), new Column("rmclone", "µs", 8, 1), new Column("csnap", "µs", 8, 1),
            new Column("cdel", "µs", 8, 1), new Column("cread50", "µs", 8, 1), new Column("cread99", "µs", 8, 1));

    private final Path path;
    private final Mode mode;
    private final String cli;
    private final SplittableRandom random = new SplittableRandom(11);
    private final ByteBuffer block = ByteBuffer.allocate(Layout.BLOCK_BYTES);
    private int vdiCount;      // VDIs created so far, the data disk included
    private int snapshotCount; // snapshots taken so far, of any disk
    private int cloneCount;    // clones of data@gold grown so far (named clone-NNNNNN)
    private int measurement;   // numbers the extra VDIs and labels the measurements add

    private ScaleBench(Path path, Mode mode, String cli) {
        this.path = path;
        this.mode = mode;
        this.cli = cli;
    }

    public static void main(String[] args) throws Exception {
        List<String> modes = Arrays.stream(Mode.values()).map(m -> m.name().toLowerCase(Locale.ROOT)).toList();
        if (args.length != 4 || !modes.contains(args[1])) {
            throw new IllegalArgumentException("usage: ScaleBench PATH " + String.join("|", modes) + " SIZES CAIRN");
        }
        Path path = Path.of(args[0]);
        if (Files.exists(path)) {
            throw new IllegalArgumentException(path + " already exists; remove it first");
        }
        int[] sizes = Arrays.stream(args[2].split(",")).mapToInt(s -> Integer.parseInt(s.trim())).sorted().toArray();
        try {
            new ScaleBench(path, Mode.valueOf(args[1].toUpperCase(Locale.ROOT)), args[3]).run(sizes);
        } finally {
            Files.deleteIfExists(path);
        }
    }

    private void run(int[] sizes) throws Exception {
        long largest = sizes[sizes.length - 1] + 2L * BATCH;
        // Blocks each step of growth takes: a VDI one root node; a snapshot-with-write about three (two nodes,
        // one data block); a written clone three as well (its root, the leaf it wrote and the data block). Past the
        // largest reference count (65,535, after about 67,000 clones) the golden image's leaves are shared through
        // copies, one per 65,535 clones (TreeSpace, substitutes), and a reopen makes one fresh copy of each: a
        // fourth block per clone is ample. The file is sparse: this bounds it, it is not written.
        long blocksPerStep = switch (mode) {
            case VDIS -> 1;
            case SNAPSHOTS -> 3;
            case CLONES -> 4;
        };
        long storeBytes = DATA_BYTES + blocksPerStep * largest * Layout.BLOCK_BYTES + (1L << 30);
        Store store = Store.formatFile(path, storeBytes, Layout.defaultExtentBlocks(storeBytes), StoreOptions.defaults());
        store.create("data", DATA_BYTES);
        vdiCount = 1;
        try (Volume volume = store.openVolume("data")) {
            byte[] chunk = new byte[4 << 20];
            for (long offset = 0; offset < DATA_BYTES; offset += chunk.length) {
                new java.util.Random(offset).nextBytes(chunk);
                volume.write(offset, ByteBuffer.wrap(chunk), false);
            }
        }
        if (mode == Mode.CLONES) {
            store.snapshot("data", "gold");
            snapshotCount++;
        }
        store.commit();
        System.out.printf(Locale.ROOT, "%s: %s%n", switch (mode) {
            case VDIS -> "VDIs in one store";
            case SNAPSHOTS -> "snapshots of one VDI";
            case CLONES -> "clones of one snapshot, each written once";
        }, path);
        List<Column> columns = new ArrayList<>(COLUMNS);
        if (mode == Mode.CLONES) {
            columns.addAll(CLONE_COLUMNS);
        }
        StringBuilder headings = new StringBuilder();
        StringBuilder units = new StringBuilder();
        for (Column column : columns) {
            String format = "%" + column.width() + "s";
            headings.append(headings.isEmpty() ? "" : " ").append(String.format(Locale.ROOT, format, column.heading()));
            units.append(units.isEmpty() ? "" : " ").append(String.format(Locale.ROOT, format, column.unit()));
        }
        System.out.println(headings);
        System.out.println(units);
        for (int size : sizes) {
            long started = System.nanoTime();
            int grown = grow(store, size);
            Map<String, Double> row = new HashMap<>();
            row.put("size", (double) size);
            row.put("grow/s", grown / ((System.nanoTime() - started) / 1e9));
            measureOpen(store, row);
            row.put("held", heldHeap() / 1048576.0); // the grown store still open and referenced
            row.put("meta", store.spaceReport().metadataBytes() / 1048576.0);
            store.close();
            store = null; // the closed store's cache still holds nodes: let the heap figure leave it out
            long[] open = openAndHeap();
            row.put("open", open[0] / 1e6);
            row.put("heap", open[1] / 1048576.0);
            row.put("cli-list", cliList());
            StringBuilder line = new StringBuilder();
            for (Column column : columns) {
                line.append(line.isEmpty() ? "" : " ").append(String.format(Locale.ROOT,
                        "%" + column.width() + "." + column.decimals() + "f", row.get(column.key())));
            }
            System.out.println(line);
            store = Store.openFile(path, StoreOptions.defaults());
        }
        store.close();
    }

    /** Adds VDIs, snapshots or clones until there are {@code size}; returns how many it added. */
    private int grow(Store store, int size) {
        int added = 0;
        switch (mode) {
            case SNAPSHOTS -> {
                try (Volume volume = store.openVolume("data")) {
                    while (snapshotCount < size) {
                        writeRandomBlock(volume);
                        store.snapshot("data", null);
                        snapshotCount++;
                        if (++added % BATCH == 0) {
                            store.commit();
                        }
                    }
                }
            }
            case VDIS -> {
                while (vdiCount < size) {
                    store.create(String.format(Locale.ROOT, "vdi-%06d", vdiCount), 1L << 30);
                    vdiCount++;
                    if (++added % BATCH == 0) {
                        store.commit();
                    }
                }
            }
            case CLONES -> {
                while (cloneCount < size) {
                    String name = cloneName(cloneCount);
                    store.clone(name, GOLD);
                    try (Volume volume = store.openVolume(name)) {
                        writeRandomBlock(volume);
                    }
                    cloneCount++;
                    vdiCount++;
                    if (++added % BATCH == 0) {
                        store.commit();
                    }
                }
            }
        }
        store.commit();
        return added;
    }

    private static String cloneName(int number) {
        return String.format(Locale.ROOT, "clone-%06d", number);
    }

    /** 4 KiB of random bytes to a random block of the first {@link #DATA_BYTES} of {@code volume}. */
    private void writeRandomBlock(Volume volume) {
        random.nextBytes(block.array());
        volume.write(random.nextLong(DATA_BYTES / Layout.BLOCK_BYTES) * Layout.BLOCK_BYTES, block.clear(), false);
    }

    private void measureOpen(Store store, Map<String, Double> row) {
        row.put("list", median(5, () -> nanos(() -> {
            int n = store.listVdis(false).size();
            if (n != vdiCount) {
                throw new IllegalStateException("listed " + n + " disks, expected " + vdiCount);
            }
        })) / 1e6);
        row.put("log", median(5, () -> nanos(() -> store.snapshots("data"))) / 1e6);
        row.put("snap", median(21, () -> {
            long elapsed = nanos(() -> store.snapshot("data", null));
            snapshotCount++;
            return elapsed;
        }) / 1e3);
        row.put("label", median(21, () -> {
            String label = "m" + (measurement++);
            long elapsed = nanos(() -> store.snapshot("data", label));
            snapshotCount++;
            return elapsed;
        }) / 1e3);
        row.put("create", median(21, () -> {
            String name = "extra-" + (measurement++);
            long elapsed = nanos(() -> store.create(name, 1L << 30));
            vdiCount++;
            return elapsed;
        }) / 1e3);
        store.commit();
        row.put("snap+c", median(11, () -> {
            snapshotCount++;
            return nanos(() -> {
                store.snapshot("data", null);
                store.commit();
            });
        }) / 1e6);
        // The same on this thread's CPU clock: without the waits for the two flushes and for other processes.
        java.lang.management.ThreadMXBean threads = java.lang.management.ManagementFactory.getThreadMXBean();
        row.put("snap+c cpu", median(11, () -> {
            long t = threads.getCurrentThreadCpuTime();
            store.snapshot("data", null);
            store.commit();
            snapshotCount++;
            return threads.getCurrentThreadCpuTime() - t;
        }) / 1e3);
        List<SnapshotInfo> log0 = store.snapshots("data");
        String oldest = log0.getFirst().reference();
        // Deletes the newest snapshots, which the measurements above added (the sizes stay as grown).
        row.put("delete", deleteMicros(store, log0.subList(log0.size() - 11, log0.size())));
        store.commit();
        row.put("open@old", median(11, () -> nanos(() -> store.openVolume(oldest).close())) / 1e3);
        readMicros(store, "data", row, "read50", "read99");
        if (mode == Mode.CLONES) {
            measureClones(store, row);
        }
    }

    /** The clone columns: one more clone, deleting one, a snapshot of a clone and its deletion, reads of a clone. */
    private void measureClones(Store store, Map<String, Double> row) {
        List<String> extra = new ArrayList<>();
        row.put("clone", median(21, () -> {
            String name = "xclone-" + (measurement++);
            long elapsed = nanos(() -> store.clone(name, GOLD));
            extra.add(name);
            vdiCount++;
            return elapsed;
        }) / 1e3);
        store.commit();
        row.put("rmclone", median(21, () -> {
            String name = extra.removeLast();
            long elapsed = nanos(() -> store.deleteVdi(name, false));
            vdiCount--;
            return elapsed;
        }) / 1e3);
        store.commit();
        List<SnapshotInfo> taken = new ArrayList<>();
        row.put("csnap", median(11, () -> {
            String clone = cloneName(random.nextInt(cloneCount));
            SnapshotInfo[] snapshot = new SnapshotInfo[1];
            long elapsed = nanos(() -> snapshot[0] = store.snapshot(clone, null));
            taken.add(snapshot[0]);
            snapshotCount++;
            return elapsed;
        }) / 1e3);
        store.commit();
        row.put("cdel", deleteMicros(store, taken));
        store.commit();
        readMicros(store, cloneName(cloneCount / 2), row, "cread50", "cread99");
    }

    /** Median time of {@link Store#deleteSnapshot} of each of {@code snapshots}, in memory, µs. */
    private double deleteMicros(Store store, List<SnapshotInfo> snapshots) {
        int[] next = {0};
        double micros = median(snapshots.size(), () -> {
            String reference = snapshots.get(next[0]++).reference();
            return nanos(() -> store.deleteSnapshot(reference));
        }) / 1e3;
        snapshotCount -= snapshots.size();
        return micros;
    }

    /** Median and 99th percentile of 4 KiB random reads of {@code disk} (after as many to warm up), µs. */
    private void readMicros(Store store, String disk, Map<String, Double> row, String median, String percentile99) {
        long[] reads = new long[READS];
        try (Volume volume = store.openVolume(disk)) {
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
        row.put(median, reads[READS / 2] / 1e3);
        row.put(percentile99, reads[READS * 99 / 100] / 1e3);
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

    /** Wall time of {@code operation}, ns. */
    private static long nanos(Runnable operation) {
        long t = System.nanoTime();
        operation.run();
        return System.nanoTime() - t;
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
