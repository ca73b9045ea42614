package io.cairn.cli;

import static io.cairn.cli.Served.cairnOk;
import static io.cairn.cli.Served.hasTool;
import static io.cairn.cli.Served.tool;
import static io.cairn.cli.Served.toolOk;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.cairn.format.Layout;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.StandardOpenOption;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real file system on a served disk: ext4 made and mounted through nbdfuse and a loop device, a
 * snapshot and a clone taken through the CLI while files are being written, and the clone checked
 * with e2fsck and mounted to find the files synced before the snapshot.
 */
@Timeout(value = 170, unit = TimeUnit.SECONDS)
class Ext4IT {

    private static final long TIMEOUT_SECONDS = 60;
    private static final int FILES = 24;

    @TempDir
    Path directory;

    /** Undo actions, run last-first whatever happens. */
    private final Deque<Undo> cleanup = new ArrayDeque<>();

    private interface Undo {
        void run() throws Exception;
    }

    @Test
    void snapshotOfAMountedExt4BeingWrittenClonesToACleanFileSystem() throws Exception {
        assumeTrue(Files.isReadable(Path.of("/dev/fuse")) && Files.isWritable(Path.of("/dev/fuse")),
                "/dev/fuse is not available; skipping the ext4-over-nbdfuse test");
        for (String tool : new String[] {"nbdfuse", "fusermount3", "mkfs.ext4", "e2fsck", "mount", "umount", "losetup", "sync"}) {
            assumeTrue(hasTool(tool), tool + " is not installed; skipping the ext4-over-nbdfuse test");
        }
        assumeTrue(tool(directory, TIMEOUT_SECONDS, "losetup", "-f").exitCode() == 0,
                "no free loop device (or not allowed to use one); skipping the ext4-over-nbdfuse test");

        Path storeFile = directory.resolve("ext4.cairn");
        try (Store created = Store.formatFile(storeFile, 2L << 30, Layout.defaultExtentBlocks(2L << 30), StoreOptions.defaults())) {
            created.create("disk0", 256L << 20);
        }
        String store = storeFile.toString();
        try (Served server = Served.start(directory, store)) {
            try {
                run(server, store);
            } catch (Throwable failure) {
                failure.addSuppressed(new AssertionError(server.describe()));
                throw failure;
            } finally {
                undoAll();
            }
            assertEquals(0, server.signal("TERM", Duration.ofSeconds(60)), server::describe);
        }
    }

