package io.cairn.bench;

import io.cairn.gc.CheckReport;
import io.cairn.gc.Checker;
import io.cairn.gc.GarbageCollector;
import io.cairn.gc.GcReport;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * The garbage collector's rate in GB of blockstore per second, as Parallax reports it (seed 003 §6.4:
 * 0.96 GB/s; Cairn's target is 2 GB/s). A program, not a test (STYLE 14); run it with
 * {@code bench/gc-rate.sh}.
 *
 * <p>It fills a store in a sparse file through the engine: {@code disks} disks share the store, each
 * written whole in 1 MiB writes, snapshotted, then partly overwritten and snapshotted again (so
 * snapshots hold their own leaf nodes and data), until about {@code fill} of the store is in use. It
 * closes the store, reopens it (empty node cache), leaks a few blocks the way a crash does, and runs
 * the collector {@code runs} times, printing each report; the first run collects the leaks.
 *
 * <p>Arguments: {@code PATH [SIZE_GIB] [FILL] [DISKS] [RUNS]}, defaults {@code 16 0.8 4 3}. An existing
 * store at PATH is reused as it is (delete it to refill); RUNS 0 only fills.
 */
public final class GcRate {

    private static final int EXTENT_BLOCKS = 16384; // 64 MiB, the CLI's default
    private static final int WRITE_BYTES = 1 << 20;

    private GcRate() {
    }

    public static void main(String[] args) throws Exception {
        Path path = Path.of(args.length > 0 ? args[0] : "target/gc-rate.cairn");
        long sizeBytes = (args.length > 1 ? Long.parseLong(args[1]) : 16) << 30;
        double fill = args.length > 2 ? Double.parseDouble(args[2]) : 0.8;
        int disks = args.length > 3 ? Integer.parseInt(args[3]) : 4;
        int runs = args.length > 4 ? Integer.parseInt(args[4]) : 3;
        if (!Files.exists(path)) {
            fillStore(path, sizeBytes, fill, disks);
        }
        if (runs == 0) {
            return; // fill only
        }
        try (Store store = Store.openFile(path, StoreOptions.defaults())) {
            Store.StoreSpace space = store.spaceReport();
            System.out.printf(Locale.ROOT, "store %s: %.2f GiB, data %.2f GiB, metadata %.1f MiB, free %.2f GiB; %d disks, %d snapshots%n",
                    path, space.totalBytes() / 1073741824.0, space.dataBytes() / 1073741824.0,
                    space.metadataBytes() / 1048576.0, space.freeBytes() / 1073741824.0,
                    store.listVdis(false).size(), store.allSnapshots().stream().filter(s -> !s.deleted()).count());
            leakLikeACrash(store);
            for (int run = 1; run <= runs; run++) {
                GcReport report = GarbageCollector.collect(store);
                System.out.printf(Locale.ROOT, "run %d: %s", run, report.summary());
            }
            long started = System.nanoTime();
            CheckReport check = Checker.check(store);
            System.out.printf(Locale.ROOT, "check after gc: %s in %.3f s%n", check.clean() ? "clean" : check.summary(),
                    (System.nanoTime() - started) / 1e9);
        }
    }

    private static void fillStore(Path path, long sizeBytes, double fill, int disks) {
        long started = System.nanoTime();
        long diskBytes = (long) (sizeBytes * fill / disks / 1.25) / WRITE_BYTES * WRITE_BYTES;
        try (Store store = Store.formatFile(path, sizeBytes, EXTENT_BLOCKS, StoreOptions.defaults())) {
            ByteBuffer buffer = ByteBuffer.allocate(WRITE_BYTES);
            long written = 0;
            for (int d = 0; d < disks; d++) {
                String name = "disk" + d;
                store.create(name, diskBytes);
                try (Volume volume = store.openVolume(name)) {
                    for (long offset = 0; offset < diskBytes; offset += WRITE_BYTES) {
                        volume.write(offset, stamp(buffer, d, offset, 0), false);
                        written += WRITE_BYTES;
                        if (written % (256L << 20) == 0) {
                            store.commit();
                        }
                    }
                    store.snapshot(name, "full");
                    // Overwrite every fourth MiB: the snapshot keeps the old blocks and its own leaf nodes.
                    for (long offset = 0; offset < diskBytes; offset += 4L * WRITE_BYTES) {
                        volume.write(offset, stamp(buffer, d, offset, 1), false);
                    }
                    store.snapshot(name, "partial");
                    store.commit();
                }
                System.out.printf(Locale.ROOT, "filled %s (%d MiB) at %.0f s%n", name, diskBytes >> 20,
                        (System.nanoTime() - started) / 1e9);
            }
        }
    }

    /** A cheap, distinct pattern per disk, offset and pass (the collector never reads data). */
    private static ByteBuffer stamp(ByteBuffer buffer, int disk, long offset, int pass) {
        buffer.clear();
        long value = ((long) disk << 56) ^ ((long) pass << 48) ^ offset;
        while (buffer.hasRemaining()) {
            buffer.putLong(value++);
        }
        return buffer.flip();
    }

    /** A few leaks of both kinds, as a cut between two commits leaves them. */
    private static void leakLikeACrash(Store store) {
        store.inspect(internals -> {
            for (int i = 0; i < 8; i++) {
                internals.space().allocate(io.cairn.alloc.SpaceMap.Purpose.DATA);
            }
            var root = internals.vdiRoots().values().iterator().next();
            internals.space().repairCount(root.root(), internals.space().count(root.root()) + 1);
            return null;
        });
    }
}
