package io.cairn.volume;

import io.cairn.format.CounterEncoding;
import io.cairn.gc.CheckReport;
import io.cairn.gc.Checker;
import io.cairn.io.FaultInjectingBlockDevice;
import io.cairn.io.MemoryBlockDevice;
import io.cairn.io.SimulatedCrashException;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Cuts the power at every device write of randomized workloads (STYLE 8), reopens the store from
 * what survived and proves the consistency contract of DESIGN §4:
 * <ul>
 *   <li>the store opens without repair, at the last commit whose superblock reached the disk;</li>
 *   <li>every snapshot of that commit reads back exactly as it was taken;</li>
 *   <li>every sector of every disk of that commit holds its committed content, or the content of a
 *       write issued after that commit (writes in flight may land, in whole sectors);</li>
 *   <li>the checker finds no damage (leaks would be allowed; this design leaves none).</li>
 * </ul>
 * Even seeds run on a store of 1-byte counters (what new stores are), odd seeds on one of 2-byte counters
 * (stores made before incompatible feature bit 0). Replay one workload with {@code -Dcairn.crash.seed=N};
 * the failure message names seed, encoding and crash point.
 */
class CrashTest {

    private static final int SECTOR = 512;
    private static final long VDI_BYTES = 256 * 1024;
    private static final long STORE_BYTES = 16L << 20;
    private static final int EXTENT_BLOCKS = 64;

    /** Crash points per CI run across all seeds (each point: replay, cut power, reopen, verify, check). */
    private static final int CRASH_POINTS_PER_SEED = 600;
    private static final int SEEDS = 64;

    @Test
    void everyCrashPointOpensConsistent() {
        String replay = System.getProperty("cairn.crash.seed");
        long[] seeds = replay != null ? new long[]{Long.parseLong(replay)} : seeds();
        int totalPoints = 0;
        for (long seed : seeds) {
            totalPoints += runSeed(seed, replay != null ? Integer.MAX_VALUE : CRASH_POINTS_PER_SEED);
        }
        System.out.println("CrashTest: " + totalPoints + " crash points over " + seeds.length + " workloads");
        if (replay == null) {
            assertTrue(totalPoints >= 10_000, "at least 10,000 crash points, got " + totalPoints);
        }
    }

    private static long[] seeds() {
        long[] seeds = new long[SEEDS];
        for (int i = 0; i < SEEDS; i++) {
            seeds[i] = 1000 + i;
        }
        return seeds;
    }

    private static CounterEncoding encodingOf(long seed) {
        return seed % 2 == 0 ? CounterEncoding.NARROW : CounterEncoding.WIDE;
    }

    private int runSeed(long seed, int maxPoints) {
        MemoryBlockDevice formatted = new MemoryBlockDevice();
        Store.format(formatted, STORE_BYTES, EXTENT_BLOCKS, StoreOptions.defaults(), java.util.UUID.randomUUID(), encodingOf(seed))
                .commit(); // left open: close would close the device

        List<Op> ops = Workload.generate(seed);
        FaultInjectingBlockDevice counting = new FaultInjectingBlockDevice(formatted.copy());
        Model model = new Model();
        Store store = Store.open(counting, null, StoreOptions.defaults());
        for (int i = 0; i < ops.size(); i++) {
            ops.get(i).apply(store, model, i);
        }
        // Not closed: closing could commit once more, a state the model would not know.
        long totalWrites = counting.writeCount();

        List<Long> points = new ArrayList<>();
        if (totalWrites <= maxPoints) {
            for (long k = 1; k <= totalWrites; k++) {
                points.add(k);
            }
        } else {
            Random sampler = new Random(seed);
            for (int i = 0; i < maxPoints; i++) {
                points.add(1 + (long) (sampler.nextDouble() * totalWrites));
            }
        }
        for (long point : points) {
            crashAt(seed, ops, formatted, model, point);
        }
        return points.size();
    }

    private void crashAt(long seed, List<Op> ops, MemoryBlockDevice formatted, Model reference, long point) {
        FaultInjectingBlockDevice device = new FaultInjectingBlockDevice(formatted.copy());
        device.crashAtWrite(point);
        Model model = new Model();
        int crashedInOp = ops.size();
        Store store = Store.open(device, null, StoreOptions.defaults());
        try {
            for (int i = 0; i < ops.size(); i++) {
                crashedInOp = i;
                ops.get(i).apply(store, model, i);
            }
            crashedInOp = ops.size();
        } catch (SimulatedCrashException expected) {
            // The power went out during op crashedInOp.
        }
        MemoryBlockDevice survivor = device.crash(new Random(seed * 31 + point));
        String where = "seed " + seed + " (" + encodingOf(seed) + " counters), crash at write " + point + " during op "
                + crashedInOp;
        Store reopened;
        try {
            reopened = Store.open(survivor, null, StoreOptions.defaults());
        } catch (RuntimeException problem) {
            throw new AssertionError(where + ": store does not open: " + problem, problem);
        }
        try {
            assertEquals(encodingOf(seed), reopened.geometry().counterEncoding(), where);
            long generation = reopened.durableGeneration();
            Model.Durable state = reference.durableAt(generation, crashedInOp);
            if (state == null) {
                fail(where + ": opened at generation " + generation + ", which no commit of the workload produced; recorded "
                                + reference.durable.keySet());
            }
            verify(reopened, state, reference, crashedInOp, where);
            CheckReport report = Checker.check(reopened);
            assertFalse(report.damaged(), () -> where + ": checker found damage: " + report.summary());
        } finally {
            reopened.close();
        }
    }

