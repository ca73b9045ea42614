package io.cairn.volume;

import io.cairn.format.Layout;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.Tuple;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** Generators and comparisons shared by the model-based volume tests. */
final class ModelSupport {

    static final int BLOCK = Layout.BLOCK_BYTES;

    private ModelSupport() {
    }

    /** A byte range of a disk: {@code length} may be 0. */
    record Range(long offset, int length) {
        long end() {
            return offset + length;
        }

        @Override
        public String toString() {
            return "[" + offset + ", +" + length + ")";
        }
    }

    /**
     * Ranges of a disk of {@code diskBytes}: offsets anywhere, or close to block boundaries near block 0,
     * the leaf-node boundary at block 512 and the disk's end (so ranges overlap and straddle blocks);
     * lengths from 0 to a few blocks, sometimes whole blocks.
     */
    static Arbitrary<Range> ranges(long diskBytes) {
        return ranges(diskBytes, 0, 512);
    }

    /** Like {@link #ranges(long)}, with offsets also gathered near {@code hotBlocks} (and the disk's end). */
    static Arbitrary<Range> ranges(long diskBytes, long... hotBlocks) {
        long blocks = (diskBytes + BLOCK - 1) / BLOCK;
        List<Tuple.Tuple2<Integer, Long>> centres = new ArrayList<>();
        for (long hot : hotBlocks) {
            if (hot < blocks) {
                centres.add(Tuple.of(hot == 0 ? 2 : 1, hot));
            }
        }
        centres.add(Tuple.of(1, blocks));
        Arbitrary<Long> hotBlock = Combinators.combine(Arbitraries.frequency(centres), Arbitraries.integers().between(-4, 8))
                .as((centre, near) -> Math.clamp(centre + near, 0, blocks));
        Arbitrary<Integer> delta = Arbitraries.frequencyOf(
                Tuple.of(4, Arbitraries.just(0)),
                Tuple.of(2, Arbitraries.of(-1, 1, -512, 512, -7, 7)),
                Tuple.of(2, Arbitraries.integers().between(-BLOCK + 1, BLOCK - 1)));
        Arbitrary<Long> nearBoundary = Combinators.combine(hotBlock, delta)
                .as((block, d) -> Math.clamp(block * BLOCK + d, 0, diskBytes));
        Arbitrary<Long> offset = Arbitraries.frequencyOf(
                Tuple.of(2, Arbitraries.longs().between(0, diskBytes)),
                Tuple.of(5, nearBoundary));
        Arbitrary<Integer> length = Arbitraries.frequencyOf(
                Tuple.of(1, Arbitraries.just(0)),
                Tuple.of(2, Arbitraries.integers().between(1, 300)),
                Tuple.of(4, Arbitraries.integers().between(1, 3 * BLOCK + 300)),
                Tuple.of(2, Arbitraries.integers().between(1, 3).map(n -> n * BLOCK)));
        return Combinators.combine(offset, length)
                .as((o, l) -> new Range(o, (int) Math.min(l, diskBytes - o)));
    }

    /**
     * The expected content of a disk of any size, kept per 4 KiB block: a block never written, or
     * zeroed whole, is absent and reads as zeros.
     */
    static final class DiskModel {
        final long sizeBytes;
        private final Map<Long, byte[]> blocks = new HashMap<>();

        DiskModel(long sizeBytes) {
            this.sizeBytes = sizeBytes;
        }

        void write(long offset, byte[] data) {
            apply(offset, data.length, data);
        }

        void zero(long offset, long length) {
            apply(offset, length, null);
        }

        private void apply(long offset, long length, byte[] data) {
            for (long position = offset; position < offset + length; ) {
                long block = position / BLOCK;
                int inBlock = (int) (position % BLOCK);
                int chunk = (int) Math.min(BLOCK - inBlock, offset + length - position);
                if (data != null) {
                    byte[] content = blocks.computeIfAbsent(block, b -> new byte[BLOCK]);
                    System.arraycopy(data, (int) (position - offset), content, inBlock, chunk);
                } else if (blocks.containsKey(block)) {
                    byte[] content = blocks.get(block);
                    Arrays.fill(content, inBlock, inBlock + chunk, (byte) 0);
                    if (Arrays.equals(content, new byte[BLOCK])) {
                        blocks.remove(block);
                    }
                }
                position += chunk;
            }
        }

