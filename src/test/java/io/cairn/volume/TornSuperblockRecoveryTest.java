package io.cairn.volume;

import io.cairn.format.BlockHeader;
import io.cairn.format.Layout;
import io.cairn.format.Superblock;
import io.cairn.io.MemoryBlockDevice;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/**
 * A commit whose superblock write lands damaged leaves the previous commit in the other slot. The commit
 * after reopening must not write that slot: if its write were damaged too, no valid superblock would be left.
 * (The superblock's fields fit in its first sector, so a write that loses whole sectors is either complete
 * or absent; the damage here is a write that lands garbled inside the sector, or bit rot.)
 */
class TornSuperblockRecoveryTest {

    private static final int BLOCK = Layout.BLOCK_BYTES;

    @Test
    void twoTornSuperblockWritesInARowFallBackToTheLastGoodCommit() {
        MemoryBlockDevice device = new MemoryBlockDevice();
        Store store = Store.format(device, 4L << 20, 64, StoreOptions.defaults());
        store.create("a", 1L << 20);
        writeBlock(store, 0, (byte) 1);
        store.commit();
        long good = store.durableGeneration();
        writeBlock(store, 1, (byte) 2);
        MemoryBlockDevice beforeFailedCommit = device.copy();
        store.commit();
        assertEquals(good + 1, store.durableGeneration());

        // The superblock write of the last commit landed damaged: its counter slots are on disk, its superblock is
        // not, and the copy into the other slot (written after it) never happened.
        MemoryBlockDevice afterFirstCrash = crashedDuringSuperblockWrite(device, beforeFailedCommit, good + 1);
        Store reopened = Store.open(afterFirstCrash, null, StoreOptions.defaults());
        assertEquals(good, reopened.durableGeneration());
        writeBlock(reopened, 2, (byte) 3);
        MemoryBlockDevice beforeSecondFailedCommit = afterFirstCrash.copy();
        reopened.commit();
        long next = reopened.durableGeneration();
        assertNotEquals(Superblock.slotFor(good), Superblock.slotFor(next),
                "generation " + next + " must not overwrite the slot of the only valid superblock " + good);

        // The superblock write of that commit was damaged as well: the last good commit is still there.
        MemoryBlockDevice afterSecondCrash = crashedDuringSuperblockWrite(afterFirstCrash, beforeSecondFailedCommit, next);
        Store last = Store.open(afterSecondCrash, null, StoreOptions.defaults());
        assertEquals(good, last.durableGeneration());
        assertArrayEquals(filled((byte) 1), readBlock(last, 0));
        assertArrayEquals(new byte[BLOCK], readBlock(last, 1));
        assertArrayEquals(new byte[BLOCK], readBlock(last, 2));
        last.close();
    }

    @Test
    void nextGenerationIsAboveEverythingSeenAndHasTheOtherParity() {
        assertEquals(8, Store.nextGeneration(7, 0));
        assertEquals(8, Store.nextGeneration(7, 7));
        assertEquals(10, Store.nextGeneration(7, 8), "8 was left by an unfinished commit and would reuse 7's slot");
        assertEquals(10, Store.nextGeneration(7, 9));
        assertEquals(12, Store.nextGeneration(7, 10));
    }

    /**
     * The device as a power cut during commit {@code generation}'s superblock write leaves it: that slot
     * garbled, and the other slot as it was before the commit (its copy is written only afterwards).
     */
    private static MemoryBlockDevice crashedDuringSuperblockWrite(MemoryBlockDevice after, MemoryBlockDevice before,
                                                                  long generation) {
        MemoryBlockDevice crashed = after.copy();
        damage(crashed, Superblock.slotFor(generation));
        ByteBuffer previous = BlockHeader.newImage();
        long other = Superblock.otherSlot(generation);
        before.read(other * BLOCK, previous);
        crashed.write(other * BLOCK, previous.clear());
        return crashed;
    }

    /** Garbles a byte of the slot's fields, so its checksum no longer matches. */
    private static void damage(MemoryBlockDevice device, long slot) {
        ByteBuffer image = BlockHeader.newImage();
        device.read(slot * BLOCK, image);
        image.put(100, (byte) (image.get(100) ^ 0x5A));
        device.write(slot * BLOCK, image.clear());
    }

    private static void writeBlock(Store store, long block, byte value) {
        try (Volume volume = store.openVolume("a")) {
            volume.write(block * BLOCK, ByteBuffer.wrap(filled(value)), false);
        }
    }

    private static byte[] readBlock(Store store, long block) {
        try (Volume volume = store.openVolume("a")) {
            ByteBuffer buffer = ByteBuffer.allocate(BLOCK);
            volume.read(block * BLOCK, buffer);
            return buffer.array();
        }
    }

    private static byte[] filled(byte value) {
        byte[] bytes = new byte[BLOCK];
        Arrays.fill(bytes, value);
        return bytes;
    }
}
