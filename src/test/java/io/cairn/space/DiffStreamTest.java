package io.cairn.space;

import io.cairn.volume.Store;
import io.cairn.volume.Volume;
import io.cairn.gc.CheckReport;
import io.cairn.gc.Checker;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Export and import of diff streams: round trips against models, and damaged streams refused. */
class DiffStreamTest {

    private static final int BLOCK = RandomHistory.BLOCK;

    @TempDir
    Path directory;

    @Property(tries = 25)
    void importingTheDiffOntoTheOldVersionGivesTheNewOne(@ForAll long seed) throws IOException {
        Path file = Files.createTempFile("cairn-diff", ".stream");
        try {
            RandomHistory history = new RandomHistory(seed, 30 + (int) Math.floorMod(seed, 30L));
            List<String> snapshots = history.snapshots();
            for (int round = 0; round < 3 && !snapshots.isEmpty(); round++) {
                String from = history.pick(snapshots);
                List<String> sameSize = new ArrayList<>();
                for (String reference : history.models.keySet()) {
                    if (history.models.get(reference).length == history.models.get(from).length) {
                        sameSize.add(reference);
                    }
                }
                String to = history.pick(sameSize);
                export(history.store, from, to, file);
                DiffImport.verify(file);
                // A clone of the "from" snapshot holds exactly that version.
                history.cloneOf(from);
                String target = history.disks().getLast();
                DiffStream.Header header = new DiffStreamReader(Files.newInputStream(file), "test").header();
                assertNull(DiffImport.mismatch(history.store, target, header), history::toString);
                apply(history.store, file, target);
                history.models.put(target, history.models.get(to).clone());
                assertArrayEquals(history.models.get(to), history.read(target), history + ": " + from + " → " + to);

                export(history.store, null, to, file);
                history.createDisk();
                String fresh = history.disks().getLast();
                if (history.models.get(fresh).length == history.models.get(to).length) {
                    history.write(fresh);
                    apply(history.store, file, fresh);
                    history.models.put(fresh, history.models.get(to).clone());
                    assertArrayEquals(history.models.get(to), history.read(fresh), history + ": full " + to);
                }
            }
            CheckReport check = Checker.check(history.store);
            assertTrue(check.clean(), () -> history + ": " + check.summary());
        } finally {
            Files.deleteIfExists(file);
        }
    }

    @Test
    void importRefusesATargetThatIsNotTheStartingVersion() throws IOException {
        RandomHistory history = new RandomHistory(3, 0);
        history.write("d0", 0, ExclusiveSpaceTest.filled(2 * BLOCK, 1));
        String first = history.snapshot("d0");
        history.write("d0", BLOCK, ExclusiveSpaceTest.filled(BLOCK, 2));
        String second = history.snapshot("d0");
        Path file = directory.resolve("d0.diff");
        export(history.store, first, second, file);
        DiffStream.Header header = DiffImport.verify(file).header();
        assertEquals(first.substring(first.indexOf('@') + 1), Long.toString(header.from().snapshotId()));
        assertEquals(BLOCK, DiffImport.verify(file).dataBytes());

        assertNotNull(DiffImport.mismatch(history.store, "d0", header), "d0 is at the second snapshot already");
        history.cloneOf(first);
        assertNull(DiffImport.mismatch(history.store, "d1", header));
        history.write("d1", 5 * BLOCK, ExclusiveSpaceTest.filled(10, 3));
        String written = DiffImport.mismatch(history.store, "d1", header);
        assertTrue(written.contains("differs from " + first), written);
        history.store.create("small", 32L * BLOCK);
        assertTrue(DiffImport.mismatch(history.store, "small", header).contains("bytes but the stream is for a disk of"));
    }

