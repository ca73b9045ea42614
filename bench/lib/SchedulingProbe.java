import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * The latency floor of the machine under load: every INTERVAL_US this process wakes and does WORK_US of
 * work (about what the median snapshot costs the server), timing how long that work took from start to end
 * and how late the wake-up was. Run beside a benchmark, it shows what any short operation measured in the
 * same minutes suffers from preemption alone: a p99 of a few milliseconds here means a 1 ms p99 is not
 * reachable for anything on this machine at this load. On SIGTERM writes the percentiles, in nanoseconds, as
 * JSON to OUTPUT.
 *
 *     java bench/lib/SchedulingProbe.java INTERVAL_US WORK_US OUTPUT
 */
public final class SchedulingProbe {

    private static final int MAX_SAMPLES = 1 << 20;

    public static void main(String[] args) throws InterruptedException {
        long intervalNanos = Long.parseLong(args[0]) * 1_000;
        long workNanos = Long.parseLong(args[1]) * 1_000;
        Path output = Path.of(args[2]);
        long[] work = new long[MAX_SAMPLES];
        long[] late = new long[MAX_SAMPLES];
        int[] count = {0};
        Runtime.getRuntime().addShutdownHook(new Thread(() -> write(output, work, late, count[0])));
        long next = System.nanoTime() + intervalNanos;
        long sink = 0;
        while (count[0] < MAX_SAMPLES) {
            long sleep = next - System.nanoTime();
            if (sleep > 0) {
                Thread.sleep(sleep / 1_000_000, (int) (sleep % 1_000_000));
            }
            long start = System.nanoTime();
            // Spin on arithmetic for the work's length of CPU time as measured unloaded: the time it takes here
            // beyond that is time the thread was not running.
            long end = start + workNanos;
            while (System.nanoTime() < end) {
                sink += sink * 31 + 7;
            }
            long done = System.nanoTime();
            synchronized (work) {
                work[count[0]] = done - start;
                late[count[0]] = Math.max(0, start - next);
                count[0]++;
            }
            next += intervalNanos;
            if (next < done) {
                next = done + intervalNanos; // a tick missed is skipped, as the snapshot schedule does
            }
        }
        if (sink == 42) {
            System.out.println(sink); // keeps the loop from being optimized away
        }
    }

    private static void write(Path output, long[] work, long[] late, int count) {
        long[] w;
        long[] l;
        synchronized (work) {
            w = Arrays.copyOf(work, count);
            l = Arrays.copyOf(late, count);
        }
        Arrays.sort(w);
        Arrays.sort(l);
        try {
            Files.writeString(output, "{\"work\": " + summary(w) + ", \"late\": " + summary(l) + "}\n");
        } catch (IOException e) {
            System.err.println("SchedulingProbe: cannot write " + output + ": " + e);
        }
    }

    private static String summary(long[] sorted) {
        if (sorted.length == 0) {
            return "{\"count\": 0}";
        }
        return "{\"count\": " + sorted.length + ", \"p50Nanos\": " + at(sorted, 0.50) + ", \"p90Nanos\": " + at(sorted, 0.90)
                + ", \"p99Nanos\": " + at(sorted, 0.99) + ", \"p999Nanos\": " + at(sorted, 0.999) + ", \"maxNanos\": "
                + sorted[sorted.length - 1] + "}";
    }

    private static long at(long[] sorted, double quantile) {
        return sorted[Math.min(sorted.length - 1, (int) Math.ceil(quantile * sorted.length) - 1)];
    }
}
