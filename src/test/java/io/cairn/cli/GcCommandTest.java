package io.cairn.cli;

import io.cairn.alloc.SpaceMap;
import io.cairn.format.Pointer;
import io.cairn.tree.RootRef;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code cairn gc}: on an offline store, through a running server's admin socket, JSON, exit 0 and 7. */
class GcCommandTest {

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
    void aStoreWithoutLeaksHasNoGarbage() {
        Cli.Result result = Cli.run("gc", store);
        assertEquals(0, result.exitCode(), result.toString());
        assertTrue(result.out().contains("no garbage") && result.out().contains("GB/s"), result.out());
    }

    @Test
    void leaksAreCollectedOffline() {
        try (Store opened = Store.openFile(store, StoreOptions.defaults())) {
            leak(opened);
        }
        assertEquals(ExitCodes.CHECK_LEAKS, Cli.run("check", store).exitCode());
        Cli.Result result = Cli.run("gc", store, "--json");
        assertEquals(0, result.exitCode(), result.toString());
        Map<String, Object> json = JsonParser.parseObject(result.out());
        assertEquals("collected", json.get("verdict"));
        assertEquals(2L, json.get("leaks"));
        assertEquals(2L, json.get("referencesRemoved"));
        assertEquals(4096L, json.get("bytesFreed"), "the unlinked block");
        assertEquals(64L << 20, json.get("storeBytes"));
        assertTrue((Long) json.get("bytesPerSecond") > 0, result.out());
        assertEquals(0, Cli.run("check", store).exitCode(), "clean after gc");
    }

    @Test
    void damageIsReportedWithExitSevenAndNothingChanges() {
        long block = diskRoot();
        try (Store opened = Store.openFile(store, StoreOptions.defaults())) {
            opened.inspect(internals -> {
                internals.space().repairCount(block, internals.space().count(block) - 1);
                return internals.space().allocate(SpaceMap.Purpose.DATA);
            });
        }
        Cli.Result result = Cli.run("gc", store);
        assertEquals(ExitCodes.CHECK_DAMAGE, result.exitCode(), result.toString());
        assertTrue(result.out().contains("DAMAGED") && result.out().contains("COUNT_TOO_LOW"), result.out());
        Cli.Result check = Cli.run("check", store, "--json");
        assertEquals(ExitCodes.CHECK_DAMAGE, check.exitCode());
        assertEquals(1, ((java.util.List<?>) JsonParser.parseObject(check.out()).get("leaks")).size(), "the leak is still there");
    }

    /**
     * A server holds the store and a client keeps writing; {@code cairn gc} on the command line is sent
     * to the server, which collects while the writes go on.
     */
    @Test
    void gcRunsInsideARunningServerWhileAClientWrites() throws Exception {
        Store served = Store.openFile(store, StoreOptions.defaults());
        AdminServer admin = new AdminServer(AdminEndpoint.socketFor(store));
        LiveStores.register(store, served);
        AtomicBoolean stop = new AtomicBoolean();
        byte[] last = new byte[4096];
        Thread writer = Thread.ofPlatform().start(() -> {
            try (Volume volume = served.openVolume("disk")) {
                for (int round = 0; !stop.get(); round++) {
                    java.util.Arrays.fill(last, (byte) round);
                    volume.write((round % 64) * 4096L, ByteBuffer.wrap(last.clone()), false);
                    if (round % 16 == 0) {
                        served.snapshot("disk", null);
                    }
                }
            }
        });
        try {
            leak(served);
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            int exit = AdminForwarding.forwardIfServed(new String[] {"gc", store.toString(), "--json"},
                    new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8))
                    .orElseThrow(() -> new AssertionError("the server did not answer"));
            assertEquals(0, exit, out + "\n" + err);
            Map<String, Object> json = JsonParser.parseObject(out.toString(StandardCharsets.UTF_8));
            assertEquals("collected", json.get("verdict"));
            assertEquals(2L, json.get("leaks"));
        } finally {
            stop.set(true);
            writer.join();
            LiveStores.unregister(store);
            admin.close();
        }
        ByteBuffer read = ByteBuffer.allocate(4096);
        try (Volume volume = served.openVolume("disk")) {
            volume.read(0, read);
        }
        served.close();
        assertEquals(0, Cli.run("check", store).exitCode(), "clean after gc, the writes and a clean close");
        try (Store reopened = Store.openFile(store, StoreOptions.defaults().withReadOnly(true));
             Volume volume = reopened.openVolume("disk")) {
            ByteBuffer again = ByteBuffer.allocate(4096);
            volume.read(0, again);
            assertArrayEquals(read.array(), again.array(), "what the server held is what was stored");
        }
    }

    /** Two leaks: the first data block's counter raised by one, and a data block allocated and linked nowhere. */
    private void leak(Store opened) {
        long block = opened.inspect(internals -> {
            RootRef root = internals.vdiRoots().values().iterator().next();
            return Pointer.blockOf(internals.trees().lookup(root.root(), root.height(), 0));
        });
        opened.inspect(internals -> {
            internals.space().repairCount(block, internals.space().count(block) + 1);
            return internals.space().allocate(SpaceMap.Purpose.DATA);
        });
    }

    /** The disk's root block, shared with its snapshot (counter 2). */
    private long diskRoot() {
        try (Store opened = Store.openFile(store, StoreOptions.defaults().withReadOnly(true))) {
            return opened.inspect(internals -> internals.vdiRoots().values().iterator().next().root());
        }
    }
}