    @Test
    void truncatedAndBitFlippedStreamsAreRefused() throws IOException {
        RandomHistory history = new RandomHistory(5, 0);
        Random random = new Random(5);
        byte[] data = new byte[2 * BLOCK];
        random.nextBytes(data);
        history.write("d0", 3 * BLOCK, data);
        String first = history.snapshot("d0");
        history.write("d0", 20 * BLOCK, data);
        try (Volume volume = history.store.openVolume("d0")) {
            volume.trim(3 * BLOCK, BLOCK, false);
        }
        Path file = directory.resolve("whole.diff");
        export(history.store, first, "d0", file);
        byte[] stream = Files.readAllBytes(file);
        DiffStream.Summary summary = DiffImport.verify(file);
        assertEquals(2, summary.records(), "one ZERO and one DATA record");
        assertEquals(stream.length, summary.streamBytes());

        for (int length = 0; length < stream.length; length++) {
            byte[] truncated = java.util.Arrays.copyOf(stream, length);
            DiffStreamException problem = assertThrows(DiffStreamException.class, () -> readAll(truncated),
                    "truncated to " + length);
            assertTrue(problem.getMessage().startsWith("corrupt diff stream memory at byte "), problem.getMessage());
        }
        for (int position = 0; position < stream.length; position++) {
            byte[] flipped = stream.clone();
            flipped[position] ^= (byte) (1 << random.nextInt(8));
            assertThrows(DiffStreamException.class, () -> readAll(flipped), "bit flipped in byte " + position);
        }
        Path damaged = directory.resolve("damaged.diff");
        Files.write(damaged, java.util.Arrays.copyOf(stream, stream.length - 1));
        assertTrue(assertThrows(DiffStreamException.class, () -> DiffImport.verify(damaged)).getMessage()
                .startsWith("corrupt diff stream " + damaged + " at byte "));
        byte[] extended = java.util.Arrays.copyOf(stream, stream.length + 1);
        Files.write(damaged, extended);
        assertTrue(assertThrows(DiffStreamException.class, () -> DiffImport.verify(damaged)).getMessage()
                .contains("bytes after the END record"));
        Files.write(damaged, "not a stream at all".getBytes());
        assertTrue(assertThrows(DiffStreamException.class, () -> DiffImport.verify(damaged)).getMessage()
                .contains("not a Cairn diff stream"));
    }

    @Test
    void theWriterRefusesRecordsOutOfOrder() throws IOException {
        DiffStream.Header header = new DiffStream.Header(64L * BLOCK, java.util.UUID.randomUUID(), 0, null,
                new DiffStream.Identity(1, 0, "", "d"));
        DiffStreamWriter writer = new DiffStreamWriter(OutputStream.nullOutputStream(), header);
        writer.zero(0, 8 * BLOCK);
        assertThrows(IllegalArgumentException.class, () -> writer.zero(4 * BLOCK, BLOCK));
        assertThrows(IllegalArgumentException.class, () -> writer.data(63 * BLOCK, java.nio.ByteBuffer.allocate(2 * BLOCK)));
        assertThrows(IllegalArgumentException.class, () -> writer.zero(10 * BLOCK, 100));
        // A full stream must cover the disk: ending early is caught by the reader.
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DiffStreamWriter partial = new DiffStreamWriter(bytes, header);
        partial.zero(0, 8 * BLOCK);
        partial.end();
        DiffStreamReader reader = new DiffStreamReader(new ByteArrayInputStream(bytes.toByteArray()), "partial");
        assertNotNull(reader.next());
        assertTrue(assertThrows(DiffStreamException.class, reader::next).getMessage().contains("must cover the whole disk"));
    }

    private static void readAll(byte[] stream) throws IOException {
        try (DiffStreamReader reader = new DiffStreamReader(new ByteArrayInputStream(stream), "memory")) {
            while (reader.next() != null) {
                // checks each record
            }
        }
    }

    static void export(Store store, String from, String to, Path file) throws IOException {
        try (OutputStream out = Files.newOutputStream(file)) {
            DiffExport.write(store, from, to, out, offset -> { });
        }
    }

    static void apply(Store store, Path file, String target) throws IOException {
        DiffImport.verify(file);
        try (Volume volume = store.openVolume(target)) {
            DiffImport.apply(file, volume, offset -> { });
        }
    }
}
