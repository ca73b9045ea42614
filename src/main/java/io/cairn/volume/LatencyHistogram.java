package io.cairn.volume;

/**
 * Counts latencies in log-linear buckets, so percentiles of millions of samples cost a fixed 10 KiB.
 *
 * <p>Invariants.
 * <ol>
 *   <li>A sample of v nanoseconds lands in the bucket whose range holds v; a bucket spans 1/32 of its
 *       power of two, so a percentile read from it is at most 1/32 (3.1%) above the true sample. Values
 *       below 32 ns have exact buckets; values from 2^44 ns (about 4.9 hours) on share the last bucket.</li>
 *   <li>The maximum is exact (kept apart from the buckets).</li>
 *   <li>Threads: any thread records; {@link #summary()} and {@link #reset()} may run meanwhile. All three
 *       hold this object's monitor for a few array operations (records come at most thousands per second).</li>
 * </ol>
 */
public final class LatencyHistogram {

    private static final int SUB_BUCKET_BITS = 5;
    private static final int SUB_BUCKETS = 1 << SUB_BUCKET_BITS;
    private static final int MAX_EXPONENT = 44;
    /** Buckets of exponents 5 to 43, 32 each, after the 32 exact ones, and one for everything from 2^44 on. */
    private static final int BUCKETS = (MAX_EXPONENT - SUB_BUCKET_BITS + 1) * SUB_BUCKETS + 1;

    private final long[] counts = new long[BUCKETS];
    private long total;
    private long maxNanos;
    private long sumNanos;

    /** Percentiles (upper bounds of their buckets, at most 3.1% high) and exact count and maximum. */
    public record Summary(long count, long p50Nanos, long p90Nanos, long p99Nanos, long p999Nanos, long maxNanos,
                          long meanNanos) {
    }

    public synchronized void record(long nanos) {
        long value = Math.max(0, nanos);
        counts[bucketOf(value)]++;
        total++;
        sumNanos += value;
        maxNanos = Math.max(maxNanos, value);
    }

    public synchronized Summary summary() {
        if (total == 0) {
            return new Summary(0, 0, 0, 0, 0, 0, 0);
        }
        return new Summary(total, percentile(0.50), percentile(0.90), percentile(0.99), percentile(0.999), maxNanos,
                sumNanos / total);
    }

    public synchronized void reset() {
        java.util.Arrays.fill(counts, 0);
        total = 0;
        maxNanos = 0;
        sumNanos = 0;
    }

    /** The smallest bucket bound below which at least {@code fraction} of the samples lie, capped at the maximum. */
    private long percentile(double fraction) {
        long rank = Math.max(1, (long) Math.ceil(fraction * total));
        long seen = 0;
        for (int bucket = 0; bucket < BUCKETS; bucket++) {
            seen += counts[bucket];
            if (seen >= rank) {
                return Math.min(upperBound(bucket), maxNanos);
            }
        }
        return maxNanos;
    }

    static int bucketOf(long nanos) {
        if (nanos < SUB_BUCKETS) {
            return (int) nanos;
        }
        if (nanos >= 1L << MAX_EXPONENT) {
            return BUCKETS - 1;
        }
        int exponent = 63 - Long.numberOfLeadingZeros(nanos);
        int sub = (int) (nanos >>> (exponent - SUB_BUCKET_BITS)) - SUB_BUCKETS;
        return (exponent - SUB_BUCKET_BITS + 1) * SUB_BUCKETS + sub;
    }

    /** The largest value that lands in {@code bucket}. */
    static long upperBound(int bucket) {
        if (bucket < SUB_BUCKETS) {
            return bucket;
        }
        if (bucket == BUCKETS - 1) {
            return Long.MAX_VALUE;
        }
        int exponent = bucket / SUB_BUCKETS + SUB_BUCKET_BITS - 1;
        long sub = bucket % SUB_BUCKETS + SUB_BUCKETS;
        return ((sub + 1) << (exponent - SUB_BUCKET_BITS)) - 1;
    }
}
