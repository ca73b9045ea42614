package io.cairn.cli;

import io.cairn.format.Pointer;
import io.cairn.tree.RootRef;
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

/** {@code cairn check}: verdicts, exit codes 0/6/7, repair of leaks, JSON. */
class CheckCommandTest {

    @TempDir
    Path directory;
    private Path store;

    @BeforeEach
    void makeStore() {
        store = directory.resolve("store.cairn");
        assertEquals(0, Cli.run("format", store, "--size", "64M", "--extent-size", "1M").exitCode());
        assertEquals(0, Cli.run("create", store, "disk", "--size", "8M").exitCode());
        try (Store opened = Store.openFile(store, StoreOptions.defaults());
             Volume volume = opened.openVolume("disk")) {
            volume.write(0, ByteBuffer.wrap(new byte[3 * 4096]).put(0, (byte) 9), false);
        }
        assertEquals(0, Cli.run("snapshot", store, "disk").exitCode());
    }

    @Test
    void aHealthyStoreIsClean() {
        Cli.Result result = Cli.run("check", store);
        assertEquals(0, result.exitCode(), result.out() + result.err());
        assertTrue(result.out().contains("clean"), result.out());
        Map<String, Object> json = JsonParser.parseObject(Cli.run("check", store, "--json").out());
        assertEquals("clean", json.get("verdict"));
    }

    @Test
    void leaksAreReportedThenRepaired() {
        long block = firstDataBlock();
        adjustCounter(block, +1);
        Cli.Result found = Cli.run("check", store);
        assertEquals(ExitCodes.CHECK_LEAKS, found.exitCode(), found.out() + found.err());
        assertTrue(found.out().contains("leak:") && found.out().contains(Long.toString(block)), found.out());

        Cli.Result repaired = Cli.run("check", store, "--repair", "--json");
        assertEquals(0, repaired.exitCode(), repaired.out() + repaired.err());
        Map<String, Object> json = JsonParser.parseObject(repaired.out());
        assertEquals("repaired", json.get("verdict"));
        assertEquals(1, ((java.util.List<?>) json.get("repairs")).size(), repaired.out());

        assertEquals(0, Cli.run("check", store).exitCode(), "clean after repair");
    }

    @Test
    void aCounterBelowTheTruthIsDamageAndIsNeverRepaired() {
        long block = firstDataBlock();
        adjustCounter(block, -1);
        Cli.Result found = Cli.run("check", store, "--repair");
        assertEquals(ExitCodes.CHECK_DAMAGE, found.exitCode(), found.out() + found.err());
        assertTrue(found.out().contains("damage:") && found.out().contains("DAMAGED"), found.out());
        assertEquals(ExitCodes.CHECK_DAMAGE, Cli.run("check", store).exitCode(), "repair left damage alone");
    }

    /** The first data block of the disk (shared with its snapshot, so its counter is 2). */
    private long firstDataBlock() {
        try (Store opened = Store.openFile(store, StoreOptions.defaults().withReadOnly(true))) {
            return opened.inspect(internals -> {
                RootRef root = internals.vdiRoots().values().iterator().next();
                return Pointer.blockOf(internals.trees().lookup(root.root(), root.height(), 0));
            });
        }
    }

    private void adjustCounter(long block, int delta) {
        try (Store opened = Store.openFile(store, StoreOptions.defaults())) {
            opened.inspect(internals -> {
                internals.space().repairCount(block, internals.space().count(block) + delta);
                return null;
            });
        }
    }
}
