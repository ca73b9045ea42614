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
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FileBlockDeviceTest {

    private static final int BLOCK = 4096;

    @TempDir
    Path directory;

    @Test
    void writesReadBackAtAnyAlignment() {
        try (FileBlockDevice device = FileBlockDevice.create(directory.resolve("store"), 0)) {
            byte[] data = randomBytes(new Random(7), 3 * BLOCK + 11);
            write(device, BLOCK - 5, data);
            assertArrayEquals(data, read(device, BLOCK - 5, data.length));
            assertArrayEquals(new byte[BLOCK - 5], read(device, 0, BLOCK - 5), "bytes before the write are a hole");
            assertEquals(BLOCK - 5 + data.length, device.sizeBytes());
        }
    }

    @Test
    void readsPastTheEndAreZeros() {
        try (FileBlockDevice device = FileBlockDevice.create(directory.resolve("store"), 0)) {
            write(device, 0, filled(100, 0x11));
            byte[] straddling = read(device, 50, 200);
            byte[] expected = new byte[200];
            Arrays.fill(expected, 0, 50, (byte) 0x11);
            assertArrayEquals(expected, straddling);
            assertArrayEquals(new byte[BLOCK], read(device, 1L << 40, BLOCK));
            assertEquals(100, device.sizeBytes(), "reading does not grow the file");
        }
    }

    @Test
    void createMakesASparseFile() throws Exception {
        Path path = directory.resolve("store");
        long sizeBytes = 1L << 30;
        try (FileBlockDevice device = FileBlockDevice.create(path, sizeBytes)) {
            assertEquals(sizeBytes, device.sizeBytes());
            assertArrayEquals(new byte[BLOCK], read(device, sizeBytes / 2, BLOCK));
        }
        assertEquals(sizeBytes, Files.size(path));
        long allocatedBytes = allocatedBytes(path);
        assumeTrue(allocatedBytes >= 0, "stat is not available");
        assertTrue(allocatedBytes < 1 << 20, "a 1 GiB sparse file allocated " + allocatedBytes + " bytes");
    }

    @Test
    void flushedDataIsInTheFileForAnotherReader() throws Exception {
        Path path = directory.resolve("store");
        byte[] data = randomBytes(new Random(3), 2 * BLOCK);
        try (FileBlockDevice device = FileBlockDevice.create(path, 0)) {
            write(device, BLOCK, data);
            device.flush(); // a real fsync: must succeed on a real file system
        }
        byte[] onDisk = Files.readAllBytes(path);
        assertEquals(3 * BLOCK, onDisk.length);
        assertArrayEquals(data, Arrays.copyOfRange(onDisk, BLOCK, 3 * BLOCK));
        try (FileBlockDevice reopened = FileBlockDevice.open(path, true)) {
            assertArrayEquals(data, read(reopened, BLOCK, data.length));
        }
    }

    @Test
    void readOnlyDeviceRefusesWritesAndIgnoresFlush() throws Exception {
        Path path = directory.resolve("store");
        Files.write(path, filled(BLOCK, 1));
        try (FileBlockDevice device = FileBlockDevice.open(path, true)) {
            StorageException failure = assertThrows(StorageException.class, () -> write(device, 0, new byte[1]));
            assertEquals(StorageException.Code.READ_ONLY, failure.code());
            device.flush();
            assertArrayEquals(filled(BLOCK, 1), read(device, 0, BLOCK));
        }
    }

    @Test
    void missingFileIsAnIoErrorNamingThePath() {
        Path path = directory.resolve("no-such-store");
        StorageException failure = assertThrows(StorageException.class, () -> FileBlockDevice.open(path, false));
        assertEquals(StorageException.Code.IO, failure.code());
        assertTrue(failure.getMessage().contains(path.toString()), failure.getMessage());
        assertFalse(Files.exists(path), "open must not create the file");
    }

    @Test
    void ioErrorNamesPathAndOffset() {
        Path path = directory.resolve("store");
        long impossibleOffset = Long.MAX_VALUE - BLOCK; // beyond any file system's maximum file size
        try (FileBlockDevice device = FileBlockDevice.create(path, 0)) {
            StorageException failure = assertThrows(StorageException.class, () -> write(device, impossibleOffset, new byte[16]));
            assertEquals(StorageException.Code.IO, failure.code());
            assertTrue(failure.getMessage().contains(path.toString()), failure.getMessage());
            assertTrue(failure.getMessage().contains("offset " + impossibleOffset), failure.getMessage());
            // The device survives a failed request.
            write(device, 0, new byte[] {42});
            assertEquals(42, read(device, 0, 1)[0]);
        }
    }

    @Test
    void closedDeviceSaysClosedAndCloseIsIdempotent() {
        FileBlockDevice device = FileBlockDevice.create(directory.resolve("store"), BLOCK);
        device.close();
        device.close();
        StorageException failure = assertThrows(StorageException.class, () -> read(device, 0, 1));
        assertEquals(StorageException.Code.CLOSED, failure.code());
        assertEquals(StorageException.Code.CLOSED, assertThrows(StorageException.class, device::flush).code());
    }

    /** The trap this device exists to avoid: an interrupt closes a FileChannel for every thread. */
    @Test
    void plainFileChannelIsClosedByAnInterruptedReader() throws Exception {
        Path path = directory.resolve("store");
        Files.write(path, new byte[BLOCK]);
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            Thread reader = Thread.ofVirtual().unstarted(() -> {
                Thread.currentThread().interrupt();
                assertThrows(ClosedByInterruptException.class, () -> channel.read(ByteBuffer.allocate(1), 0));
            });
            reader.start();
            reader.join();
            assertFalse(channel.isOpen(), "the JDK closes the channel; if this changes, revisit FileBlockDevice note 1");
        }
    }

    @Test
    void anInterruptedCallerCompletesItsIoAndKeepsItsInterruptStatus() throws Exception {
        try (FileBlockDevice device = FileBlockDevice.create(directory.resolve("store"), 0)) {
            AtomicBoolean stillInterrupted = new AtomicBoolean();
            byte[] data = filled(BLOCK, 0x33);
            Thread caller = Thread.ofVirtual().unstarted(() -> {
                Thread.currentThread().interrupt();
                write(device, 0, data);
                assertArrayEquals(data, read(device, 0, BLOCK));
                device.flush();
                device.sizeBytes();
                stillInterrupted.set(Thread.currentThread().isInterrupted());
            });
            caller.start();
            caller.join();
            assertTrue(stillInterrupted.get(), "the interrupt status must survive for the caller to see");
            assertArrayEquals(data, read(device, 0, BLOCK), "the device is still open for everyone else");
        }
    }

    @Test
    void interruptsDuringConcurrentIoNeverCloseTheDeviceOrLoseData() throws Exception {
        int workers = 16;
        int roundsPerWorker = 300;
        try (FileBlockDevice device = FileBlockDevice.create(directory.resolve("store"), 0)) {
            ConcurrentLinkedQueue<Throwable> failures = new ConcurrentLinkedQueue<>();
            AtomicLong interruptsDelivered = new AtomicLong();
            List<Thread> threads = new ArrayList<>();
            for (int worker = 0; worker < workers; worker++) {
                int workerIndex = worker;
                threads.add(Thread.ofVirtual().unstarted(() -> {
                    try {
                        for (int round = 0; round < roundsPerWorker; round++) {
                            Thread.interrupted(); // a fresh request; earlier interrupts have been seen
                            long offset = ((long) round * workers + workerIndex) * BLOCK;
                            byte[] data = filled(BLOCK, (round + workerIndex) % 255 + 1);
                            write(device, offset, data);
                            if (!Arrays.equals(data, read(device, offset, BLOCK))) {
                                throw new AssertionError("worker " + workerIndex + " round " + round + " read other data");
                            }
                            if (round % 50 == 0) {
                                device.flush();
                            }
                        }
                    } catch (Throwable failure) {
                        failures.add(failure);
                    }
                }));
            }
            threads.forEach(Thread::start);
            Thread interrupter = Thread.ofPlatform().start(() -> {
                Random random = new Random(11);
                while (threads.stream().anyMatch(Thread::isAlive)) {
                    threads.get(random.nextInt(workers)).interrupt();
                    interruptsDelivered.incrementAndGet();
                    Thread.onSpinWait();
                }
            });
            for (Thread thread : threads) {
                assertTrue(thread.join(java.time.Duration.ofMinutes(2)), "a worker hung");
            }
            interrupter.join(TimeUnit.MINUTES.toMillis(1));

            assertTrue(failures.isEmpty(), () -> "failures: " + failures);
            assertTrue(interruptsDelivered.get() > 1000, "only " + interruptsDelivered.get() + " interrupts were delivered");
            for (int round = 0; round < roundsPerWorker; round++) {
                for (int worker = 0; worker < workers; worker++) {
                    long offset = ((long) round * workers + worker) * BLOCK;
                    assertArrayEquals(filled(BLOCK, (round + worker) % 255 + 1), read(device, offset, BLOCK));
                }
            }
            device.flush();
        }
    }

    /** Bytes the file system allocated to {@code path}, from stat(1); -1 if that is not available. */
    private static long allocatedBytes(Path path) throws InterruptedException {
        try {
            Process stat = new ProcessBuilder("stat", "-c", "%b %B", path.toString()).redirectErrorStream(true).start();
            String[] blocksAndUnit = new String(stat.getInputStream().readAllBytes()).trim().split(" ");
            if (stat.waitFor() != 0 || blocksAndUnit.length != 2) {
                return -1;
            }
            return Long.parseLong(blocksAndUnit[0]) * Long.parseLong(blocksAndUnit[1]);
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
    }
}
