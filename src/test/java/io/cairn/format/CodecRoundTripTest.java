package io.cairn.format;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.LongRange;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.UUID;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/** Every codec of the format package: decode(encode(x)) == x for random field values. */
class CodecRoundTripTest {

    private static final long MAX_BLOCK = Pointer.BLOCK_MASK;

    @Property(tries = 300)
    void blockHeader(@ForAll("magics") int magic, @ForAll long blockNumber, @ForAll long generation,
                     @ForAll @IntRange(min = 0, max = 0xFFFF) int aux) {
        ByteBuffer image = BlockHeader.newImage();
        image.putLong(100, blockNumber ^ generation);
        BlockHeader.seal(image, magic, blockNumber, generation, aux);
        BlockHeader.verify(image, magic, blockNumber);
        assertEquals(generation, BlockHeader.generation(image));
        assertEquals(aux, BlockHeader.aux(image));
        assertEquals(blockNumber ^ generation, image.getLong(100), "the body is untouched");
    }

    @Property(tries = 300)
    void superblock(@ForAll @LongRange(min = 0, max = Long.MAX_VALUE) long generation,
                    @ForAll long compatibleFeatures,
                    @ForAll @IntRange(min = 6, max = 24) int extentShift,
                    @ForAll @LongRange(min = 1, max = 1L << 20) long extents,
                    @ForAll long uuidMost, @ForAll long uuidLeast,
                    @ForAll @LongRange(min = 1, max = Long.MAX_VALUE) long nextVdiId,
                    @ForAll @LongRange(min = 1, max = Long.MAX_VALUE) long nextSnapshotId,
                    @ForAll("tableRoots") Superblock.TableRoot extentTable,
                    @ForAll("tableRoots") Superblock.TableRoot vdiTable,
                    @ForAll("tableRoots") Superblock.TableRoot snapshotTable,
                    @ForAll long commitMillis) {
        int extentBlocks = 1 << extentShift;
        Superblock superblock = new Superblock(generation, 0, compatibleFeatures, extentBlocks, extents * extentBlocks,
                new UUID(uuidMost, uuidLeast), nextVdiId, nextSnapshotId, extentTable, vdiTable, snapshotTable, commitMillis);
        ByteBuffer image = superblock.encode();
        assertEquals(superblock, Superblock.decode(image, Superblock.slotFor(generation)));
        assertEquals(true, Superblock.hasSignature(image));
    }

    @Property(tries = 100)
    void radixNode(@ForAll("nodePointers") long[] pointers, @ForAll @LongRange(min = 0, max = MAX_BLOCK) long blockNumber,
                   @ForAll @LongRange(min = 0, max = Long.MAX_VALUE) long generation,
                   @ForAll @IntRange(min = 1, max = Layout.MAX_TREE_HEIGHT) int level) {
        ByteBuffer image = NodeCodec.encode(pointers, blockNumber, generation, level);
        assertArrayEquals(pointers, NodeCodec.decode(image, blockNumber, level));
        assertEquals(level, NodeCodec.levelOf(image));
        assertEquals(generation, NodeCodec.generationOf(image));
    }

    @Property(tries = 50)
    void counterBlocks(@ForAll("extentCounters") char[] values, @ForAll CounterEncoding encoding,
                       @ForAll @LongRange(min = 2, max = MAX_BLOCK) long firstBlock,
                       @ForAll @LongRange(min = 0, max = Long.MAX_VALUE) long generation, @ForAll @IntRange(min = 0, max = 1) int slot) {
        char[] counters = new char[values.length];
        for (int i = 0; i < values.length; i++) {
            counters[i] = (char) (values[i] % (encoding.maxCount() + 1)); // what the encoding holds, 0 and max included
        }
        char[] decoded = new char[counters.length];
        int perBlock = encoding.countersPerBlock();
        int counterBlocks = Math.ceilDiv(counters.length, perBlock);
        for (int i = 0; i < counterBlocks; i++) {
            long block = firstBlock + 2L * i + slot;
            ByteBuffer image = RefcountBlockCodec.encode(encoding, counters, i * perBlock, block, generation, slot);
            BlockHeader.verify(image, Layout.MAGIC_REFCOUNT, block);
            assertEquals(slot, BlockHeader.aux(image));
            assertEquals(generation, BlockHeader.generation(image));
            RefcountBlockCodec.decodeInto(encoding, image, decoded, i * perBlock);
        }
        assertArrayEquals(counters, decoded);
    }

