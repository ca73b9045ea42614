package io.cairn.io;

import static io.cairn.io.DeviceTestSupport.filled;
import static io.cairn.io.DeviceTestSupport.randomBytes;
import static io.cairn.io.DeviceTestSupport.read;
import static io.cairn.io.DeviceTestSupport.write;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.io.FaultInjectingBlockDevice.Fate;
import io.cairn.io.FaultInjectingBlockDevice.WriteOutcome;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class FaultInjectingBlockDeviceTest {

    private static final int SECTOR = BlockDevice.SECTOR_BYTES;
    private static final int BLOCK = FaultInjectingBlockDevice.BLOCK_BYTES;
    private static final int OLD_BYTE = 0x0d;

    /** A durable image of {@code blocks} blocks of OLD_BYTE, so lost sectors are distinguishable from zeros. */
    private static MemoryBlockDevice oldImage(int blocks) {
        MemoryBlockDevice image = new MemoryBlockDevice();
        write(image, 0, filled(blocks * BLOCK, OLD_BYTE));
        return image;
    }

    @Test
    void readsSeeUnflushedWritesAndFlushMakesThemDurable() {
        FaultInjectingBlockDevice device = new FaultInjectingBlockDevice(oldImage(4));
        write(device, 100, filled(10, 0x77));

        assertArrayEquals(filled(10, 0x77), read(device, 100, 10));
        assertArrayEquals(filled(10, OLD_BYTE), read(device.durableImageCopy(), 100, 10), "not durable before flush");
        assertEquals(1, device.pendingWriteCount());

        device.flush();
        assertEquals(0, device.pendingWriteCount());
        assertEquals(1, device.flushCount());
        assertArrayEquals(filled(10, 0x77), read(device.durableImageCopy(), 100, 10));
        MemoryBlockDevice afterCrash = device.crash(new Random(1));
        assertArrayEquals(filled(10, 0x77), read(afterCrash, 100, 10), "a flushed write survives every crash");
        assertTrue(device.lastCrashOutcomes().isEmpty());
    }

    /**
     * Disjoint writes of assorted sizes and alignments; after each crash, every piece of every write
     * (its part in one device sector) holds either all new or all old bytes, exactly as the reported
     * outcome says. Across seeds, every fate and real tearing occur.
     */
    @Test
    void eachPendingWriteIsDroppedAppliedOrTornAtSectorGranularity() {
        int[][] offsetAndLength = {
                {0, BLOCK}, {BLOCK + 100, 3 * SECTOR}, {3 * BLOCK, 8 * BLOCK}, {12 * BLOCK + 511, 2}, {13 * BLOCK, 1}};
        Map<Fate, Integer> fatesSeen = new EnumMap<>(Fate.class);
        int tornWithBothKindsOfSector = 0;
        for (long seed = 0; seed < 200; seed++) {
            Random dataRandom = new Random(seed);
            FaultInjectingBlockDevice device = new FaultInjectingBlockDevice(oldImage(16));
            List<byte[]> data = new ArrayList<>();
            for (int[] write : offsetAndLength) {
                byte[] bytes = randomBytes(dataRandom, write[1]);
                bytes[0] = (byte) ~OLD_BYTE; // every piece differs from the old bytes in its first byte at least
                for (int i = 0; i < bytes.length; i++) {
                    if (bytes[i] == OLD_BYTE) {
                        bytes[i] = (byte) ~OLD_BYTE;
                    }
                }
                data.add(bytes);
                write(device, write[0], bytes);
            }
            MemoryBlockDevice image = device.crash(new Random(seed));
            List<WriteOutcome> outcomes = device.lastCrashOutcomes();
            assertEquals(offsetAndLength.length, outcomes.size());

            for (int w = 0; w < offsetAndLength.length; w++) {
                WriteOutcome outcome = outcomes.get(w);
                assertEquals(w + 1, outcome.writeNumber());
                assertEquals(offsetAndLength[w][0], outcome.offsetBytes());
                fatesSeen.merge(outcome.fate(), 1, Integer::sum);
                int applied = outcome.appliedSectors().cardinality();
                switch (outcome.fate()) {
                    case DROPPED -> assertEquals(0, applied);
                    case APPLIED -> assertEquals(outcome.sectorCount(), applied);
                    case TORN -> {
                        if (applied > 0 && applied < outcome.sectorCount()) {
                            tornWithBothKindsOfSector++;
                        }
                    }
                    case MISDIRECTED -> throw new AssertionError("misdirection is off by default");
                }
                assertPiecesMatchOutcome(image, offsetAndLength[w][0], data.get(w), outcome, seed);
            }
            // Bytes no write touched are untouched.
            assertArrayEquals(filled(100, OLD_BYTE), read(image, BLOCK, 100));
            int gapAfterSecondWrite = BLOCK - 100 - 3 * SECTOR;
            assertArrayEquals(filled(gapAfterSecondWrite, OLD_BYTE), read(image, BLOCK + 100 + 3 * SECTOR, gapAfterSecondWrite));
        }
        assertTrue(fatesSeen.getOrDefault(Fate.DROPPED, 0) > 100, "fates: " + fatesSeen);
        assertTrue(fatesSeen.getOrDefault(Fate.APPLIED, 0) > 100, "fates: " + fatesSeen);
        assertTrue(fatesSeen.getOrDefault(Fate.TORN, 0) > 100, "fates: " + fatesSeen);
        assertTrue(tornWithBothKindsOfSector > 50, "torn writes with both lost and kept sectors: " + tornWithBothKindsOfSector);
    }

    private static void assertPiecesMatchOutcome(MemoryBlockDevice image, long offset, byte[] data, WriteOutcome outcome, long seed) {
        long end = offset + data.length;
        long pieceStart = offset;
        for (int sector = 0; pieceStart < end; sector++) {
            long pieceEnd = Math.min(end, (pieceStart / SECTOR + 1) * SECTOR);
            int length = (int) (pieceEnd - pieceStart);
            byte[] expected = outcome.sectorApplied(sector)
                    ? Arrays.copyOfRange(data, (int) (pieceStart - offset), (int) (pieceEnd - offset))
                    : filled(length, OLD_BYTE);
            assertArrayEquals(expected, read(image, pieceStart, length),
                    "seed " + seed + ", write " + outcome.writeNumber() + " (" + outcome.fate() + "), sector piece " + sector);
            pieceStart = pieceEnd;
        }
        assertEquals(outcome.sectorCount(), FaultInjectingBlockDevice.sectorCount(offset, data.length));
    }

    @Test
    void laterWritesWinUnlessDroppedWhenAnEarlierOneReappears() {
        boolean sawLaterWin = false;
        boolean sawEarlierReappear = false;
        for (long seed = 0; seed < 100 && !(sawLaterWin && sawEarlierReappear); seed++) {
            FaultInjectingBlockDevice device = new FaultInjectingBlockDevice(oldImage(2));
            write(device, 0, filled(BLOCK, 1));
            write(device, 0, filled(BLOCK, 2));
            assertArrayEquals(filled(BLOCK, 2), read(device, 0, BLOCK));
            MemoryBlockDevice image = device.crash(new Random(seed));
            Fate first = device.lastCrashOutcomes().get(0).fate();
            Fate second = device.lastCrashOutcomes().get(1).fate();
            if (first == Fate.APPLIED && second == Fate.APPLIED) {
                assertArrayEquals(filled(BLOCK, 2), read(image, 0, BLOCK));
                sawLaterWin = true;
            }
            if (first == Fate.APPLIED && second == Fate.DROPPED) {
                assertArrayEquals(filled(BLOCK, 1), read(image, 0, BLOCK));
                sawEarlierReappear = true;
            }
        }
        assertTrue(sawLaterWin && sawEarlierReappear);
    }

    @Test
    void aSeedReplaysTheSameCrashAndDifferentSeedsDiffer() {
        List<MemoryBlockDevice> images = new ArrayList<>();
        for (long seed = 0; seed < 8; seed++) {
            MemoryBlockDevice first = crashAfterWorkload(seed);
            MemoryBlockDevice second = crashAfterWorkload(seed);
            assertTrue(first.sameContent(second), "seed " + seed + " did not replay");
            images.add(first);
        }
        long distinct = images.stream().filter(image -> !image.sameContent(images.get(0))).count();
        assertTrue(distinct >= 4, "only " + distinct + " of 7 other seeds gave a different image");
    }

    @Test
    void severalOutcomesCanBeDrawnFromOneCrash() {
        FaultInjectingBlockDevice device = new FaultInjectingBlockDevice(oldImage(8));
        Random data = new Random(5);
        for (int block = 0; block < 8; block++) {
            write(device, (long) block * BLOCK, randomBytes(data, BLOCK));
        }
        MemoryBlockDevice first = device.crash(new Random(1));
        List<WriteOutcome> firstOutcomes = device.lastCrashOutcomes();
        MemoryBlockDevice again = device.crash(new Random(1));
        assertTrue(first.sameContent(again));
        assertEquals(firstOutcomes.stream().map(WriteOutcome::fate).toList(),
                device.lastCrashOutcomes().stream().map(WriteOutcome::fate).toList());
        assertFalse(first.sameContent(device.crash(new Random(2))));
    }

    private static MemoryBlockDevice crashAfterWorkload(long seed) {
        FaultInjectingBlockDevice device = new FaultInjectingBlockDevice(oldImage(32));
        device.misdirectProbability(0.1);
        Random workload = new Random(42); // the same workload for every seed; only the crash varies
        for (int i = 0; i < 40; i++) {
            write(device, (long) workload.nextInt(32) * BLOCK + workload.nextInt(8) * SECTOR, randomBytes(workload, 1 + workload.nextInt(2 * BLOCK)));
            if (i == 10) {
                device.flush();
            }
        }
        return device.crash(new Random(seed));
    }

    @Test
    void crashAtWriteFailsThatWriteAndEverythingAfter() {
        FaultInjectingBlockDevice device = new FaultInjectingBlockDevice(oldImage(4));
        device.crashAtWrite(3);
        write(device, 0, filled(BLOCK, 1));
        device.flush();
        write(device, BLOCK, filled(BLOCK, 2));
        SimulatedCrashException crash = assertThrows(SimulatedCrashException.class, () -> write(device, 2 * BLOCK, filled(BLOCK, 3)));
        assertEquals(StorageException.Code.IO, crash.code());
        assertTrue(crash.getMessage().contains("write 3"), crash.getMessage());
        assertEquals(3, device.writeCount());
        assertTrue(device.crashed());

        assertThrows(SimulatedCrashException.class, () -> read(device, 0, 1));
        assertThrows(SimulatedCrashException.class, () -> write(device, 0, new byte[1]));
        assertThrows(SimulatedCrashException.class, device::flush);
        assertThrows(SimulatedCrashException.class, device::sizeBytes);
        assertEquals(3, device.writeCount(), "writes after the crash are not issued");

        // Write 1 was flushed; writes 2 and 3 (the one in flight) were in the cache.
        boolean sawCrashingWriteLand = false;
        boolean sawCrashingWriteLost = false;
        for (long seed = 0; seed < 50; seed++) {
            MemoryBlockDevice image = device.crash(new Random(seed));
            assertArrayEquals(filled(BLOCK, 1), read(image, 0, BLOCK));
            List<WriteOutcome> outcomes = device.lastCrashOutcomes();
            assertEquals(List.of(2L, 3L), outcomes.stream().map(WriteOutcome::writeNumber).toList());
            Fate crashingWriteFate = outcomes.get(1).fate();
            sawCrashingWriteLand |= crashingWriteFate == Fate.APPLIED;
            sawCrashingWriteLost |= crashingWriteFate == Fate.DROPPED;
            byte[] third = read(image, 2 * BLOCK, BLOCK);
            assertEquals(crashingWriteFate == Fate.APPLIED, Arrays.equals(filled(BLOCK, 3), third));
            assertEquals(crashingWriteFate == Fate.DROPPED, Arrays.equals(filled(BLOCK, OLD_BYTE), third));
        }
        assertTrue(sawCrashingWriteLand && sawCrashingWriteLost);

        // The image boots as a fresh device.
        MemoryBlockDevice image = device.crash(new Random(0));
        FaultInjectingBlockDevice rebooted = new FaultInjectingBlockDevice(image);
        assertArrayEquals(filled(BLOCK, 1), read(rebooted, 0, BLOCK));
        assertEquals(0, rebooted.writeCount());
        device.close();
    }

    @Test
    void crashAtWriteRefusesAWriteThatAlreadyHappened() {
        FaultInjectingBlockDevice device = new FaultInjectingBlockDevice(new MemoryBlockDevice());
        write(device, 0, new byte[1]);
        write(device, 0, new byte[1]);
        assertThrows(IllegalArgumentException.class, () -> device.crashAtWrite(2));
        device.crashAtWrite(3);
    }

    @Test
    void misdirectedWriteLandsWholeAtAnotherBlockWithTheSameAlignment() {
        int blocks = 16;
        for (long seed = 0; seed < 20; seed++) {
            FaultInjectingBlockDevice device = new FaultInjectingBlockDevice(oldImage(blocks));
            device.misdirectProbability(1.0);
            long intendedOffset = 5L * BLOCK + 2 * SECTOR;
            byte[] data = filled(3 * SECTOR, 0x42);
            write(device, intendedOffset, data);

            MemoryBlockDevice image = device.crash(new Random(seed));
            WriteOutcome outcome = device.lastCrashOutcomes().get(0);
            assertEquals(Fate.MISDIRECTED, outcome.fate());
            long landed = outcome.landedAtOffsetBytes();
            assertNotEquals(intendedOffset / BLOCK, landed / BLOCK);
            assertEquals(intendedOffset % BLOCK, landed % BLOCK);
            assertTrue(landed + data.length <= (long) blocks * BLOCK);
            assertArrayEquals(filled(data.length, OLD_BYTE), read(image, intendedOffset, data.length), "the right place keeps old data");
            assertArrayEquals(data, read(image, landed, data.length));
            assertEquals((long) blocks * BLOCK, image.sizeBytes());
        }
    }

    @Test
    void flipBitRotsTheDurableImageButNotAPendingWrite() {
        FaultInjectingBlockDevice device = new FaultInjectingBlockDevice(oldImage(2));
        device.flipBit(10, 0);
        device.flipBit(11, 7);
        assertEquals(OLD_BYTE ^ 1, read(device, 10, 1)[0]);
        assertEquals((byte) (OLD_BYTE ^ 0x80), read(device, 11, 1)[0]);
        assertEquals(OLD_BYTE ^ 1, read(device.durableImageCopy(), 10, 1)[0]);
        assertEquals(OLD_BYTE, read(device, 12, 1)[0]);

        write(device, BLOCK, filled(4, 0x20));
        device.flipBit(BLOCK + 1, 1);
        assertArrayEquals(filled(4, 0x20), read(device, BLOCK, 4), "the cached write is newer than the rotted media");
        assertEquals(OLD_BYTE ^ 2, read(device.durableImageCopy(), BLOCK + 1, 1)[0]);
        assertThrows(IllegalArgumentException.class, () -> device.flipBit(0, 8));
    }

    @Test
    void discardKeepsOldContentAndTheBuffersAreCopied() {
        FaultInjectingBlockDevice device = new FaultInjectingBlockDevice(oldImage(2));
        device.discard(0, BLOCK);
        assertArrayEquals(filled(BLOCK, OLD_BYTE), read(device, 0, BLOCK));

        byte[] data = filled(8, 9);
        device.write(0, ByteBuffer.wrap(data));
        Arrays.fill(data, (byte) 0); // the caller reuses its buffer; the cached write must not change
        device.flush();
        assertArrayEquals(filled(8, 9), read(device.durableImageCopy(), 0, 8));
    }
}