        byte[] read(long offset, int length) {
            byte[] result = new byte[length];
            for (long position = offset; position < offset + length; ) {
                long block = position / BLOCK;
                int inBlock = (int) (position % BLOCK);
                int chunk = (int) Math.min(BLOCK - inBlock, offset + length - position);
                byte[] content = blocks.get(block);
                if (content != null) {
                    System.arraycopy(content, inBlock, result, (int) (position - offset), chunk);
                }
                position += chunk;
            }
            return result;
        }

        /** Blocks that may hold non-zero bytes. */
        List<Long> writtenBlocks() {
            return blocks.keySet().stream().sorted().toList();
        }
    }

    /** Reads [offset, offset + length) widened by a little on each side, and compares it with the model. */
    static void assertMatches(Volume volume, DiskModel model, long offset, int length, String context) {
        long from = Math.max(0, offset - 64);
        long to = Math.min(model.sizeBytes, offset + length + 64);
        assertSame(model.read(from, (int) (to - from)), read(volume, from, (int) (to - from)), from, context);
    }

    /**
     * Compares a whole disk with the model: small disks by one read; large ones block by block where the
     * model has data, and wherever the volume maps a block (so nothing else was written anywhere).
     */
    static void assertWholeDisk(Volume volume, DiskModel model, String context) {
        if (model.sizeBytes <= (8L << 20)) {
            assertSame(model.read(0, (int) model.sizeBytes), read(volume, 0, (int) model.sizeBytes), 0, context);
            return;
        }
        for (long block : model.writtenBlocks()) {
            long offset = block * BLOCK;
            int length = (int) Math.min(BLOCK, model.sizeBytes - offset);
            assertSame(model.read(offset, length), read(volume, offset, length), offset, context);
        }
        for (MappedRange range : volume.mapping(0, model.sizeBytes)) {
            if (!range.mapped()) {
                continue;
            }
            for (long offset = range.offsetBytes(); offset < range.offsetBytes() + range.lengthBytes(); offset += 1 << 20) {
                int length = (int) Math.min(1 << 20, range.offsetBytes() + range.lengthBytes() - offset);
                assertSame(model.read(offset, length), read(volume, offset, length), offset, context + " (mapped range " + range + ")");
            }
        }
    }

    static byte[] randomBytes(int seed, int length) {
        byte[] bytes = new byte[length];
        new Random(seed).nextBytes(bytes);
        return bytes;
    }

    static byte[] read(Volume volume, long offset, int length) {
        ByteBuffer buffer = ByteBuffer.allocate(length);
        volume.read(offset, buffer);
        if (buffer.hasRemaining()) {
            throw new AssertionError("read left " + buffer.remaining() + " bytes unfilled");
        }
        return buffer.array();
    }

    static byte[] readAll(Store store, String export) {
        try (Volume volume = store.openVolume(export)) {
            return read(volume, 0, Math.toIntExact(volume.sizeBytes()));
        }
    }

    /** Reads [offset, offset + length) widened by a little on each side, and compares it with the model. */
    static void assertMatches(Volume volume, byte[] model, long offset, int length, String context) {
        long from = Math.max(0, offset - 64);
        long to = Math.min(model.length, offset + length + 64);
        byte[] actual = read(volume, from, (int) (to - from));
        assertSame(Arrays.copyOfRange(model, (int) from, (int) to), actual, from, context);
    }

    /** Fails naming the first differing byte (as a disk offset, {@code base} being the offset of index 0). */
    static void assertSame(byte[] expected, byte[] actual, long base, String context) {
        int mismatch = Arrays.mismatch(expected, actual);
        if (mismatch >= 0) {
            String where = mismatch < Math.min(expected.length, actual.length)
                    ? "at disk offset " + (base + mismatch) + " (block " + (base + mismatch) / BLOCK + "): expected "
                    + expected[mismatch] + ", read " + actual[mismatch]
                    : "length " + actual.length + " instead of " + expected.length;
            throw new AssertionError(context + ": content differs from the model " + where);
        }
    }
}
