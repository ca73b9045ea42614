package io.cairn.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.format.Layout;
import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.gc.CheckReport;
import io.cairn.gc.Checker;
import io.cairn.volume.VdiInfo;
import io.cairn.volume.Volume;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * kill -9 of {@code bin/cairn serve} while clients write: every write a completed FLUSH (or FUA)
 * covered must read back exactly after a restart, and no sector may hold anything but its value at
 * the last covering flush or a value written after it. Each 512-byte sector written carries the id of
 * its write and its own position, with a body derived from both, so a torn, misplaced or invented
 * sector is caught. A snapshot taken through the CLI during the writes must, if the CLI reported
 * success, survive the crash, hold only data written to each place, and never change afterwards.
 *
 * <p>Seeded ({@code -Dcairn.kill.seed}, {@code -Dcairn.kill.rounds}); thread timing still varies.
 */
@Timeout(value = 170, unit = TimeUnit.SECONDS)
class KillIT {

    private static final int ROUNDS = Integer.getInteger("cairn.kill.rounds", 20);
    private static final long SEED = Long.getLong("cairn.kill.seed", 0x5EED_C0DEL);
    private static final int SECTOR = 512;
    private static final long DISK_BYTES = 32L << 20;
    private static final int SECTORS = (int) (DISK_BYTES / SECTOR);
    /** Writer t owns the stripes s with s % WRITERS == t, so each sector has one writer. */
    private static final int STRIPE_SECTORS = 128;
    private static final int WRITERS = 2;
    private static final int MAX_WRITE_SECTORS = 64;
    private static final int MAX_IDS = 1 << 21;
    private static final long SNAPSHOT_HEAD_START_MILLIS = 700;

    @TempDir
    Path directory;

    /** Per sector: the value the last completed flush (or FUA write) made durable; 0 = zeros. */
    private final int[] durable = new int[SECTORS];
    /** Per sector: values written since then, oldest first (in flight ones included). */
    private final int[][] pending = new int[SECTORS][];
    private final int[] pendingCount = new int[SECTORS];
    /** Per write id: first sector and sector count, to check that a sector's data was written there. */
    private final int[] writeStart = new int[MAX_IDS];
    private final int[] writeCount = new int[MAX_IDS];
    private final AtomicInteger nextId = new AtomicInteger(1);

    private final Stats stats = new Stats();
    /** Ids of the writes whose data was read back from disk0 after a restart. */
    private final java.util.BitSet readBack = new java.util.BitSet();

    private static final class Stats {
        long writes;
        long coveredWrites;
        long flushes;
        long exactSectors;
        long openSectors;
        long openSectorsNewest;
        int snapshotsByServer;
        int snapshotsOffline;
        int snapshotsFound;
        long snapshotSectors;
    }

