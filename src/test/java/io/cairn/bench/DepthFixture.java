package io.cairn.bench;

import io.cairn.format.Layout;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Random;

/**
 * Builds the store for {@code bench/depth.sh} (issue: reads independent of snapshot and clone depth):
 * disks filled with data and then given a history of 0, 64 and 1,000 snapshots (a 4 KiB write between
 * snapshots), and a clone at the end of a 64-deep chain (each link a clone of a snapshot of the one
 * before, with a few blocks written in each). Usage: {@code DepthFixture STORE DISK_MIB}.
 */
public final class DepthFixture {

    private DepthFixture() {
    }

    public static void main(String[] args) {
        Path path = Path.of(args[0]);
        long diskBytes = Long.parseLong(args[1]) << 20;
        Random random = new Random(42);
        long started = System.nanoTime();
        long storeBytes = 6 * diskBytes + (2L << 30);
        try (Store store = Store.formatFile(path, storeBytes, Layout.defaultExtentBlocks(storeBytes),
                StoreOptions.defaults())) {
            for (int depth : new int[] {0, 64, 1000}) {
                String name = "depth" + depth;
                store.create(name, diskBytes);
                fill(store, name, diskBytes, random);
                for (int i = 0; i < depth; i++) {
                    store.snapshot(name, null);
                    writeBlock(store, name, diskBytes, random);
                }
                store.commit();
            }
            String link = "chain0";
            store.create(link, diskBytes);
            fill(store, link, diskBytes, random);
            for (int i = 1; i <= 64; i++) {
                store.snapshot(link, "link");
                String next = "chain" + i;
                store.clone(next, link + "@link");
                for (int b = 0; b < 16; b++) {
                    writeBlock(store, next, diskBytes, random);
                }
                link = next;
            }
            store.commit();
        }
        System.out.printf("depth fixture: %s with disks of %d MiB built in %d s%n", path, diskBytes >> 20,
                (System.nanoTime() - started) / 1_000_000_000L);
    }

    private static void fill(Store store, String name, long diskBytes, Random random) {
        byte[] chunk = new byte[1 << 20];
        try (Volume volume = store.openVolume(name)) {
            for (long offset = 0; offset < diskBytes; offset += chunk.length) {
                random.nextBytes(chunk);
                volume.write(offset, ByteBuffer.wrap(chunk), false);
            }
        }
    }

    private static void writeBlock(Store store, String name, long diskBytes, Random random) {
        byte[] block = new byte[Layout.BLOCK_BYTES];
        random.nextBytes(block);
        try (Volume volume = store.openVolume(name)) {
            volume.write(random.nextLong(diskBytes / Layout.BLOCK_BYTES) * Layout.BLOCK_BYTES, ByteBuffer.wrap(block), false);
        }
    }
}
