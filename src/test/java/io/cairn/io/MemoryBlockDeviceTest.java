package io.cairn.io;

import static io.cairn.io.DeviceTestSupport.filled;
import static io.cairn.io.DeviceTestSupport.randomBytes;
import static io.cairn.io.DeviceTestSupport.read;
import static io.cairn.io.DeviceTestSupport.write;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

class MemoryBlockDeviceTest {

    private static final int PAGE = MemoryBlockDevice.PAGE_BYTES;

    @Test
    void unwrittenBytesReadAsZerosAndCostNoMemory() {
        MemoryBlockDevice device = new MemoryBlockDevice(1L << 40);
        assertEquals(1L << 40, device.sizeBytes());
        assertArrayEquals(new byte[3 * PAGE], read(device, (1L << 39) - 5, 3 * PAGE));
        assertEquals(0, device.allocatedBytes());
    }

    @Test
    void unalignedWriteAcrossPagesReadsBackAndLeavesNeighboursAlone() {
        MemoryBlockDevice device = new MemoryBlockDevice();
        byte[] data = randomBytes(new Random(1), 2 * PAGE + 100);
        write(device, PAGE - 37, data);

        assertArrayEquals(data, read(device, PAGE - 37, data.length));
        assertArrayEquals(new byte[PAGE - 37], read(device, 0, PAGE - 37));
        assertEquals(0, read(device, PAGE - 37 + data.length, 1)[0]);
        assertEquals(4L * PAGE, device.allocatedBytes(), "pages 0..3 are touched");
    }

    @Test
    void sizeGrowsToTheEndOfTheFurthestWriteAndNeverShrinks() {
        MemoryBlockDevice device = new MemoryBlockDevice(10_000);
        write(device, 20_000, new byte[] {1, 2, 3});
        assertEquals(20_003, device.sizeBytes());
        write(device, 5, new byte[] {9});
        assertEquals(20_003, device.sizeBytes());
    }

    @Test
    void discardZeroesTheRangeAndFreesWholePages() {
        MemoryBlockDevice device = new MemoryBlockDevice();
        write(device, 0, filled(4 * PAGE, 0x5a));
        device.discard(100, 2 * PAGE);

        byte[] expected = filled(4 * PAGE, 0x5a);
        java.util.Arrays.fill(expected, 100, 100 + 2 * PAGE, (byte) 0);
        assertArrayEquals(expected, read(device, 0, 4 * PAGE));
        assertEquals(3L * PAGE, device.allocatedBytes(), "page 1 was covered whole and is freed");
    }

    @Test
    void copyIsIndependentAndSameContentComparesBytesNotPages() {
        MemoryBlockDevice device = new MemoryBlockDevice(8 * PAGE);
        write(device, 3, new byte[] {7, 7, 7});
        MemoryBlockDevice copy = device.copy();
        assertTrue(copy.sameContent(device));

        write(device, 3, new byte[] {8});
        assertEquals(7, read(copy, 3, 1)[0]);
        assertFalse(copy.sameContent(device));

        // An allocated page of zeros and an absent page read the same, so they are the same content.
        MemoryBlockDevice zerosWritten = new MemoryBlockDevice(8 * PAGE);
        write(zerosWritten, PAGE, new byte[PAGE]);
        assertTrue(zerosWritten.sameContent(new MemoryBlockDevice(8 * PAGE)));
        assertFalse(zerosWritten.sameContent(new MemoryBlockDevice(9 * PAGE)), "sizes differ");
    }

    @Test
    void concurrentWritersToDisjointRangesAllLand() throws Exception {
        MemoryBlockDevice device = new MemoryBlockDevice();
        int writers = 8;
        int writesPerWriter = 500;
        int chunkBytes = 1000; // not page aligned: neighbouring writers share pages
        List<Future<?>> results = new ArrayList<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(writers)) {
            for (int writer = 0; writer < writers; writer++) {
                int writerIndex = writer;
                results.add(pool.submit(() -> {
                    for (int i = 0; i < writesPerWriter; i++) {
                        long slot = (long) i * writers + writerIndex;
                        write(device, slot * chunkBytes, filled(chunkBytes, (int) (slot % 251) + 1));
                    }
                }));
            }
            for (Future<?> result : results) {
                result.get();
            }
        }
        for (long slot = 0; slot < (long) writers * writesPerWriter; slot++) {
            assertArrayEquals(filled(chunkBytes, (int) (slot % 251) + 1), read(device, slot * chunkBytes, chunkBytes), "slot " + slot);
        }
    }

    @Test
    void closedDeviceRefusesIo() {
        MemoryBlockDevice device = new MemoryBlockDevice();
        device.close();
        StorageException failure = assertThrows(StorageException.class, () -> device.read(0, ByteBuffer.allocate(1)));
        assertEquals(StorageException.Code.CLOSED, failure.code());
    }

    @Test
    void negativeOffsetIsACallerBug() {
        MemoryBlockDevice device = new MemoryBlockDevice();
        assertThrows(IllegalArgumentException.class, () -> device.write(-1, ByteBuffer.allocate(1)));
        assertThrows(IllegalArgumentException.class, () -> device.read(Long.MAX_VALUE, ByteBuffer.allocate(2)));
    }
}
