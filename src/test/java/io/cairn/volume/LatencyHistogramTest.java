package io.cairn.volume;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

class LatencyHistogramTest {

    @Test
    void everyValueLandsInABucketWhoseBoundIsAtMostOneThirtySecondAbove() {
        Random random = new Random(11);
        for (int i = 0; i < 200_000; i++) {
            long value = random.nextLong(1L << random.nextInt(1, 46));
            int bucket = LatencyHistogram.bucketOf(value);
            long bound = LatencyHistogram.upperBound(bucket);
            assertTrue(bound >= value, value + " above the bound " + bound + " of bucket " + bucket);
            if (value < 1L << 44) {
                assertTrue(bound - value <= value / 32, value + " in bucket " + bucket + " up to " + bound);
                assertTrue(bucket == 0 || LatencyHistogram.upperBound(bucket - 1) < value,
                        value + " belongs in an earlier bucket than " + bucket);
            }
        }
    }

    @Test
    void percentilesAreTheSortedSamplesWithinTheBucketError() {
        Random random = new Random(5);
        LatencyHistogram histogram = new LatencyHistogram();
        long[] samples = new long[10_001];
        for (int i = 0; i < samples.length; i++) {
            // Mostly tens of microseconds, a tail of milliseconds: the shape of snapshot latencies.
            samples[i] = random.nextInt(100) < 97 ? 20_000 + random.nextInt(30_000) : 1_000_000 + random.nextInt(50_000_000);
            histogram.record(samples[i]);
        }
        long[] sorted = samples.clone();
        Arrays.sort(sorted);
        LatencyHistogram.Summary summary = histogram.summary();
        assertEquals(samples.length, summary.count());
        assertEquals(sorted[sorted.length - 1], summary.maxNanos());
        assertWithin(sorted[(int) Math.ceil(0.50 * samples.length) - 1], summary.p50Nanos());
        assertWithin(sorted[(int) Math.ceil(0.90 * samples.length) - 1], summary.p90Nanos());
        assertWithin(sorted[(int) Math.ceil(0.99 * samples.length) - 1], summary.p99Nanos());
        assertWithin(sorted[(int) Math.ceil(0.999 * samples.length) - 1], summary.p999Nanos());
        assertEquals(Arrays.stream(samples).sum() / samples.length, summary.meanNanos());

        histogram.reset();
        assertEquals(new LatencyHistogram.Summary(0, 0, 0, 0, 0, 0, 0), histogram.summary());
    }

    private static void assertWithin(long exact, long reported) {
        assertTrue(reported >= exact && reported - exact <= exact / 32, "exact " + exact + ", reported " + reported);
    }
}