    @Property(tries = 100)
    void vdiTablePage(@ForAll("vdiPage") List<VdiRecord> records, @ForAll @LongRange(min = 0, max = 1000) long pageIndex,
                      @ForAll @LongRange(min = 2, max = MAX_BLOCK) long block, @ForAll @LongRange(min = 0) long generation) {
        TablePageCodec.Kind kind = TablePageCodec.Kind.VDIS;
        // Entry p * perPage + r of the table is record r of page p; ids start at 1, so entry 0 stays empty.
        long firstEntry = pageIndex * kind.recordsPerPage();
        ByteBuffer page = BlockHeader.newImage();
        for (int r = 0; r < records.size(); r++) {
            VdiRecord record = records.get(r);
            if (record != null && firstEntry + r != 0) {
                withId(record, firstEntry + r).encode(page, kind.offsetOf(r));
            }
        }
        TablePageCodec.seal(page, kind, block, generation);
        TablePageCodec.verify(page, kind, block);
        for (int r = 0; r < kind.recordsPerPage(); r++) {
            VdiRecord decoded = VdiRecord.decode(page, kind.offsetOf(r), block, firstEntry + r);
            VdiRecord expected = r < records.size() && records.get(r) != null && firstEntry + r != 0
                    ? withId(records.get(r), firstEntry + r) : null;
            assertEquals(expected, decoded, "entry " + r);
        }
    }

    @Property(tries = 100)
    void snapshotTablePage(@ForAll("snapshotPage") List<SnapshotRecord> records, @ForAll @LongRange(min = 0, max = 1000) long pageIndex,
                           @ForAll @LongRange(min = 2, max = MAX_BLOCK) long block, @ForAll @LongRange(min = 0) long generation) {
        TablePageCodec.Kind kind = TablePageCodec.Kind.SNAPSHOTS;
        long firstEntry = pageIndex * kind.recordsPerPage();
        ByteBuffer page = BlockHeader.newImage();
        for (int r = 0; r < records.size(); r++) {
            SnapshotRecord record = records.get(r);
            if (record != null && firstEntry + r != 0) {
                withId(record, firstEntry + r).encode(page, kind.offsetOf(r));
            }
        }
        TablePageCodec.seal(page, kind, block, generation);
        TablePageCodec.verify(page, kind, block);
        for (int r = 0; r < kind.recordsPerPage(); r++) {
            SnapshotRecord decoded = SnapshotRecord.decode(page, kind.offsetOf(r), block, firstEntry + r);
            SnapshotRecord expected = r < records.size() && records.get(r) != null && firstEntry + r != 0
                    ? withId(records.get(r), firstEntry + r) : null;
            assertEquals(expected, decoded, "entry " + r);
        }
    }

    @Property(tries = 100)
    void extentTablePage(@ForAll("extentPage") List<ExtentRecord> records, @ForAll @LongRange(min = 2, max = MAX_BLOCK) long block,
                         @ForAll @LongRange(min = 0) long generation) {
        TablePageCodec.Kind kind = TablePageCodec.Kind.EXTENTS;
        ByteBuffer page = BlockHeader.newImage();
        for (int r = 0; r < records.size(); r++) {
            records.get(r).encode(page, kind.offsetOf(r));
        }
        TablePageCodec.seal(page, kind, block, generation);
        TablePageCodec.verify(page, kind, block);
        for (int r = 0; r < kind.recordsPerPage(); r++) {
            ExtentRecord expected = r < records.size() ? records.get(r) : ExtentRecord.FREE;
            assertEquals(expected, ExtentRecord.decode(page, kind.offsetOf(r), block), "entry " + r);
        }
    }

    @Property(tries = 20)
    void anAllZeroEntryIsEmpty(@ForAll @LongRange(min = 1) long expectedId) {
        ByteBuffer page = BlockHeader.newImage();
        assertNull(VdiRecord.decode(page, TablePageCodec.Kind.VDIS.offsetOf(0), 5, expectedId));
        assertNull(SnapshotRecord.decode(page, TablePageCodec.Kind.SNAPSHOTS.offsetOf(0), 5, expectedId));
        assertEquals(ExtentRecord.FREE, ExtentRecord.decode(page, TablePageCodec.Kind.EXTENTS.offsetOf(0), 5));
    }

    // ---------------------------------------------------------------- generators

