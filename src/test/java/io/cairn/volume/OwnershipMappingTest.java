package io.cairn.volume;

import io.cairn.io.MemoryBlockDevice;
import io.cairn.io.StorageException;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Block status must not promise what copy-on-write cannot keep (NBD base:allocation): a run is
 * reported OWNED only if writing it needs no free space, so it never fails with ENOSPC.
 */
class OwnershipMappingTest {

    private static final int BLOCK = 4096;

    @Test
    void statesFollowSharing() {
        Store store = Store.format(new MemoryBlockDevice(), 64L << 20, 256, StoreOptions.defaults());
        store.create("disk", 16 * BLOCK);
        try (Volume volume = store.openVolume("disk")) {
            volume.write(0, ByteBuffer.allocate(4 * BLOCK), false);
            assertEquals(List.of(
                    new MappedRange(0, 4 * BLOCK, MappedRange.State.OWNED),
                    new MappedRange(4 * BLOCK, 12 * BLOCK, MappedRange.State.HOLE)), volume.mapping(0, 16 * BLOCK));

            store.snapshot("disk", "s");
            assertEquals(List.of(
                    new MappedRange(0, 4 * BLOCK, MappedRange.State.SHARED),
                    new MappedRange(4 * BLOCK, 12 * BLOCK, MappedRange.State.HOLE)), volume.mapping(0, 16 * BLOCK));

            volume.write(BLOCK, ByteBuffer.allocate(BLOCK), false);
            // The copy made the written block and its path private; its siblings in the copied leaf stay shared.
            assertEquals(List.of(
                    new MappedRange(0, BLOCK, MappedRange.State.SHARED),
                    new MappedRange(BLOCK, BLOCK, MappedRange.State.OWNED),
                    new MappedRange(2 * BLOCK, 2 * BLOCK, MappedRange.State.SHARED),
                    new MappedRange(4 * BLOCK, 12 * BLOCK, MappedRange.State.HOLE)), volume.mapping(0, 16 * BLOCK));
        }
        try (Volume snapshot = store.openVolume("disk@s")) {
            assertEquals(List.of(
                    new MappedRange(0, 4 * BLOCK, MappedRange.State.OWNED),
                    new MappedRange(4 * BLOCK, 12 * BLOCK, MappedRange.State.HOLE)), snapshot.mapping(0, 16 * BLOCK));
        }
    }

    @Test
    void ownedRunsTakeWritesOnAFullStore() {
        Store store = Store.format(new MemoryBlockDevice(), 2L << 20, 64, StoreOptions.defaults());
        store.create("disk", 4L << 20); // thin: larger than the store
        try (Volume volume = store.openVolume("disk")) {
            ByteBuffer block = ByteBuffer.allocate(BLOCK);
            long written = 0;
            StorageException full = null;
            while (full == null) {
                try {
                    volume.write(written, block.clear(), false);
                    written += BLOCK;
                } catch (StorageException e) {
                    full = e;
                }
            }
            assertEquals(StorageException.Code.NO_SPACE, full.code());
            long filled = written;
            store.commit();
            for (MappedRange range : volume.mapping(0, filled)) {
                assertEquals(MappedRange.State.OWNED, range.state());
                for (long offset = range.offsetBytes(); offset < range.offsetBytes() + range.lengthBytes(); offset += BLOCK) {
                    volume.write(offset, ByteBuffer.allocate(BLOCK).put(0, (byte) 7), false);
                }
            }
            store.commit();
            ByteBuffer check = ByteBuffer.allocate(BLOCK);
            volume.read(filled - BLOCK, check);
            assertEquals(7, check.get(0));
            assertThrows(StorageException.class, () -> volume.write(filled, ByteBuffer.allocate(BLOCK), false));
        }
    }
}
