package io.cairn.space;

import io.cairn.format.Layout;
import io.cairn.io.MemoryBlockDevice;
import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.Random;

/**
 * A disk with a long snapshot history, for the sketch accuracy test and the report benchmark: a 2 MiB disk
 * (512 blocks, one tree level) written in full, then {@code snapshots} times a few random block writes and a
 * snapshot. Every write replaces a block the previous snapshot holds, so the snapshots together hold about
 * 512 + snapshots × writes distinct data blocks: well beyond a sketch's 2^14 nominal entries.
 */
public final class SnapshotHistory {

    public static final String DISK = "disk";
    private static final int BLOCK = Layout.BLOCK_BYTES;
    private static final long DISK_BYTES = 2L << 20;

    public final Store store;
    public final List<Long> snapshotIds;

    private SnapshotHistory(Store store) {
        this.store = store;
        this.snapshotIds = store.snapshots(DISK).stream().map(SnapshotInfo::id).toList();
    }

    /** Builds the history in memory; {@code seed} makes it reproducible. */
    public static SnapshotHistory build(int snapshots, int writesPerSnapshot, long seed) {
        long dataBlocks = DISK_BYTES / BLOCK * (1 + (long) snapshots * writesPerSnapshot / 512);
        long storeBytes = Math.max(256L << 20, (dataBlocks + 4L * snapshots) * BLOCK * 2);
        Store store = Store.format(new MemoryBlockDevice(), storeBytes, 4096, StoreOptions.defaults());
        store.create(DISK, DISK_BYTES);
        Random random = new Random(seed);
        ByteBuffer data = ByteBuffer.allocate(BLOCK);
        long diskBlocks = DISK_BYTES / BLOCK;
        try (Volume volume = store.openVolume(DISK)) {
            for (long block = 0; block < diskBlocks; block++) {
                volume.write(block * BLOCK, data.clear().putLong(0, random.nextLong()).clear(), false);
            }
            for (int i = 0; i < snapshots; i++) {
                store.snapshot(DISK, null);
                for (int w = 0; w < writesPerSnapshot; w++) {
                    volume.write(random.nextLong(diskBlocks) * BLOCK, data.clear().putLong(0, random.nextLong()).clear(),
                            false);
                }
                if (i % 1000 == 999) {
                    store.commit();
                }
            }
        }
        store.commit();
        return new SnapshotHistory(store);
    }

    /** {@code NAME@A..B} for positions [from, to] of the log (0 = oldest). */
    public String range(int from, int to) {
        return DISK + "@" + snapshotIds.get(from) + ".." + snapshotIds.get(to);
    }
}