    private static void verify(Store store, Model.Durable state, Model reference, int crashedInOp, String where) {
        List<String> liveNames = store.listVdis(false).stream().map(VdiInfo::name).sorted().toList();
        assertEquals(state.vdis.keySet().stream().sorted().toList(), liveNames, where + ": disks");
        for (Map.Entry<String, byte[]> vdi : state.vdis.entrySet()) {
            byte[] actual = readAll(store, vdi.getKey());
            byte[] committed = vdi.getValue();
            for (int sector = 0; sector < committed.length / SECTOR; sector++) {
                if (!sectorMatches(actual, committed, sector)
                        && !reference.writtenAfter(vdi.getKey(), sector, state.opIndex, crashedInOp, actual)) {
                    fail(where + ": disk " + vdi.getKey() + " sector " + sector
                            + " holds neither its committed content nor any later write");
                }
            }
        }
        for (Map.Entry<String, byte[]> snapshot : state.snapshots.entrySet()) {
            byte[] actual = readAll(store, snapshot.getKey());
            if (!Arrays.equals(snapshot.getValue(), actual)) {
                fail(where + ": snapshot " + snapshot.getKey() + " changed");
            }
        }
    }

    private static boolean sectorMatches(byte[] actual, byte[] expected, int sector) {
        return Arrays.equals(actual, sector * SECTOR, (sector + 1) * SECTOR, expected, sector * SECTOR, (sector + 1) * SECTOR);
    }

    static byte[] readAll(Store store, String export) {
        try (Volume volume = store.openVolume(export)) {
            ByteBuffer buffer = ByteBuffer.allocate((int) volume.sizeBytes());
            volume.read(0, buffer);
            return buffer.array();
        }
    }

    // ---------------------------------------------------------------- model

    /** What the disks and snapshots hold, and every sector write, with the durable states commits made. */
    static final class Model {
        final Map<String, byte[]> vdis = new LinkedHashMap<>();
        final Map<String, byte[]> snapshots = new LinkedHashMap<>();
        final Map<String, List<String>> snapshotsOf = new HashMap<>();
        /** Per disk, per sector: (op index, content) of each write. */
        final Map<String, Map<Integer, List<SectorWrite>>> writes = new HashMap<>();
        /** Per generation, the states it held: a commit with no metadata change keeps the generation. */
        final TreeMap<Long, List<Durable>> durable = new TreeMap<>();

        record SectorWrite(int opIndex, byte[] content) {
        }

        record Durable(int opIndex, Map<String, byte[]> vdis, Map<String, byte[]> snapshots) {
        }

        Model() {
            durable.put(1L, new ArrayList<>(List.of(new Durable(-1, Map.of(), Map.of()))));
        }

        void recordWrite(String vdi, long offset, byte[] data, int opIndex) {
            System.arraycopy(data, 0, vdis.get(vdi), (int) offset, data.length);
            Map<Integer, List<SectorWrite>> sectors = writes.computeIfAbsent(vdi, k -> new HashMap<>());
            for (int i = 0; i < data.length / SECTOR; i++) {
                sectors.computeIfAbsent((int) (offset / SECTOR) + i, k -> new ArrayList<>())
                        .add(new SectorWrite(opIndex, Arrays.copyOfRange(data, i * SECTOR, (i + 1) * SECTOR)));
            }
        }

        void committed(long generation, int opIndex) {
            Map<String, byte[]> vdiCopy = new LinkedHashMap<>();
            vdis.forEach((name, content) -> vdiCopy.put(name, content.clone()));
            durable.computeIfAbsent(generation, g -> new ArrayList<>())
                    .add(new Durable(opIndex, vdiCopy, new LinkedHashMap<>(snapshots)));
        }

        /**
         * The state a store opened at {@code generation} must hold when the power failed during op
         * {@code crashedInOp}: the latest one recorded by a commit that finished before that op, or,
         * if the generation was first made by the interrupted op itself, the state that op committed.
         */
        Durable durableAt(long generation, int crashedInOp) {
            List<Durable> states = durable.get(generation);
            if (states == null) {
                return null;
            }
            Durable chosen = states.get(0);
            for (Durable state : states) {
                if (state.opIndex < crashedInOp) {
                    chosen = state;
                }
            }
            return chosen;
        }

