package io.cairn.format;

import io.cairn.io.CorruptionException;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Sketch blobs: byte layout, round trip over one and many pages, and every way a page gives itself away. */
class SketchBlobCodecTest {

    private static final long SNAPSHOT = 77;
    private static final long GENERATION = 12;

    @Test
    void layoutMatchesTheSpec() {
        SketchBlobCodec.Blob blob = new SketchBlobCodec.Blob(SNAPSHOT, 76, 3, 2, new byte[] {1, 2, 3}, new byte[] {4, 5});
        byte[] payload = blob.payload();
        ByteBuffer bytes = ByteBuffer.wrap(payload).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(1, bytes.getInt(0));
        assertEquals(76, bytes.getLong(8));
        assertEquals(3, bytes.getLong(16));
        assertEquals(2, bytes.getLong(24));
        assertEquals(3, bytes.getInt(32));
        assertEquals(2, bytes.getInt(36));
        assertEquals(1, payload[40]);
        assertEquals(4, payload[43]);
        assertEquals(45, payload.length);

        ByteBuffer page = SketchBlobCodec.encode(SNAPSHOT, payload, new long[] {500}, GENERATION).get(0);
        assertEquals(Layout.magic("CSKB"), page.getInt(0));
        assertEquals(500, page.getLong(8));
        assertEquals(GENERATION, page.getLong(16));
        assertEquals(SNAPSHOT, page.getLong(32));
        assertEquals(0, page.getLong(40));
        assertEquals(0, page.getInt(48));
        assertEquals(45, page.getInt(52));
        assertEquals(1, page.get(64));
        assertEquals(4032, SketchBlobCodec.PAYLOAD_PER_PAGE);

        ByteBuffer record = ByteBuffer.allocate(SnapshotRecord.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        new SnapshotRecord(5, 1, 2, 0, 0, 4096, 1, false, "", 0x1234).encode(record, 0);
        assertEquals(0x1234, record.getLong(56));
        assertEquals(0x1234, SnapshotRecord.decode(record, 0, 9, 5).sketchBlock());
        assertEquals(0, SnapshotRecord.decode(record, 0, 9, 5).asDeleted().sketchBlock());
    }

    @Test
    void roundTripOverManyPages() {
        Random random = new Random(7);
        for (int addedBytes : new int[] {0, 10, 4000, 4032 - 40, 4033, 20_000, 100_000}) {
            byte[] added = new byte[addedBytes];
            byte[] removed = new byte[addedBytes / 3];
            random.nextBytes(added);
            random.nextBytes(removed);
            SketchBlobCodec.Blob blob = new SketchBlobCodec.Blob(SNAPSHOT, 3, 11, 13, added, removed);
            byte[] payload = blob.payload();
            long[] pages = new long[SketchBlobCodec.pagesFor(payload.length)];
            for (int i = 0; i < pages.length; i++) {
                pages[i] = 1000 + 3L * i;
            }
            List<ByteBuffer> images = SketchBlobCodec.encode(SNAPSHOT, payload, pages, GENERATION);
            List<SketchBlobCodec.Page> read = new ArrayList<>();
            long block = pages[0];
            for (int index = 0; block != 0; index++) {
                SketchBlobCodec.Page page = SketchBlobCodec.decodePage(images.get(index), block, SNAPSHOT, index);
                read.add(page);
                block = page.nextPage();
            }
            assertEquals(pages.length, read.size());
            SketchBlobCodec.Blob back = SketchBlobCodec.Blob.fromPayload(SNAPSHOT, SketchBlobCodec.join(read), pages[0]);
            assertEquals(3, back.baseSnapshotId());
            assertEquals(11, back.addedBlocks());
            assertEquals(13, back.removedBlocks());
            assertArrayEquals(added, back.addedSketch());
            assertArrayEquals(removed, back.removedSketch());
        }
    }

    @Test
    void pagesIdentifyThemselves() {
        byte[] payload = new SketchBlobCodec.Blob(SNAPSHOT, 0, 1, 0, new byte[5000], new byte[0]).payload();
        List<ByteBuffer> images = SketchBlobCodec.encode(SNAPSHOT, payload, new long[] {40, 41}, GENERATION);
        ByteBuffer first = images.get(0);
        assertRefused("misdirected", () -> SketchBlobCodec.decodePage(first, 41, SNAPSHOT, 0));
        assertRefused("snapshot 77", () -> SketchBlobCodec.decodePage(first, 40, 78, 0));
        assertRefused("page 0", () -> SketchBlobCodec.decodePage(first, 40, SNAPSHOT, 1));
        ByteBuffer node = NodeCodec.encode(new long[Layout.POINTERS_PER_NODE], 40, GENERATION, 1);
        assertRefused("expected a CSKB block", () -> SketchBlobCodec.decodePage(node, 40, SNAPSHOT, 0));
        // Every single-bit error anywhere in the page is caught.
        for (int bit = 0; bit < Layout.BLOCK_BYTES * 8; bit++) {
            ByteBuffer flipped = copy(first);
            flipped.put(bit / 8, (byte) (flipped.get(bit / 8) ^ (1 << (bit % 8))));
            assertThrows(CorruptionException.class, () -> SketchBlobCodec.decodePage(flipped, 40, SNAPSHOT, 0),
                    "bit " + bit);
        }
        assertRefused("payload version", () -> SketchBlobCodec.Blob.fromPayload(SNAPSHOT, new byte[40], 40));
        byte[] truncated = java.util.Arrays.copyOf(payload, payload.length - 1);
        assertRefused("claims sketches", () -> SketchBlobCodec.Blob.fromPayload(SNAPSHOT, truncated, 40));
    }

    private static void assertRefused(String message, org.junit.jupiter.api.function.Executable decode) {
        CorruptionException problem = assertThrows(CorruptionException.class, decode);
        assertTrue(problem.getMessage().contains(message), problem.getMessage());
    }

    private static ByteBuffer copy(ByteBuffer image) {
        ByteBuffer copy = ByteBuffer.allocate(image.capacity()).order(ByteOrder.LITTLE_ENDIAN);
        copy.put(image.duplicate().clear());
        return copy.clear();
    }
}
