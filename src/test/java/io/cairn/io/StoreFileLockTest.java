package io.cairn.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StoreFileLockTest {

    @TempDir
    Path directory;

    private Path store;

    @BeforeEach
    void createStore() throws IOException {
        store = directory.resolve("store");
        Files.write(store, new byte[4096]);
    }

    @Test
    void secondHolderInThisProcessIsRefusedUntilTheFirstReleases() {
        try (StoreFileLock first = StoreFileLock.acquire(store, false)) {
            StorageException failure = assertThrows(StorageException.class, () -> StoreFileLock.acquire(store, false));
            assertEquals(StorageException.Code.LOCKED, failure.code());
            assertTrue(failure.getMessage().contains("in use by this process"), failure.getMessage());
            assertTrue(failure.getMessage().contains("pid " + ProcessHandle.current().pid()), failure.getMessage());
            // Read-only holders are refused too: one lock per file per process (design note 3).
            assertEquals(StorageException.Code.LOCKED, assertThrows(StorageException.class, () -> StoreFileLock.acquire(store, true)).code());
            // Another name for the same file is the same file.
            Path otherName = directory.resolve(".").resolve("store");
            assertEquals(StorageException.Code.LOCKED, assertThrows(StorageException.class, () -> StoreFileLock.acquire(otherName, false)).code());
        }
        StoreFileLock.acquire(store, false).close();
    }

    @Test
    void lockedDeviceRefusesSecondOpenersInThisProcessAndKeepsTheOsLock() throws Exception {
        try (FileBlockDevice device = FileBlockDevice.openLocked(store, false)) {
            assertEquals(StorageException.Code.LOCKED, assertThrows(StorageException.class, () -> FileBlockDevice.openLocked(store, true)).code());
            assertEquals(StorageException.Code.LOCKED, assertThrows(StorageException.class, () -> FileBlockDevice.open(store, true)).code());
            // Those refusals must not have opened and closed a descriptor, which would have dropped
            // the operating-system lock: another process still cannot take it.
            String childSays = runChild("exclusive", "try");
            assertTrue(childSays.startsWith("LOCKED "), childSays);
            assertTrue(childSays.contains("pid " + ProcessHandle.current().pid()), "the child names us: " + childSays);
            device.flush();
        }
        assertEquals("ACQUIRED", runChild("exclusive", "try"), "closing the device releases the lock");
    }

    @Test
    void anotherProcessHoldingTheLockIsNamedByPid() throws Exception {
        Process holder = startChild("exclusive", "hold");
        try {
            awaitLine(holder, "HELD");
            StorageException failure = assertThrows(StorageException.class, () -> FileBlockDevice.openLocked(store, false));
            assertEquals(StorageException.Code.LOCKED, failure.code());
            assertTrue(failure.getMessage().contains("in use by another process"), failure.getMessage());
            if (Files.isReadable(Path.of("/proc/locks"))) {
                assertTrue(failure.getMessage().contains("pid " + holder.pid()), failure.getMessage());
            }
            assertEquals(StorageException.Code.LOCKED, assertThrows(StorageException.class, () -> StoreFileLock.acquire(store, true)).code(),
                    "a reader cannot share with a writer");
            // The refusal left nothing behind in this process.
            assertEquals(StorageException.Code.LOCKED, assertThrows(StorageException.class, () -> StoreFileLock.acquire(store, false)).code());
        } finally {
            holder.destroyForcibly();
            holder.waitFor(30, TimeUnit.SECONDS);
        }
        // The kernel dropped the dead holder's lock.
        try (FileBlockDevice device = FileBlockDevice.openLocked(store, false)) {
            device.flush();
        }
    }

    @Test
    void readOnlyHoldersInDifferentProcessesShare() throws Exception {
        Process reader = startChild("shared", "hold");
        try {
            awaitLine(reader, "HELD");
            try (FileBlockDevice device = FileBlockDevice.openLocked(store, true)) {
                assertEquals(4096, device.sizeBytes());
                assertTrue(runChild("exclusive", "try").startsWith("LOCKED "), "a writer cannot join two readers");
            }
        } finally {
            reader.getOutputStream().close(); // the child releases and exits
            assertTrue(reader.waitFor(30, TimeUnit.SECONDS));
        }
        assertEquals("ACQUIRED", runChild("exclusive", "try"));
    }

    @Test
    void holderPidIsParsedFromProcLocks() {
        long device = 0xfe00; // major 0xfe, minor 0
        List<String> lines = List.of(
                "1: FLOCK  ADVISORY  WRITE 77 fe:00:2146331 0 EOF",
                "2: POSIX  ADVISORY  WRITE 3943 fe:00:2146331 0 EOF",
                "2: -> POSIX  ADVISORY  WRITE 5000 fe:00:2146331 0 EOF",
                "3: OFDLCK ADVISORY  WRITE -1 fe:00:999 0 EOF");
        assertEquals(77, StoreFileLock.holderPid(lines, device, 2146331));
        assertEquals(3943, StoreFileLock.holderPid(lines.subList(1, 3), device, 2146331));
        assertEquals(-1, StoreFileLock.holderPid(lines, device, 999), "an open-file-description lock has no pid");
        assertEquals(-1, StoreFileLock.holderPid(lines, 0x0801, 2146331), "another device");
        // Large majors and minors are split across st_dev by glibc: major 0x103, minor 0x1234.
        long splitDevice = (0x103L & 0xfff) << 8 | (0x1234L & 0xff) | ((0x1234L & ~0xffL) << 12);
        assertEquals(12, StoreFileLock.holderPid(List.of("1: POSIX  ADVISORY  READ 12 103:1234:5 0 EOF"), splitDevice, 5));
    }

    @Test
    void closeIsIdempotent() {
        StoreFileLock lock = StoreFileLock.acquire(store, false);
        lock.close();
        lock.close();
        assertFalse(lock.toString().isEmpty());
        StoreFileLock.acquire(store, false).close();
    }

    private Process startChild(String mode, String action) throws IOException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        return new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
                StoreFileLockChild.class.getName(), store.toString(), mode, action)
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start();
    }

    private String runChild(String mode, String action) throws Exception {
        Process child = startChild(mode, action);
        child.getOutputStream().close();
        String output = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertTrue(child.waitFor(60, TimeUnit.SECONDS), "child did not exit");
        return output;
    }

    private static void awaitLine(Process child, String expected) throws IOException {
        BufferedReader reader = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
        String line = reader.readLine();
        assertEquals(expected, line, "child output");
    }
}
