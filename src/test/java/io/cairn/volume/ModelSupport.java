package io.cairn.volume;

import io.cairn.format.Layout;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.Tuple;

import java.nio.ByteBuffer;
import java.util.Arrays;
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
     * Ranges of a disk of {@code diskBytes}: offsets anywhere, or close to block boundaries of a few
     * hot blocks (so ranges overlap, straddle blocks, hit the leaf-node boundary at block 512 and the
     * disk's end); lengths from 0 to a few blocks, sometimes whole blocks.
     */
    static Arbitrary<Range> ranges(long diskBytes) {
        long blocks = (diskBytes + BLOCK - 1) / BLOCK;
        Arbitrary<Long> hotBlock = Arbitraries.frequencyOf(
                Tuple.of(4, Arbitraries.longs().between(0, Math.min(8, blocks))),
                Tuple.of(2, Arbitraries.longs().between(Math.max(0, Math.min(508, blocks - 8)), Math.min(516, blocks))),
                Tuple.of(2, Arbitraries.longs().between(Math.max(0, blocks - 4), blocks)));
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