        boolean writtenAfter(String vdi, int sector, int afterOp, int upToOp, byte[] actual) {
            List<SectorWrite> history = writes.getOrDefault(vdi, Map.of()).getOrDefault(sector, List.of());
            for (SectorWrite write : history) {
                if (write.opIndex > afterOp && write.opIndex <= upToOp
                        && Arrays.equals(actual, sector * SECTOR, (sector + 1) * SECTOR, write.content, 0, SECTOR)) {
                    return true;
                }
            }
            return false;
        }
    }

    // ---------------------------------------------------------------- workload

    /** One step of a workload; applies itself to the store and the model alike. */
    interface Op {
        void apply(Store store, Model model, int opIndex);
    }

    static final class Workload {

        static List<Op> generate(long seed) {
            Random random = new Random(seed);
            List<Op> ops = new ArrayList<>();
            List<String> vdis = new ArrayList<>(List.of("v0", "v1"));
            List<String> snapshotNames = new ArrayList<>();
            int[] clones = {0};
            ops.add((store, model, i) -> {
                for (String name : List.of("v0", "v1")) {
                    store.create(name, VDI_BYTES);
                    model.vdis.put(name, new byte[(int) VDI_BYTES]);
                }
            });
            ops.add(flush());
            int count = 40 + random.nextInt(40);
            for (int n = 0; n < count; n++) {
                int choice = random.nextInt(100);
                String vdi = vdis.get(random.nextInt(vdis.size()));
                if (choice < 45) {
                    long sectors = 1 + random.nextInt(random.nextBoolean() ? 8 : 40);
                    long offset = random.nextLong(VDI_BYTES / SECTOR - sectors + 1) * SECTOR;
                    byte[] data = new byte[(int) (sectors * SECTOR)];
                    random.nextBytes(data);
                    boolean fua = random.nextInt(10) == 0;
                    ops.add((store, model, i) -> {
                        try (Volume volume = store.openVolume(vdi)) {
                            volume.write(offset, ByteBuffer.wrap(data), fua);
                        }
                        model.recordWrite(vdi, offset, data, i);
                        if (fua) {
                            model.committed(store.durableGeneration(), i);
                        }
                    });
                } else if (choice < 55) {
                    long sectors = 1 + random.nextInt(64);
                    long offset = random.nextLong(VDI_BYTES / SECTOR - sectors + 1) * SECTOR;
                    boolean punch = random.nextBoolean();
                    ops.add((store, model, i) -> {
                        try (Volume volume = store.openVolume(vdi)) {
                            volume.writeZeroes(offset, sectors * SECTOR, punch, false);
                        }
                        model.recordWrite(vdi, offset, new byte[(int) (sectors * SECTOR)], i);
                    });
                } else if (choice < 72) {
                    ops.add(flush());
                } else if (choice < 84) {
                    String name = vdi;
                    ops.add((store, model, i) -> {
                        SnapshotInfo info = store.snapshot(name, null);
                        model.snapshots.put(info.reference(), model.vdis.get(name).clone());
                        model.snapshotsOf.computeIfAbsent(name, k -> new ArrayList<>()).add(info.reference());
                    });
                    snapshotNames.add(name);
                } else if (choice < 90 && !snapshotNames.isEmpty()) {
                    String clone = "c" + clones[0]++;
                    String source = snapshotNames.get(random.nextInt(snapshotNames.size()));
                    vdis.add(clone);
                    int pick = random.nextInt(1000);
                    ops.add((store, model, i) -> {
                        List<String> candidates = model.snapshotsOf.getOrDefault(source, List.of());
                        if (candidates.isEmpty() || !model.vdis.containsKey(source)) {
                            store.create(clone, VDI_BYTES);
                            model.vdis.put(clone, new byte[(int) VDI_BYTES]);
                            return;
                        }
                        String reference = candidates.get(pick % candidates.size());
                        store.clone(clone, reference);
                        model.vdis.put(clone, model.snapshots.get(reference).clone());
                    });
                } else if (choice < 96) {
                    int pick = random.nextInt(1000);
                    ops.add((store, model, i) -> {
                        List<String> all = new ArrayList<>(model.snapshots.keySet());
                        if (all.isEmpty()) {
                            return;
                        }
                        String reference = all.get(pick % all.size());
                        store.deleteSnapshot(reference);
                        model.snapshots.remove(reference);
                        model.snapshotsOf.values().forEach(list -> list.remove(reference));
                    });
                } else if (vdis.size() > 2) {
                    String victim = vdis.remove(vdis.size() - 1);
                    ops.add((store, model, i) -> {
                        store.deleteVdi(victim, true);
                        model.vdis.remove(victim);
                        List<String> gone = model.snapshotsOf.remove(victim);
                        if (gone != null) {
                            gone.forEach(model.snapshots::remove);
                        }
                    });
                }
            }
            // Two flushes: the second writes the counters the first one's reclamation changed.
            ops.add(flush());
            ops.add(flush());
            return ops;
        }

        private static Op flush() {
            return (store, model, i) -> {
                store.commit();
                model.committed(store.durableGeneration(), i);
            };
        }
    }
}
