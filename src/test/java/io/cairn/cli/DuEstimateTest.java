package io.cairn.cli;

import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code cairn du --estimate}: selections, JSON, and storing the computed sketches with --save. */
class DuEstimateTest {

    private static final int BLOCK = 4096;

    @TempDir
    Path directory;
    private Path store;

    /** disk: 4 blocks, snapshot 1; block 0 rewritten, snapshot 2; blocks 1 and 2 rewritten, snapshot 3. */
    @BeforeEach
    void makeStore() {
        store = directory.resolve("store.cairn");
        assertEquals(0, Cli.run("format", store, "--size", "64M", "--extent-size", "1M").exitCode());
        assertEquals(0, Cli.run("create", store, "disk", "--size", "8M").exitCode());
        write(0, 4);
        assertEquals(0, Cli.run("snapshot", store, "disk").exitCode());
        write(0, 1);
        assertEquals(0, Cli.run("snapshot", store, "disk").exitCode());
        write(1, 2);
        assertEquals(0, Cli.run("snapshot", store, "disk").exitCode());
    }

    @Test
    void estimatesAreExactOnASmallStore() {
        Map<String, Object> all = json("disk");
        assertEquals(3L, all.get("snapshots"));
        // 4 + 1 + 2 distinct blocks; the live disk holds the newest 4, so 3 would be freed.
        assertEquals(7L * BLOCK, estimate(all, "held").get("bytes"));
        assertEquals(3L * BLOCK, estimate(all, "freedIfDeleted").get("bytes"));
        assertEquals(true, estimate(all, "held").get("exact"));
        assertEquals(3L, all.get("computedNow"));

        Map<String, Object> first = json("disk@1");
        assertEquals(4L * BLOCK, estimate(first, "held").get("bytes"));
        assertEquals(1L * BLOCK, estimate(first, "freedIfDeleted").get("bytes"), "only its block 0 is its own");
        Map<String, Object> range = json("disk@1..2");
        assertEquals(5L * BLOCK, estimate(range, "held").get("bytes"));
        assertEquals(3L * BLOCK, estimate(range, "freedIfDeleted").get("bytes"));
        assertEquals(json(null).get("snapshots"), 3L);
    }

    @Test
    void textOutputAndSave() {
        Cli.Result text = Cli.run("du", "--estimate", store, "disk");
        assertEquals(0, text.exitCode(), text.err());
        assertTrue(text.out().contains("28 KiB (28672 bytes, exact)"), text.out());
        assertTrue(text.out().contains("freed if deleted"), text.out());

        Cli.Result saved = Cli.run("du", "--estimate", store, "disk", "--save");
        assertEquals(0, saved.exitCode(), saved.err());
        assertTrue(saved.out().contains("3 (3 stored)"), saved.out());
        assertEquals(0L, json("disk").get("computedNow"), "read from the stored sketches");
        Cli.Result check = Cli.run("check", store);
        assertEquals(0, check.exitCode(), check.out());
    }

    @Test
    void unknownSnapshotIsNotFound() {
        Cli.Result result = Cli.run("du", "--estimate", store, "disk@9");
        assertEquals(3, result.exitCode(), result.out() + result.err());
    }

    private Map<String, Object> json(String target) {
        Cli.Result result = target == null ? Cli.run("du", "--estimate", store, "--json")
                : Cli.run("du", "--estimate", store, target, "--json");
        assertEquals(0, result.exitCode(), result.err());
        return JsonParser.parseObject(result.out());
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> estimate(Map<String, Object> report, String name) {
        return (Map<String, Object>) report.get(name);
    }

    private void write(int firstBlock, int blocks) {
        try (Store opened = Store.openFile(store, StoreOptions.defaults());
             Volume volume = opened.openVolume("disk")) {
            volume.write((long) firstBlock * BLOCK, ByteBuffer.wrap(new byte[blocks * BLOCK]).put(0, (byte) 7), false);
        }
    }
}
