package io.cairn.cli;

import static io.cairn.cli.Served.cairn;
import static io.cairn.cli.Served.cairnOk;
import static io.cairn.cli.Served.hasTool;
import static io.cairn.cli.Served.tool;
import static io.cairn.cli.Served.toolOk;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;
import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The main job as a user runs it: {@code bin/cairn serve} as a process, real NBD clients against it,
 * and every other command given the same STORE carried out by the running server.
 */
@Timeout(value = 110, unit = TimeUnit.SECONDS)
class ServeIT {

    private static final long TOOL_TIMEOUT_SECONDS = 60;
    private static final long MIB = 1 << 20;

    @TempDir
    Path directory;

    @Test
    @SuppressWarnings("unchecked")
    void firstRunServesDisk0AndTheCliWorksOnTheLiveStoreUntilSigterm() throws Exception {
        assumeTrue(hasTool("nbdinfo") && hasTool("qemu-img") && hasTool("qemu-io"), "needs nbdinfo, qemu-img and qemu-io");
        String store = "cairn-data/store.cairn";
        Path socket;
        try (Served server = Served.start(directory, null)) {
            // First run: the default store with a 10 GiB disk0, and the URL to use.
            assertTrue(Files.isRegularFile(directory.resolve(store)), "the default store was created");
            String disk0 = server.uri("disk0");
            assertTrue(server.awaitOutput(disk0, Duration.ofSeconds(10)), server::describe);
            assertEquals("10737418240", toolOk(directory, TOOL_TIMEOUT_SECONDS, "nbdinfo", "--size", disk0).out().strip());
            assertTrue(toolOk(directory, TOOL_TIMEOUT_SECONDS, "qemu-img", "info", "--output=json", disk0).out()
                    .contains("\"virtual-size\": 10737418240"));
            socket = AdminEndpoint.socketFor(directory.resolve(store));
            assertTrue(Files.exists(socket), "admin socket " + socket);

            // Listing and creating while serving: forwarded to the server (the store is locked by it).
            Map<String, Object> listed = JsonParser.parseObject(cairnOk(directory, "list", store, "--json").out());
            assertEquals(List.of("disk0"), names((List<Map<String, Object>>) listed.get("disks")));
            cairnOk(directory, "create", store, "vm", "--size", "64M");
            assertTrue(server.log().contains("admin: cairn create " + directory.resolve(store).toRealPath()), server::describe);
            String vm = server.uri("vm");
            assertEquals(String.valueOf(64 * MIB), toolOk(directory, TOOL_TIMEOUT_SECONDS, "nbdinfo", "--size", vm).out().strip(),
                    "a disk created through the CLI is exported at once");

            // A snapshot holds what was written before it, read-only, while the disk moves on.
            qemuIo(vm, false, "write -P 0x5a 0 1M", "write -P 0x3c 3M 64k");
            Served.Result snapshot = cairnOk(directory, "snapshot", store, "vm", "--label", "base");
            assertEquals("1", snapshot.out().strip(), snapshot::toString);
            qemuIo(vm, false, "write -P 0xa5 0 512k", "write -z 3M 64k");
            String base = server.uri("vm@base");
            assertTrue(toolOk(directory, TOOL_TIMEOUT_SECONDS, "nbdinfo", "--json", base).out().contains("\"is_read_only\": true"));
            qemuIo(base, true, "read -P 0x5a 0 1M", "read -P 0x3c 3M 64k", "read -P 0 1M 2M");
            qemuIo(vm, true, "read -P 0xa5 0 512k", "read -P 0x5a 512k 512k", "read -P 0 3M 64k");
            Served.Result refused = tool(directory, TOOL_TIMEOUT_SECONDS, "qemu-io", "-f", "raw", "-c", "write -P 1 0 512", base);
            assertNotEquals(0, refused.exitCode(), refused::toString);
            qemuIo(base, true, "read -P 0x5a 0 512");

            // A clone of the snapshot, through the CLI, is a writable disk with the snapshot's data.
            cairnOk(directory, "create", store, "vmclone", "--from", "vm@base");
            qemuIo(server.uri("vmclone"), false, "read -P 0x5a 0 1M", "write -P 0x77 0 4k", "read -P 0x77 0 4k");
            qemuIo(base, true, "read -P 0x5a 0 4k");

            Map<String, Object> snapshots = JsonParser.parseObject(cairnOk(directory, "snapshots", store, "vm", "--json").out());
            List<Map<String, Object>> taken = (List<Map<String, Object>>) snapshots.get("snapshots");
            assertEquals(1, taken.size(), snapshots::toString);
            assertEquals("base", taken.getFirst().get("label"));
            String tree = cairnOk(directory, "tree", store).out();
            assertTrue(tree.contains("vm") && tree.contains("base") && tree.contains("vmclone"), tree);

            // Delete through the CLI: the export goes at once.
            cairnOk(directory, "create", store, "scratch", "--size", "1M");
            toolOk(directory, TOOL_TIMEOUT_SECONDS, "nbdinfo", "--size", server.uri("scratch"));
            cairnOk(directory, "delete", store, "scratch");
            assertNotEquals(0, tool(directory, TOOL_TIMEOUT_SECONDS, "nbdinfo", "--size", server.uri("scratch")).exitCode());
            Served.Result deleted = cairn(directory, "delete", store, "vm");
            assertEquals(ExitCodes.CONFLICT, deleted.exitCode(), "a disk with snapshots is refused: " + deleted);

            // Snapshot latency: the CLI's wall time (a JVM start each) against the server's own time.
            List<Long> wall = new ArrayList<>();
            for (int i = 0; i < 5; i++) {
                wall.add(cairnOk(directory, "snapshot", store, "disk0", "--label", "t" + i).millis());
            }
            List<Double> inServer = server.adminMillis("snapshot " + directory.resolve(store).toRealPath() + " disk0");
            assertEquals(5, inServer.size(), server::describe);
            System.out.printf("ServeIT: snapshot latency, CLI wall time (ms): %s; in the server (ms): %s%n", wall, inServer);

            // SIGTERM: an orderly stop, exit 0, the admin socket removed, the store committed and unlocked.
            int exit = server.signal("TERM", Duration.ofSeconds(60));
            assertEquals(0, exit, server::describe);
            assertFalse(Files.exists(socket), "admin socket removed on stop");
            assertTrue(server.log().contains("committed and closed"), server::describe);
        }
        Map<String, Object> offline = JsonParser.parseObject(cairnOk(directory, "list", store, "--json").out());
        assertEquals(List.of("disk0", "vm", "vmclone"), names((List<Map<String, Object>>) offline.get("disks")));
        String snapshots = cairnOk(directory, "snapshots", store, "disk0").out();
        for (int i = 0; i < 5; i++) {
            assertTrue(snapshots.contains("t" + i), snapshots);
        }
        // And it serves again, with everything.
        try (Served again = Served.start(directory, store)) {
            qemuIo(again.uri("vm@base"), true, "read -P 0x5a 0 1M");
            qemuIo(again.uri("vmclone"), true, "read -P 0x77 0 4k", "read -P 0x5a 4k 1020k");
            assertEquals(0, again.signal("INT", Duration.ofSeconds(60)), again::describe);
        }
    }

