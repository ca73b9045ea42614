package io.cairn.alloc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.format.StoreGeometry;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Several processes map one counter file and allocate, free, increment and decrement at full speed
 * (seed 004): no block is ever handed out twice (a child fails at once if a block it freed had another
 * holder), and at the end every counter is exactly what the processes' own records add up to.
 */
class SharedCountersProcessTest {

    private static final int PROCESSES = 4;
    private static final long OPS_PER_PROCESS = 200_000;
    private static final StoreGeometry GEOMETRY = new StoreGeometry(4 * 2048, 2048);

    @Test
    void processesNeverShareAnAllocationAndCountsStayExact(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("store.live");
        UUID storeId = UUID.randomUUID();
        long seed = System.nanoTime();
        System.out.println("SharedCountersProcessTest seed " + seed);
        long hotStart = GEOMETRY.extentStart(2) + GEOMETRY.reservedBlocks(2);
        try (SharedCounters counters = SharedCounters.attach(file, storeId, GEOMETRY, 1, built -> {
            for (int extent = 0; extent < GEOMETRY.extentCount(); extent++) {
                for (int i = 0; i < GEOMETRY.reservedBlocks(extent); i++) {
                    built.set(GEOMETRY.extentStart(extent) + i, 1);
                }
                built.setFreeBlocks(extent, GEOMETRY.extentBlocks() - GEOMETRY.reservedBlocks(extent));
            }
            for (int hot = 0; hot < SharedCountersChild.HOT_BLOCKS; hot++) {
                built.set(hotStart + hot, 1);
            }
        })) {
            assertTrue(counters.rebuilt());
            List<Process> children = new ArrayList<>();
            List<Path> outputs = new ArrayList<>();
            String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
            for (int child = 0; child < PROCESSES; child++) {
                Path out = dir.resolve("child-" + child + ".txt");
                outputs.add(out);
                children.add(new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
                        "--enable-native-access=ALL-UNNAMED", SharedCountersChild.class.getName(), file.toString(),
                        storeId.toString(), Long.toString(GEOMETRY.storeBlocks()),
                        Integer.toString(GEOMETRY.extentBlocks()), Long.toString(OPS_PER_PROCESS),
                        Long.toString(seed + child), out.toString())
                        .redirectError(ProcessBuilder.Redirect.INHERIT).start());
            }
            List<BufferedReader> replies = new ArrayList<>();
            for (Process child : children) {
                BufferedReader reader = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
                assertEquals("READY", reader.readLine());
                replies.add(reader);
            }
            for (Process child : children) { // all start together, so they really compete
                OutputStream go = child.getOutputStream();
                go.write('\n');
                go.flush();
            }
            for (int child = 0; child < PROCESSES; child++) {
                assertTrue(children.get(child).waitFor(120, TimeUnit.SECONDS), "child " + child + " did not finish");
                assertEquals("DONE", replies.get(child).readLine(), "child " + child + " failed (its stderr is above)");
                assertEquals(0, children.get(child).exitValue());
            }
            assertEquals(1 + PROCESSES, counters.attachments());

            Set<Long> held = new HashSet<>();
            Map<Long, Long> hotDelta = new HashMap<>();
            for (Path out : outputs) {
                for (String line : Files.readAllLines(out)) {
                    String[] fields = line.split(" ");
                    if (fields[0].equals("held")) {
                        assertTrue(held.add(Long.parseLong(fields[1])), "block " + fields[1] + " held by two processes");
                    } else {
                        hotDelta.merge(Long.parseLong(fields[1]), Long.parseLong(fields[2]), Long::sum);
                    }
                }
            }
            long extentStart = GEOMETRY.extentStart(1);
            long free = 0;
            for (long block = extentStart + GEOMETRY.reservedBlocks(1); block < extentStart + GEOMETRY.extentBlocks(); block++) {
                int expected = held.contains(block) ? 1 : 0;
                assertEquals(expected, counters.count(block), "counter of block " + block);
                free += 1 - expected;
            }
            assertEquals(free, counters.freeBlocks(1), "free count of extent 1");
            for (Map.Entry<Long, Long> hot : hotDelta.entrySet()) {
                assertEquals(1 + hot.getValue(), counters.count(hot.getKey()), "hot block " + hot.getKey());
            }
        }
    }
}
