package io.cairn.space;

import io.cairn.format.CounterEncoding;
import io.cairn.io.MemoryBlockDevice;
import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * A store built by a random history of writes, discards, snapshots, clones and deletions, with a
 * byte[] model of every live disk and snapshot. Replayable from its seed. Disks come in two sizes: one
 * whose tree is a single leaf node, one that needs two levels (and a partial last block).
 */
final class RandomHistory {

    static final int BLOCK = 4096;
    private static final long[] DISK_BYTES = {64L * BLOCK, 700L * BLOCK + 1536};

    final long seed;
    final Random random;
    final Store store;
    /** Live disks and snapshots by reference ({@code NAME} or {@code NAME@ID}) → content. */
    final Map<String, byte[]> models = new LinkedHashMap<>();
    private int nextDisk;

    RandomHistory(long seed, int steps) {
        this.seed = seed;
        this.random = new Random(seed);
        // A low refcount limit now and then exercises copying on saturation.
        StoreOptions options = random.nextInt(4) == 0 ? StoreOptions.defaults().withMaxRefcount(3) : StoreOptions.defaults();
        // Either counter encoding: 1-byte counters (new stores) or 2-byte ones (stores made before).
        CounterEncoding encoding = random.nextBoolean() ? CounterEncoding.NARROW : CounterEncoding.WIDE;
        this.store = Store.format(new MemoryBlockDevice(), 96L << 20, 256, options, java.util.UUID.randomUUID(), encoding);
        createDisk();
        for (int step = 0; step < steps; step++) {
            step();
        }
    }

    List<String> disks() {
        return models.keySet().stream().filter(name -> !name.contains("@")).toList();
    }

    List<String> snapshots() {
        return models.keySet().stream().filter(name -> name.contains("@")).toList();
    }

    private void step() {
        int choice = random.nextInt(100);
        List<String> disks = disks();
        List<String> snapshots = snapshots();
        if (choice < 45 || disks.isEmpty()) {
            if (disks.isEmpty() || random.nextInt(20) == 0) {
                createDisk();
            } else {
                write(pick(disks));
            }
        } else if (choice < 55) {
            discard(pick(disks));
        } else if (choice < 72) {
            snapshot(pick(disks));
        } else if (choice < 82 && !snapshots.isEmpty()) {
            cloneOf(pick(snapshots));
        } else if (choice < 90 && !snapshots.isEmpty()) {
            String snapshot = pick(snapshots);
            store.deleteSnapshot(snapshot);
            models.remove(snapshot);
        } else if (choice < 93 && disks.size() > 1) {
            String disk = pick(disks);
            store.deleteVdi(disk, true);
            models.keySet().removeIf(name -> name.equals(disk) || name.startsWith(disk + "@"));
        } else {
            store.commit();
        }
    }

    <T> T pick(List<T> items) {
        return items.get(random.nextInt(items.size()));
    }

    void createDisk() {
        String name = "d" + nextDisk++;
        long size = DISK_BYTES[random.nextInt(DISK_BYTES.length)];
        store.create(name, size);
        models.put(name, new byte[(int) size]);
    }

    void write(String disk) {
        byte[] model = models.get(disk);
        int blocks = model.length / BLOCK;
        int length = random.nextInt(4) == 0 ? 1 + random.nextInt(3000) : BLOCK * (1 + random.nextInt(6));
        int offset = random.nextInt(4) == 0 ? random.nextInt(model.length) : BLOCK * random.nextInt(blocks);
        length = Math.min(length, model.length - offset);
        byte[] data = new byte[length];
        if (random.nextInt(8) != 0) {
            random.nextBytes(data); // else: written zeros, which stay mapped
        }
        write(disk, offset, data);
    }

    void write(String disk, long offset, byte[] data) {
        try (Volume volume = store.openVolume(disk)) {
            volume.write(offset, ByteBuffer.wrap(data), false);
        }
        System.arraycopy(data, 0, models.get(disk), (int) offset, data.length);
    }

    void discard(String disk) {
        byte[] model = models.get(disk);
        int offset = random.nextInt(model.length);
        int length = Math.min(model.length - offset, random.nextInt(8 * BLOCK));
        try (Volume volume = store.openVolume(disk)) {
            volume.trim(offset, length, false);
        }
        Arrays.fill(model, offset, offset + length, (byte) 0);
    }

    String snapshot(String disk) {
        SnapshotInfo taken = store.snapshot(disk, null);
        models.put(taken.reference(), models.get(disk).clone());
        return taken.reference();
    }

    void cloneOf(String snapshot) {
        String name = "d" + nextDisk++;
        store.clone(name, snapshot);
        models.put(name, models.get(snapshot).clone());
    }

    /** Every reference in the store, read back. */
    byte[] read(String reference) {
        try (Volume volume = store.openVolume(reference)) {
            ByteBuffer buffer = ByteBuffer.allocate((int) volume.sizeBytes());
            volume.read(0, buffer);
            return buffer.array();
        }
    }

    long usedBytes() {
        Store.StoreSpace space = store.spaceReport();
        return space.dataBytes() + space.metadataBytes();
    }

    /** The live disks that have no live snapshots (the engine deletes those alone). */
    List<String> disksWithoutSnapshots() {
        List<String> result = new ArrayList<>();
        for (String disk : disks()) {
            if (store.snapshots(disk).isEmpty()) {
                result.add(disk);
            }
        }
        return result;
    }

    @Override
    public String toString() {
        return "history seed " + seed;
    }
}