    /**
     * Twenty snapshots through the CLI while qemu-io sweeps one region of disk0 with a new byte per
     * pass, one write at a time, and fio writes another with crc32c headers. A snapshot waits for the
     * writes in flight, so region A of each must be exactly the state after some number of writes:
     * whole chunks of the new pass, then whole chunks of the previous one. Each snapshot reads the same
     * after all the later writes, fio verifies the live disk, and exports that must match do.
     */
    @Test
    void snapshotsUnderLoadAreConsistentAndStayUnchanged() throws Exception {
        assumeTrue(hasTool("qemu-io") && hasTool("qemu-img") && hasTool("fio"), "needs qemu-io, qemu-img and fio");
        final int chunk = 16 << 10;
        final int regionA = (int) (16 * MIB);
        final int chunks = regionA / chunk;
        final long fioOffset = 16 * MIB;
        final int readBytes = (int) (32 * MIB);
        final int snapshotCount = 20;
        Path storeFile = directory.resolve("load.cairn");
        try (Store created = Store.formatFile(storeFile, 1L << 30, io.cairn.format.Layout.defaultExtentBlocks(1L << 30), StoreOptions.defaults())) {
            created.create("disk0", 64 * MIB);
        }
        String store = storeFile.toString();
        try (Served server = Served.start(directory, store)) {
            String disk0 = server.uri("disk0");
            AtomicBoolean stop = new AtomicBoolean();
            AtomicReference<Throwable> sweepFailure = new AtomicReference<>();
            AtomicLong writes = new AtomicLong();
            // Writer A: qemu-io, in batches of a quarter pass, each write completing before the next.
            Thread sweeper = Thread.ofPlatform().name("qemu-io sweep").start(() -> {
                try {
                    for (long next = 0; !stop.get(); ) {
                        List<String> command = new ArrayList<>(List.of("qemu-io", "-f", "raw"));
                        for (int i = 0; i < chunks / 4; i++, next++) {
                            int pattern = (int) (next / chunks % 255) + 1;
                            command.addAll(List.of("-c", "write -q -P " + pattern + " " + (next % chunks) * chunk + " " + chunk));
                        }
                        command.add(disk0);
                        Served.Result batch = toolOk(directory, TOOL_TIMEOUT_SECONDS, command.toArray(String[]::new));
                        if (batch.out().contains("failed") || batch.err().contains("failed")) {
                            throw new AssertionError(batch.toString());
                        }
                        writes.set(next);
                    }
                } catch (Throwable e) {
                    sweepFailure.set(e);
                }
            });
            // Writer B: fio, rate-limited so that it writes throughout, then verifies the live disk.
            Path fioLog = directory.resolve("fio.log");
            Process fio = new ProcessBuilder("fio", "--name=load", "--ioengine=nbd", "--uri=" + disk0, "--rw=randwrite",
                    "--bs=4k", "--offset=" + fioOffset, "--size=16M", "--iodepth=4", "--rate_iops=250",
                    "--verify=crc32c", "--do_verify=1", "--verify_fatal=1", "--verify_state_save=0", "--randseed=42",
                    "--output-format=terse", "--terse-version=3")
                    .directory(directory.toFile()).redirectErrorStream(true).redirectOutput(fioLog.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
            List<byte[]> digests = new ArrayList<>();
            List<Long> prefixes = new ArrayList<>();
            List<Long> wall = new ArrayList<>();
            try {
                for (int i = 0; i < snapshotCount; i++) {
                    wall.add(cairnOk(directory, "snapshot", store, "disk0", "--label", "s" + i).millis());
                    byte[] image = read(server.port(), "disk0@s" + i, readBytes);
                    prefixes.add(sweepPrefix(Arrays.copyOf(image, regionA), chunk, "s" + i));
                    digests.add(sha256(image));
                }
            } finally {
                stop.set(true);
                sweeper.join(Duration.ofSeconds(TOOL_TIMEOUT_SECONDS));
                if (!fio.waitFor(TOOL_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                    fio.destroyForcibly();
                    fio.waitFor(30, TimeUnit.SECONDS);
                }
            }
            if (sweepFailure.get() != null) {
                throw new AssertionError("qemu-io writer failed", sweepFailure.get());
            }
            String fioText = Files.readString(fioLog);
            assertEquals(0, fio.exitValue(), fioText);
            String[] fields = fioText.strip().lines().reduce((first, second) -> second).orElseThrow().split(";");
            assertEquals("0", fields[4], "fio error field (its verify of the live disk):\n" + fioText);
            assertTrue(writes.get() > chunks / 2, "the sweep made progress: " + writes.get());

            // Each snapshot still reads as it did when it was taken, after all the writes that followed.
            for (int i = 0; i < snapshotCount; i++) {
                assertEquals(HexFormat.of().formatHex(digests.get(i)), HexFormat.of().formatHex(
                        sha256(read(server.port(), "disk0@s" + i, readBytes))), "snapshot s" + i + " changed");
            }
            // Pass bytes repeat after 255 passes; this run makes far fewer, so prefixes only grow.
            assertTrue(writes.get() < 250L * chunks, "too many passes to order the snapshots: " + writes.get());
            for (int i = 1; i < snapshotCount; i++) {
                assertTrue(prefixes.get(i) >= prefixes.get(i - 1), "later snapshots hold more writes: " + prefixes);
            }
            // With the writers stopped, two snapshots and the disk must match; the first and last differ.
            // (qemu-img compare is not used on the live disk: it reports the runs it shares with
            // snapshots as holes without the zero flag, which qemu takes for unallocated, i.e. zeros.)
            cairnOk(directory, "snapshot", store, "disk0", "--label", "quiet1");
            cairnOk(directory, "snapshot", store, "disk0", "--label", "quiet2");
            toolOk(directory, TOOL_TIMEOUT_SECONDS, "qemu-img", "compare", "-f", "raw", "-F", "raw",
                    server.uri("disk0@quiet1"), server.uri("disk0@quiet2"));
            assertArrayEquals(read(server.port(), "disk0@quiet2", (int) (64 * MIB)), read(server.port(), "disk0", (int) (64 * MIB)),
                    "the disk and a snapshot taken after the last write");
            Served.Result differ = tool(directory, TOOL_TIMEOUT_SECONDS, "qemu-img", "compare", "-f", "raw", "-F", "raw",
                    server.uri("disk0@s0"), server.uri("disk0@quiet2"));
            assertEquals(1, differ.exitCode(), "qemu-img compare tells different images apart: " + differ);
            sweepPrefix(Arrays.copyOf(read(server.port(), "disk0", regionA), regionA), chunk, "disk0 after the writers");

            List<Double> inServer = server.adminMillis("snapshot " + storeFile.toRealPath() + " disk0 --label s");
            System.out.printf("ServeIT: %d snapshots under load (%d qemu-io writes, fio at 250 IOPS); CLI wall ms: %s;"
                    + " in the server ms: %s; sweep prefixes: %s%n", snapshotCount, writes.get(), wall, inServer, prefixes);
            assertEquals(0, server.signal("TERM", Duration.ofSeconds(60)), server::describe);
        }
    }

    /**
     * The state of region A after k sequential chunk writes, or an assertion error: every chunk filled
     * with one byte, the chunks before position j with pattern p+1 and the rest with p (0 before the
     * first pass). Returns k.
     */
    private static long sweepPrefix(byte[] region, int chunk, String what) {
        int chunks = region.length / chunk;
        int[] values = new int[chunks];
        for (int c = 0; c < chunks; c++) {
            int value = region[c * chunk] & 0xff;
            for (int b = c * chunk; b < (c + 1) * chunk; b++) {
                if ((region[b] & 0xff) != value) {
                    throw new AssertionError(what + ": chunk " + c + " is torn at byte " + b + " (" + value + " then "
                            + (region[b] & 0xff) + ")");
                }
            }
            values[c] = value;
        }
        int j = 0;
        while (j < chunks && values[j] == values[0]) {
            j++;
        }
        for (int c = j; c < chunks; c++) {
            if (values[c] != values[j]) {
                throw new AssertionError(what + ": not a state the sequential writer went through: chunk " + c + " has "
                        + values[c] + " after " + j + " chunks of " + values[0] + " and then " + values[j]);
            }
        }
        if (j == chunks) {
            return values[0] == 0 ? 0 : (long) values[0] * chunks; // a whole pass (byte p+1 = pass p done)
        }
        int newer = values[0];
        int older = values[j];
        int expectedNewer = older == 0 ? 1 : older % 255 + 1;
        if (newer != expectedNewer) {
            throw new AssertionError(what + ": chunks of pass byte " + newer + " before chunks of " + older);
        }
        return (long) (newer - 1) * chunks + j;
    }

    @Test
    void relativeFileArgumentsAreTheClientsAndStopByInterruptIsClean() throws Exception {
        Path serverDirectory = Files.createDirectories(directory.resolve("server"));
        Path clientDirectory = Files.createDirectories(directory.resolve("client/work"));
        try (Store created = Store.formatFile(serverDirectory.resolve("store.cairn"), 256L << 20,
                io.cairn.format.Layout.defaultExtentBlocks(256L << 20), StoreOptions.defaults())) {
            created.create("disk0", MIB);
        }
        byte[] image = new byte[(int) (4 * MIB)];
        SplittableRandom random = new SplittableRandom(7);
        for (int i = 0; i < image.length / 2; i++) {
            image[i] = (byte) random.nextInt(); // data, then a hole
        }
        Files.write(clientDirectory.resolve("in.raw"), image);
        String store = "../../server/store.cairn"; // as the client sees it
        try (Served server = Served.start(serverDirectory, "store.cairn")) {
            Served.Result imported = cairnOk(clientDirectory, "import", store, "imported", "in.raw");
            assertTrue(server.log().contains("admin: cairn import " + serverDirectory.resolve("store.cairn").toRealPath()
                    + " imported " + clientDirectory.resolve("in.raw").toRealPath()), server::describe);
            Files.createDirectories(clientDirectory.resolve("sub"));
            cairnOk(clientDirectory, "export", store, "imported", "sub/out.raw");
            assertArrayEquals(image, Files.readAllBytes(clientDirectory.resolve("sub/out.raw")), imported::toString);
            assertFalse(Files.exists(serverDirectory.resolve("sub")), "nothing written in the server's directory");
            assertArrayEquals(image, read(server.port(), "imported", image.length));
            // A relative path that does not exist for the client is not found, whatever the server sees.
            Served.Result missing = cairn(clientDirectory, "import", store, "other", "store.cairn");
            assertEquals(ExitCodes.NOT_FOUND, missing.exitCode(), missing::toString);
            assertEquals(0, server.signal("INT", Duration.ofSeconds(60)), server::describe);
        }
        String listed = cairnOk(clientDirectory, "list", store).out();
        assertTrue(listed.contains("imported"), listed);
    }

    @Test
    void inetdModeSpeaksNbdOnStdoutOnlyAndWorksWithSocketActivation() throws Exception {
        Path storeFile = directory.resolve("inetd.cairn");
        byte[] content = new byte[(int) MIB];
        new SplittableRandom(99).nextBytes(content);
        try (Store created = Store.formatFile(storeFile, 256L << 20, io.cairn.format.Layout.defaultExtentBlocks(256L << 20),
                StoreOptions.defaults())) {
            created.create("d", 2 * MIB);
            try (Volume volume = created.openVolume("d")) {
                volume.write(0, ByteBuffer.wrap(content), false);
            }
        }
        // Pipes: stdout must carry nothing but NBD, however much the server logs (to stderr).
        Path log = directory.resolve("inetd.log");
        Process process = new ProcessBuilder(Served.LAUNCHER.toString(), "serve", storeFile.toString(), "--inetd")
                .directory(directory.toFile()).redirectError(log.toFile()).start();
        // A hung session must not hang the test: the pipes close when the process is killed.
        Thread watchdog = Thread.ofVirtual().start(() -> {
            try {
                if (!process.waitFor(90, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                }
            } catch (InterruptedException stopped) {
                // the test is done with the process
            }
        });
        try {
            PlainNbdClient client = PlainNbdClient.over(Channels.newChannel(process.getInputStream()),
                    PlainNbdClient.flushing(process.getOutputStream()), "d");
            assertEquals(2 * MIB, client.sizeBytes());
            assertArrayEquals(content, client.read(0, content.length));
            byte[] written = new byte[4096];
            Arrays.fill(written, (byte) 0x42);
            client.write(MIB + 8192, written, false);
            client.flush();
            assertArrayEquals(written, client.read(MIB + 8192, written.length));
            client.disconnect();
            byte[] trailing = process.getInputStream().readAllBytes();
            assertEquals(0, trailing.length, "stdout after the session: " + new String(trailing));
            assertTrue(process.waitFor(60, TimeUnit.SECONDS), "serve --inetd ends with its session");
            assertEquals(0, process.exitValue(), Files.readString(log));
        } finally {
            watchdog.interrupt();
            process.destroyForcibly();
            process.waitFor(30, TimeUnit.SECONDS);
        }
        String logged = Files.readString(log);
        assertTrue(logged.contains("stdio: connected") && logged.contains("committed and closed"), logged);

        // Socket activation, as libnbd spawns a server: nbdinfo -- [ bin/cairn serve STORE --inetd ].
        assumeTrue(hasTool("nbdinfo"), "nbdinfo not installed");
        assertEquals(String.valueOf(2 * MIB), toolOk(directory, TOOL_TIMEOUT_SECONDS, "nbdinfo", "--size", "--",
                "[", Served.LAUNCHER.toString(), "serve", storeFile.toString(), "--inetd", "]").out().strip());
        try (Store reopened = Store.openFile(storeFile, StoreOptions.defaults().withReadOnly(true));
             Volume volume = reopened.openVolume("d")) {
            ByteBuffer back = ByteBuffer.allocate(4096);
            volume.read(MIB + 8192, back);
            byte[] expected = new byte[4096];
            Arrays.fill(expected, (byte) 0x42);
            assertArrayEquals(expected, back.array(), "the flushed write is in the store");
        }
    }

    // ------------------------------------------------------------------ helpers

    private void qemuIo(String uri, boolean readOnly, String... commands) throws IOException, InterruptedException {
        List<String> command = Served.qemuIoCommand(uri, readOnly, commands);
        Served.Result result = toolOk(directory, TOOL_TIMEOUT_SECONDS, command.toArray(String[]::new));
        String output = result.out() + result.err();
        assertFalse(output.contains("failed") || output.contains("error"), String.join(" ", command) + ":\n" + output);
    }

    /** Reads the first {@code length} bytes of an export with the plain client, in 1 MiB requests. */
    private static byte[] read(int port, String export, int length) throws IOException {
        byte[] data = new byte[length];
        try (PlainNbdClient client = PlainNbdClient.connect(port, export)) {
            for (int offset = 0; offset < length; offset += (int) MIB) {
                int n = (int) Math.min(MIB, length - offset);
                System.arraycopy(client.read(offset, n), 0, data, offset, n);
            }
        }
        return data;
    }

    private static byte[] sha256(byte[] data) throws Exception {
        return MessageDigest.getInstance("SHA-256").digest(data);
    }

    private static List<String> names(List<Map<String, Object>> disks) {
        return disks.stream().map(disk -> (String) disk.get("name")).toList();
    }
}