    private void run(Served server, String store) throws Exception {
        Path fuseA = nbdfuse(server.uri("disk0"), "fuse-disk0");
        toolOk(directory, TIMEOUT_SECONDS, "mkfs.ext4", "-F", "-q", fuseA.toString());
        Path mountA = loopMount(fuseA, "mnt-disk0", false);

        // Files written and synced before the snapshot: these must be in the clone, byte for byte.
        Path before = Files.createDirectories(mountA.resolve("before"));
        SplittableRandom random = new SplittableRandom(4242);
        byte[][] contents = new byte[FILES][];
        for (int i = 0; i < FILES; i++) {
            contents[i] = new byte[512 + random.nextInt(1 << 20)];
            random.nextBytes(contents[i]);
            Files.write(before.resolve("file-" + i), contents[i]);
        }
        toolOk(directory, TIMEOUT_SECONDS, "sync");

        // Keep writing while the snapshot is taken.
        AtomicBoolean stop = new AtomicBoolean();
        AtomicInteger written = new AtomicInteger();
        AtomicReference<Throwable> writerFailure = new AtomicReference<>();
        Path during = Files.createDirectories(mountA.resolve("during"));
        Thread writer = Thread.ofPlatform().name("ext4 writer").start(() -> {
            SplittableRandom data = new SplittableRandom(7);
            try {
                for (int n = 0; !stop.get(); n++) {
                    byte[] bytes = new byte[4096 + data.nextInt(256 << 10)];
                    data.nextBytes(bytes);
                    try (FileChannel file = FileChannel.open(during.resolve("bg-" + n), StandardOpenOption.CREATE,
                            StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                        file.write(ByteBuffer.wrap(bytes));
                        if (n % 4 == 0) {
                            file.force(true); // some data goes all the way to the disk while others wait in the cache
                        }
                    }
                    Files.deleteIfExists(during.resolve("bg-" + (n - 8))); // a few MiB at most in use
                    written.incrementAndGet();
                }
            } catch (Throwable e) {
                writerFailure.set(e);
            }
        });
        cleanup.push(() -> {
            stop.set(true);
            writer.join(Duration.ofSeconds(TIMEOUT_SECONDS));
        });
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (written.get() < 16 && writerFailure.get() == null && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        Served.Result snapshot = cairnOk(directory, "snapshot", store, "disk0", "--label", "mounted");
        int writtenAtSnapshot = written.get();
        cairnOk(directory, "create", store, "clone", "--from", "disk0@mounted");
        Thread.sleep(300); // and a little more writing after the snapshot
        stop.set(true);
        writer.join(Duration.ofSeconds(TIMEOUT_SECONDS));
        if (writerFailure.get() != null) {
            throw new AssertionError("writing to the mounted ext4 failed", writerFailure.get());
        }
        assertTrue(writtenAtSnapshot >= 16, "the writer was busy when the snapshot was taken: " + writtenAtSnapshot);
        // The live disk moves on: the synced files are overwritten in place (same blocks), which the
        // snapshot and its clone must not see.
        for (int i = 0; i < FILES; i++) {
            byte[] other = contents[i].clone();
            for (int b = 0; b < other.length; b++) {
                other[b] ^= (byte) 0xff;
            }
            try (FileChannel file = FileChannel.open(before.resolve("file-" + i), StandardOpenOption.WRITE)) {
                file.write(ByteBuffer.wrap(other), 0);
                file.force(true);
            }
        }
        toolOk(directory, TIMEOUT_SECONDS, "sync");

        // The clone: a crash-consistent image of a mounted file system. e2fsck replays the journal
        // (and may fix what a crash leaves), then must find it clean.
        Path fuseB = nbdfuse(server.uri("clone"), "fuse-clone");
        Served.Result repair = tool(directory, TIMEOUT_SECONDS, "e2fsck", "-fy", fuseB.toString());
        assertTrue(repair.exitCode() == 0 || repair.exitCode() == 1, "e2fsck -fy: " + repair);
        Served.Result check = tool(directory, TIMEOUT_SECONDS, "e2fsck", "-fn", fuseB.toString());
        assertEquals(0, check.exitCode(), "e2fsck -fn after the repair: " + check);

        Path mountB = loopMount(fuseB, "mnt-clone", true);
        for (int i = 0; i < FILES; i++) {
            Path file = mountB.resolve("before/file-" + i);
            assertTrue(Files.isRegularFile(file), "synced before the snapshot: " + file);
            assertArrayEquals(contents[i], Files.readAllBytes(file), "content of " + file);
        }
        long inClone;
        try (var files = Files.list(mountB.resolve("during"))) {
            inClone = files.count();
        }
        System.out.printf("Ext4IT: snapshot of the mounted disk0 in %d ms (CLI wall time) with %d files written so far;"
                        + " e2fsck -fy exit %d; the clone has all %d synced files and %d of the files being written%n",
                snapshot.millis(), writtenAtSnapshot, repair.exitCode(), FILES, inClone);

        // The live file system, unmounted in order, is clean too.
        undoUntil(mountA);
        assertEquals(0, tool(directory, TIMEOUT_SECONDS, "e2fsck", "-fn", fuseA.toString()).exitCode(), "disk0 after umount");
    }

    /** nbdfuse URI on a new directory; returns the file it serves. Unmounted at the end. */
    private Path nbdfuse(String uri, String name) throws Exception {
        Path mountpoint = Files.createDirectories(directory.resolve(name));
        Path pidFile = directory.resolve(name + ".pid");
        Path log = directory.resolve(name + ".log");
        Process process = new ProcessBuilder("nbdfuse", "-P", pidFile.toString(), mountpoint.toString(), uri)
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        cleanup.push(() -> {
            tool(directory, TIMEOUT_SECONDS, "fusermount3", "-u", mountpoint.toString());
            if (!process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS);
                tool(directory, TIMEOUT_SECONDS, "fusermount3", "-uz", mountpoint.toString());
            }
        });
        Path file = mountpoint.resolve("nbd");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_SECONDS);
        while (!(Files.exists(pidFile) && Files.exists(file))) {
            if (!process.isAlive()) {
                throw new AssertionError("nbdfuse exited with " + process.exitValue() + ": " + Files.readString(log));
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("nbdfuse did not mount " + uri + " in time: " + Files.readString(log));
            }
            Thread.sleep(20);
        }
        return file;
    }

    /** Mounts an image file with a loop device; unmounted (and the loop device freed) at the end. */
    private Path loopMount(Path image, String name, boolean readOnly) throws IOException, InterruptedException {
        Path mountpoint = Files.createDirectories(directory.resolve(name));
        toolOk(directory, TIMEOUT_SECONDS, "mount", "-o", readOnly ? "ro,loop" : "loop", image.toString(), mountpoint.toString());
        cleanup.push(new Unmount(mountpoint));
        return mountpoint;
    }

    private record Unmount(Path mountpoint) implements Undo {
        @Override
        public void run() throws Exception {
            Served.Result result = tool(Path.of("/"), TIMEOUT_SECONDS, "umount", mountpoint.toString());
            if (result.exitCode() != 0) {
                tool(Path.of("/"), TIMEOUT_SECONDS, "umount", "-l", mountpoint.toString());
                throw new AssertionError("umount " + mountpoint + ": " + result);
            }
        }
    }

    /** Runs the undo actions down to and including the unmount of {@code mountpoint}. */
    private void undoUntil(Path mountpoint) throws Exception {
        while (!cleanup.isEmpty()) {
            Undo undo = cleanup.pop();
            undo.run();
            if (undo instanceof Unmount unmount && unmount.mountpoint().equals(mountpoint)) {
                return;
            }
        }
    }

    private void undoAll() throws Exception {
        Exception first = null;
        while (!cleanup.isEmpty()) {
            try {
                cleanup.pop().run();
            } catch (Exception e) {
                if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }
}
