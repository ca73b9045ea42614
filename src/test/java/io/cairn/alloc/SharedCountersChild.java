package io.cairn.alloc;

import io.cairn.format.StoreGeometry;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.UUID;

/**
 * One process of {@link SharedCountersProcessTest}: {@code SharedCountersChild FILE UUID STORE_BLOCKS
 * EXTENT_BLOCKS OPS SEED OUT}. Attaches to a ready counter file, prints {@code READY}, waits for a line
 * on stdin, then runs OPS random operations against the other processes doing the same: allocations
 * from extent 1 (all processes compete for the same blocks), frees of its own blocks, and increments
 * and decrements of the "hot" blocks at the start of extent 2. Writes what it holds to OUT:
 * {@code held B} per block it allocated and still holds, {@code hot B DELTA} per hot block.
 */
public final class SharedCountersChild {

    static final int HOT_BLOCKS = 8;

    public static void main(String[] args) throws Exception {
        Path file = Path.of(args[0]);
        UUID storeId = UUID.fromString(args[1]);
        StoreGeometry geometry = new StoreGeometry(Long.parseLong(args[2]), Integer.parseInt(args[3]));
        long ops = Long.parseLong(args[4]);
        SplittableRandom random = new SplittableRandom(Long.parseLong(args[5]));
        Path out = Path.of(args[6]);
        try (SharedCounters counters = SharedCounters.attach(file, storeId, geometry, 1, built -> {
            throw new IllegalStateException("the parent builds the file; a child must find it ready");
        })) {
            System.out.println("READY");
            System.out.flush();
            new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)).readLine();
            long extentStart = geometry.extentStart(1);
            long extentEnd = extentStart + geometry.extentBlocks();
            long hotStart = geometry.extentStart(2) + geometry.reservedBlocks(2);
            List<Long> held = new ArrayList<>();
            long[] hotDelta = new long[HOT_BLOCKS];
            for (long op = 0; op < ops; op++) {
                int choice = random.nextInt(10);
                if (choice < 4) {
                    long start = extentStart + random.nextInt(geometry.extentBlocks());
                    long block = counters.allocate(extentStart, extentEnd, start);
                    if (block >= 0) {
                        held.add(block);
                    } else if (!held.isEmpty()) {
                        free(counters, held, random);
                    }
                } else if (choice < 6) {
                    if (!held.isEmpty()) {
                        free(counters, held, random);
                    }
                } else {
                    int hot = random.nextInt(HOT_BLOCKS);
                    if (choice < 8 || hotDelta[hot] == 0) {
                        counters.increment(hotStart + hot, 65535);
                        hotDelta[hot]++;
                    } else {
                        counters.decrement(hotStart + hot);
                        hotDelta[hot]--;
                    }
                }
            }
            StringBuilder report = new StringBuilder();
            for (long block : held) {
                report.append("held ").append(block).append('\n');
            }
            for (int hot = 0; hot < HOT_BLOCKS; hot++) {
                report.append("hot ").append(hotStart + hot).append(' ').append(hotDelta[hot]).append('\n');
            }
            Files.writeString(out, report);
        }
        System.out.println("DONE");
    }

    private static void free(SharedCounters counters, List<Long> held, SplittableRandom random) {
        int index = random.nextInt(held.size());
        long block = held.get(index);
        held.set(index, held.get(held.size() - 1));
        held.remove(held.size() - 1);
        int left = counters.decrement(block);
        if (left != 0) {
            throw new IllegalStateException("block " + block + " was allocated here, yet has " + left
                    + " other references: handed out twice");
        }
    }
}
