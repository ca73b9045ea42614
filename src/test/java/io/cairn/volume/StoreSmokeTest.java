package io.cairn.volume;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

class StoreSmokeTest {

    @Test
    void writeSnapshotCloneReopen() {
        SimpleMemoryDevice device = new SimpleMemoryDevice();
        Store store = Store.format(device, 64L << 20, 256, StoreOptions.defaults());
        store.create("disk0", 8L << 20);
        byte[] first = new byte[10000];
        new Random(1).nextBytes(first);
        try (Volume volume = store.openVolume("disk0")) {
            volume.write(1234, ByteBuffer.wrap(first), false);
        }
        store.snapshot("disk0", "base");
        byte[] second = new byte[5000];
        new Random(2).nextBytes(second);
        try (Volume volume = store.openVolume("disk0")) {
            volume.write(3000, ByteBuffer.wrap(second), false);
        }
        store.clone("clone0", "disk0@base");
        store.close();

        Store reopened = Store.open(device, null, StoreOptions.defaults());
        byte[] expectedSnapshot = new byte[20000];
        System.arraycopy(first, 0, expectedSnapshot, 1234, first.length);
        byte[] expectedLive = expectedSnapshot.clone();
        System.arraycopy(second, 0, expectedLive, 3000, second.length);
        assertArrayEquals(expectedSnapshot, read(reopened, "disk0@base", 20000));
        assertArrayEquals(expectedSnapshot, read(reopened, "clone0", 20000));
        assertArrayEquals(expectedLive, read(reopened, "disk0", 20000));
        assertEquals(2, reopened.listVdis(false).size());
        reopened.close();
    }

    private static byte[] read(Store store, String export, int length) {
        try (Volume volume = store.openVolume(export)) {
            ByteBuffer buffer = ByteBuffer.allocate(length);
            volume.read(0, buffer);
            return Arrays.copyOf(buffer.array(), length);
        }
    }
}