    @Test
    void everyFlushedWriteSurvivesKillMinus9() throws Exception {
        long started = System.nanoTime();
        Path storeFile = directory.resolve("kill.cairn");
        try (Store created = Store.formatFile(storeFile, 512L << 20, Layout.defaultExtentBlocks(512L << 20), StoreOptions.defaults())) {
            created.create("disk0", DISK_BYTES);
        }
        String store = storeFile.toString();
        Map<String, String> snapshotDigests = new LinkedHashMap<>();
        Map<String, Boolean> snapshotReported = new LinkedHashMap<>();
        String lastDiskDigest = null;
        for (int round = 0; round <= ROUNDS; round++) {
            try (Served server = Served.start(directory, store)) {
                // Recovery after the previous round's kill: check the disk and that round's snapshot.
                lastDiskDigest = verifyDisk(server.port(), round);
                for (Map.Entry<String, Boolean> snapshot : snapshotReported.entrySet()) {
                    if (!snapshotDigests.containsKey(snapshot.getKey())) {
                        String digest = verifySnapshot(server.port(), snapshot.getKey(), snapshot.getValue());
                        if (digest != null) {
                            snapshotDigests.put(snapshot.getKey(), digest);
                        }
                    }
                }
                if (round == ROUNDS) {
                    assertEquals(0, server.signal("TERM", Duration.ofSeconds(60)), server::describe);
                    break;
                }
                Boolean reported = runRound(server, store, round);
                if (reported != null) {
                    snapshotReported.put("r" + round, reported);
                }
            }
        }
        // Offline through the engine: the store opens, every disk and snapshot reads, snapshots read as
        // they did right after the crash that followed them, and the checker finds no damage (leaks from
        // the kills are allowed).
        try (Store reopened = Store.openFile(directory.resolve("kill.cairn"), StoreOptions.defaults().withReadOnly(true))) {
            List<VdiInfo> disks = reopened.listVdis(false);
            assertEquals(List.of("disk0"), disks.stream().map(VdiInfo::name).toList());
            assertEquals(lastDiskDigest, digest(readVolume(reopened, "disk0")), "disk0 offline");
            List<SnapshotInfo> snapshots = reopened.snapshots("disk0");
            Map<String, String> offline = new LinkedHashMap<>();
            for (SnapshotInfo snapshot : snapshots) {
                offline.put(snapshot.label(), digest(readVolume(reopened, snapshot.reference())));
            }
            assertEquals(snapshotDigests, offline, "snapshots offline");
            CheckReport report = Checker.check(reopened);
            assertFalse(report.damaged(), () -> "checker after " + ROUNDS + " kills: " + report.summary());
        }
        System.out.printf("KillIT: seed %d, %d rounds in %d s: %d writes (%d covered by a completed flush or FUA),"
                        + " %d flushes; after restarts %d sectors read back exactly, %d sectors had writes in flight"
                        + " (%d showed the newest), %d distinct writes read back; snapshots: %d taken by the server under"
                        + " load, %d offline after the kill, %d found after restarts, %d sectors checked%n", SEED, ROUNDS,
                TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - started), stats.writes, stats.coveredWrites,
                stats.flushes, stats.exactSectors, stats.openSectors, stats.openSectorsNewest,
                readBack.cardinality() - (readBack.get(0) ? 1 : 0),
                stats.snapshotsByServer, stats.snapshotsOffline, stats.snapshotsFound, stats.snapshotSectors);
        assertTrue(stats.coveredWrites > ROUNDS, "the writers got flushes through: " + stats.coveredWrites);
    }

    /**
     * Writes (and in odd rounds snapshots through the CLI), kills the server at a seeded moment; whether
     * the CLI reported the snapshot taken, or null if there was none.
     */
    private Boolean runRound(Served server, String store, int round) throws Exception {
        SplittableRandom random = new SplittableRandom(SEED * 1_000_003 + round);
        // The snapshot command is started a little before the writers (its JVM takes about a second to
        // get going), so the kill lands before it reaches the server, while the server takes it, or after.
        long ioMillis = 250 + random.nextInt(1000);
        boolean withSnapshot = round % 2 == 1; // every other round: a CLI run after the kill costs a JVM start
        AtomicBoolean killed = new AtomicBoolean();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        AtomicReference<Served.Result> snapshot = new AtomicReference<>();
        Thread snapshotter = Thread.ofPlatform().name("snapshot").start(() -> {
            try {
                if (withSnapshot) {
                    snapshot.set(Served.cairn(directory, "snapshot", store, "disk0", "--label", "r" + round));
                }
            } catch (Throwable e) {
                failure.compareAndSet(null, e);
            }
        });
        if (withSnapshot) {
            Thread.sleep(SNAPSHOT_HEAD_START_MILLIS);
        }
        List<Thread> writers = new ArrayList<>();
        long[] writesBefore = {stats.writes};
        for (int t = 0; t < WRITERS; t++) {
            int writer = t;
            long seed = random.nextLong();
            writers.add(Thread.ofPlatform().name("writer-" + t).start(() -> {
                try {
                    write(server.port(), writer, new SplittableRandom(seed));
                } catch (PlainNbdClient.NbdError refused) {
                    failure.compareAndSet(null, refused); // an error reply, not the end of the server
                } catch (IOException ended) {
                    if (!killed.get()) {
                        failure.compareAndSet(null, ended);
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            }));
        }
        Thread.sleep(ioMillis);
        killed.set(true);
        server.kill9();
        for (Thread writer : writers) {
            writer.join(Duration.ofSeconds(30));
            assertTrue(!writer.isAlive(), "writer stopped after the kill");
        }
        snapshotter.join(Duration.ofSeconds(Served.COMMAND_TIMEOUT_SECONDS + 10));
        if (failure.get() != null) {
            throw new AssertionError("round " + round + " failed before the kill\n" + server.describe(), failure.get());
        }
        Served.Result result = snapshot.get();
        boolean reported = result != null && result.exitCode() == 0;
        boolean byServer = server.log().contains("admin: cairn snapshot ") && server.log().contains("--label r" + round + " -> exit 0");
        String outcome;
        if (reported && byServer) {
            stats.snapshotsByServer++;
            outcome = "taken by the server before the kill";
        } else if (reported) {
            stats.snapshotsOffline++;
            outcome = "taken offline after the kill";
        } else {
            outcome = result == null ? "none this round" : "failed: " + result.err().strip();
        }
        synchronized (stats) {
            System.out.printf("KillIT: round %d: %d ms of I/O, %d writes, snapshot %s%n", round, ioMillis,
                    stats.writes - writesBefore[0], outcome);
        }
        return withSnapshot ? reported : null;
    }

    /** One writer: seeded writes, zeroes, FUA writes and flushes on its own stripes until the server dies. */
    private void write(int port, int writer, SplittableRandom random) throws IOException {
        int stripes = SECTORS / STRIPE_SECTORS / WRITERS;
        List<Integer> dirty = new ArrayList<>();
        try (PlainNbdClient client = PlainNbdClient.connect(port, "disk0")) {
            while (true) {
                int op = random.nextInt(100);
                if (op < 8) {
                    client.flush();
                    for (int sector : dirty) {
                        if (pendingCount[sector] > 0) {
                            durable[sector] = pending[sector][pendingCount[sector] - 1];
                            pendingCount[sector] = 0;
                        }
                    }
                    synchronized (stats) {
                        stats.flushes++;
                        stats.coveredWrites += dirty.isEmpty() ? 0 : countWrites(dirty);
                    }
                    dirty.clear();
                    continue;
                }
                int stripe = random.nextInt(stripes) * WRITERS + writer;
                int start = stripe * STRIPE_SECTORS + random.nextInt(STRIPE_SECTORS);
                int count = 1 + random.nextInt(Math.min(MAX_WRITE_SECTORS, (stripe + 1) * STRIPE_SECTORS - start));
                boolean zeroes = op < 12;
                boolean fua = !zeroes && op < 17;
                int id = zeroes ? 0 : nextId.getAndIncrement();
                if (id >= MAX_IDS) {
                    throw new IllegalStateException("write log full");
                }
                writeStart[id] = start;
                writeCount[id] = count;
                for (int sector = start; sector < start + count; sector++) {
                    addPending(sector, id); // before sending: a write in flight may or may not land
                }
                if (zeroes) {
                    client.writeZeroes((long) start * SECTOR, count * SECTOR);
                } else {
                    client.write((long) start * SECTOR, content(id, start, count), fua);
                }
                synchronized (stats) {
                    stats.writes++;
                    stats.coveredWrites += fua ? 1 : 0;
                }
                for (int sector = start; sector < start + count; sector++) {
                    if (fua) {
                        durable[sector] = id;
                        pendingCount[sector] = 0;
                    } else {
                        dirty.add(sector);
                    }
                }
            }
        }
    }

    /** Distinct writes among the newest pending values of these sectors (for the summary only). */
    private long countWrites(List<Integer> sectors) {
        return sectors.stream().filter(s -> pendingCount[s] == 0).map(s -> durable[s]).distinct().count();
    }

    private void addPending(int sector, int value) {
        int[] values = pending[sector];
        if (values == null) {
            values = pending[sector] = new int[4];
        } else if (pendingCount[sector] == values.length) {
            values = pending[sector] = Arrays.copyOf(values, values.length * 2);
        }
        values[pendingCount[sector]++] = value;
    }

    /**
     * Reads disk0 after a restart and checks every sector against the model; then what was read is
     * the new durable state. Returns the disk's digest.
     */
    private String verifyDisk(int port, int round) throws Exception {
        byte[] disk = read(port, "disk0");
        for (int sector = 0; sector < SECTORS; sector++) {
            int actual = decode(disk, sector, "disk0 after round " + (round - 1));
            readBack.set(actual);
            int count = pendingCount[sector];
            if (count == 0) {
                if (actual != durable[sector]) {
                    throw new AssertionError("round " + (round - 1) + ": sector " + sector + " holds write " + actual
                            + " but a completed flush covered write " + describe(durable[sector]) + " there");
                }
                if (round > 0) {
                    stats.exactSectors++;
                }
                continue;
            }
            boolean allowed = actual == durable[sector];
            for (int i = 0; i < count && !allowed; i++) {
                allowed = pending[sector][i] == actual;
            }
            if (!allowed) {
                throw new AssertionError("round " + (round - 1) + ": sector " + sector + " holds write " + describe(actual)
                        + "; allowed: the flushed " + describe(durable[sector]) + " or one written after it "
                        + Arrays.toString(Arrays.copyOf(pending[sector], count)));
            }
            stats.openSectors++;
            if (actual == pending[sector][count - 1]) {
                stats.openSectorsNewest++;
            }
            durable[sector] = actual;
            pendingCount[sector] = 0;
        }
        return digest(disk);
    }

    /**
     * Checks a snapshot the CLI took during a round: it must exist if the CLI said so, and each sector
     * must hold data written to that very sector. Returns its digest, or null if it does not exist.
     */
    private String verifySnapshot(int port, String label, boolean reported) throws Exception {
        byte[] image;
        try {
            image = read(port, "disk0@" + label);
        } catch (IOException missing) {
            if (reported) {
                throw new AssertionError("snapshot " + label + " was reported taken but is gone after the kill", missing);
            }
            return null;
        }
        stats.snapshotsFound++;
        for (int sector = 0; sector < SECTORS; sector++) {
            decode(image, sector, "snapshot " + label);
            stats.snapshotSectors++;
        }
        return digest(image);
    }

    /**
     * The write id a sector holds (0 for zeros), after checking that it is exactly what that write put
     * in this sector.
     */
    private int decode(byte[] image, int sector, String where) {
        int offset = sector * SECTOR;
        ByteBuffer header = ByteBuffer.wrap(image, offset, SECTOR);
        int id = header.getInt();
        if (id == 0) {
            for (int i = offset; i < offset + SECTOR; i++) {
                if (image[i] != 0) {
                    throw new AssertionError(where + ": sector " + sector + " is neither zeros nor a written sector");
                }
            }
            return 0;
        }
        if (id < 0 || id >= nextId.get() || sector < writeStart[id] || sector >= writeStart[id] + writeCount[id]) {
            throw new AssertionError(where + ": sector " + sector + " holds data claiming write " + id
                    + ", which never wrote there");
        }
        byte[] expected = sector(id, sector);
        if (!Arrays.equals(image, offset, offset + SECTOR, expected, 0, SECTOR)) {
            throw new AssertionError(where + ": sector " + sector + " of write " + id + " is torn or damaged");
        }
        return id;
    }

    private String describe(int id) {
        return id == 0 ? "zeros" : "#" + id + " (sectors " + writeStart[id] + "+" + writeCount[id] + ")";
    }

    private static byte[] content(int id, int start, int count) {
        byte[] data = new byte[count * SECTOR];
        for (int i = 0; i < count; i++) {
            System.arraycopy(sector(id, start + i), 0, data, i * SECTOR, SECTOR);
        }
        return data;
    }

    /** Write {@code id}'s data for {@code sector}: id, sector, then bytes seeded by both. */
    private static byte[] sector(int id, int sector) {
        byte[] data = new byte[SECTOR];
        new SplittableRandom(((long) id << 32) ^ sector ^ 0x9E3779B97F4A7C15L).nextBytes(data);
        ByteBuffer.wrap(data).putInt(id).putInt(sector);
        return data;
    }

    private static byte[] read(int port, String export) throws IOException {
        byte[] data = new byte[(int) DISK_BYTES];
        try (PlainNbdClient client = PlainNbdClient.connect(port, export)) {
            for (int offset = 0; offset < data.length; offset += 1 << 20) {
                System.arraycopy(client.read(offset, 1 << 20), 0, data, offset, 1 << 20);
            }
        }
        return data;
    }

    private static byte[] readVolume(Store store, String name) {
        try (Volume volume = store.openVolume(name)) {
            ByteBuffer buffer = ByteBuffer.allocate((int) volume.sizeBytes());
            volume.read(0, buffer);
            return buffer.array();
        }
    }

    private static String digest(byte[] data) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
    }
}