    @Provide
    Arbitrary<Integer> magics() {
        return Arbitraries.of(Layout.MAGIC_SUPERBLOCK, Layout.MAGIC_REFCOUNT, Layout.MAGIC_NODE, Layout.MAGIC_TABLE_PAGE);
    }

    @Provide
    Arbitrary<Superblock.TableRoot> tableRoots() {
        return Combinators.combine(Arbitraries.longs().between(0, MAX_BLOCK), Arbitraries.integers().between(1, Layout.MAX_TREE_HEIGHT))
                .as(Superblock.TableRoot::new);
    }

    @Provide
    Arbitrary<long[]> nodePointers() {
        Arbitrary<Long> pointer = Combinators.combine(
                        Arbitraries.longs().between(0, MAX_BLOCK).edgeCases(edges -> edges.add(0L)),
                        Arbitraries.of(true, false))
                .as((block, readOnly) -> readOnly ? Pointer.markReadOnly(block) : Pointer.writable(block));
        return pointer.array(long[].class).ofSize(Layout.POINTERS_PER_NODE);
    }

    @Provide
    Arbitrary<char[]> extentCounters() {
        return Arbitraries.integers().between(6, 14).flatMap(shift ->
                Arbitraries.chars().range('\u0000', '\uffff').array(char[].class).ofSize(1 << shift));
    }

    /** Text that survives UTF-8 (no lone surrogates), mixing one-, two- and three-byte characters. */
    private static Arbitrary<String> text(int minChars, int maxChars) {
        return Arbitraries.strings()
                .withCharRange('a', 'z').withCharRange('0', '9').withChars("._+-@/ ")
                .withCharRange('\u00C0', '\u00FF').withCharRange('\u4E00', '\u4E40')
                .ofMinLength(minChars).ofMaxLength(maxChars);
    }

    @Provide
    Arbitrary<List<VdiRecord>> vdiPage() {
        Arbitrary<VdiRecord> record = Combinators.combine(
                        Arbitraries.longs().greaterOrEqual(0),
                        Arbitraries.longs().between(0, MAX_BLOCK),
                        Arbitraries.integers().between(1, Layout.MAX_TREE_HEIGHT),
                        Arbitraries.of(true, false),
                        text(1, 42),
                        Arbitraries.longs().greaterOrEqual(0).list().ofSize(5))
                .as((size, root, height, deleted, name, more) -> new VdiRecord(1, size, root, height, deleted, name,
                        more.get(0), more.get(1), more.get(2), more.get(3), more.get(4)));
        return record.injectNull(0.3).list().ofMaxSize(TablePageCodec.Kind.VDIS.recordsPerPage());
    }

    @Provide
    Arbitrary<List<SnapshotRecord>> snapshotPage() {
        Arbitrary<SnapshotRecord> record = Combinators.combine(
                        Arbitraries.longs().greaterOrEqual(0).list().ofSize(5),
                        Arbitraries.integers().between(1, Layout.MAX_TREE_HEIGHT),
                        Arbitraries.of(true, false),
                        text(0, 21))
                .as((values, height, deleted, label) -> new SnapshotRecord(1, values.get(0), values.get(1), values.get(2),
                        values.get(3), values.get(4), height, deleted, label));
        return record.injectNull(0.3).list().ofMaxSize(TablePageCodec.Kind.SNAPSHOTS.recordsPerPage());
    }

    @Provide
    Arbitrary<List<ExtentRecord>> extentPage() {
        Arbitrary<ExtentRecord> record = Combinators.combine(
                        Arbitraries.of(ExtentRecord.Type.class), Arbitraries.integers(), Arbitraries.longs())
                .as(ExtentRecord::new);
        return record.list().ofMaxSize(TablePageCodec.Kind.EXTENTS.recordsPerPage());
    }

    private static VdiRecord withId(VdiRecord record, long id) {
        return new VdiRecord(id, record.sizeBytes(), record.rootBlock(), record.height(), record.deleted(), record.name(),
                record.parentSnapshotId(), record.snapshotLogHead(), record.createdMillis(), record.lockHolder(), record.lockToken());
    }

    private static SnapshotRecord withId(SnapshotRecord record, long id) {
        return new SnapshotRecord(id, record.vdiId(), record.rootBlock(), record.previousSnapshotId(), record.takenMillis(),
                record.sizeBytes(), record.height(), record.deleted(), record.label());
    }
}
