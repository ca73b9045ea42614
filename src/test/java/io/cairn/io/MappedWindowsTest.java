package io.cairn.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Lends of a file's bytes in place: what they see, where they refuse, and that windows go only when idle. */
class MappedWindowsTest {

    private static final int WINDOW = 64 * 1024;

    @TempDir
    Path directory;

    private Path path;
    private FileChannel file;

    @BeforeEach
    void setUp() throws IOException {
        path = directory.resolve("file");
        file = FileChannel.open(path, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ, StandardOpenOption.WRITE);
    }

    @AfterEach
    void tearDown() throws IOException {
        file.close();
    }

    private MappedWindows windows(int maxWindows) {
        return windows(maxWindows, 60_000);
    }

    private MappedWindows windows(int maxWindows, long idleMillis) {
        return new MappedWindows(path, () -> {
            try {
                return file.size();
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }, WINDOW, maxWindows, idleMillis);
    }

    private void write(long offset, int length, int seed) throws IOException {
        ByteBuffer bytes = ByteBuffer.allocate(length);
        for (int i = 0; i < length; i++) {
            bytes.put(i, (byte) (seed + i * 7));
        }
        file.write(bytes, offset);
    }

    private static void assertContent(ByteBuffer view, int length, int seed) {
        assertEquals(length, view.remaining());
        for (int i = 0; i < length; i++) {
            assertEquals((byte) (seed + i * 7), view.get(view.position() + i), "byte " + i);
        }
    }

    @Test
    void lendsWhatTheFileHoldsAndSeesLaterWrites() throws IOException {
        write(0, 3 * WINDOW, 1);
        MappedWindows windows = windows(4);
        try (BlockDevice.Lent lent = windows.lend(WINDOW + 100, 5000)) {
            assertNotNull(lent);
            assertTrue(lent.view().isReadOnly() && lent.view().isDirect());
            write(WINDOW + 100, 5000, 9); // a write after the lend began shows through the view
            assertContent(lent.view(), 5000, 9);
        }
        windows.close();
    }

    @Test
    void refusesRangesPastTheEndOrAcrossWindowsAndFollowsTheFileAsItGrows() throws IOException {
        write(0, WINDOW / 2, 3);
        MappedWindows windows = windows(4);
        assertNull(windows.lend(WINDOW / 2 - 10, 20), "past the end of the file");
        assertNull(windows.lend(-1, 10));
        assertNull(windows.lend(0, 0));
        try (BlockDevice.Lent first = windows.lend(0, 100)) {
            assertNotNull(first);
            write(WINDOW / 2, WINDOW, 5); // the file grows into the next window
            assertNull(windows.lend(WINDOW - 10, 20), "across two windows");
            try (BlockDevice.Lent grown = windows.lend(WINDOW / 2, WINDOW / 2)) {
                assertNotNull(grown, "the window is mapped again once the file reaches further");
                assertContent(grown.view(), WINDOW / 2, 5);
            }
            assertContent(first.view(), 100, 3); // the old mapping stays valid while lent
        }
        try (BlockDevice.Lent next = windows.lend(WINDOW, WINDOW / 2)) {
            assertNotNull(next);
            assertContent(next.view(), WINDOW / 2, 5 + (WINDOW / 2) * 7);
        }
        windows.close();
        assertNull(windows.lend(0, 100), "closed");
    }

    @Test
    void unmapsWindowsNoLendUsedForTheIdleTimeButNotLentOnes() throws Exception {
        write(0, 4 * WINDOW, 13);
        MappedWindows windows = windows(8, 50);
        windows.lend(0, 4096).close();
        windows.lend(WINDOW, 4096).close();
        try (BlockDevice.Lent held = windows.lend(2L * WINDOW, 4096)) {
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (windows.mappedWindows() > 1 && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertEquals(1, windows.mappedWindows(), "the two idle windows were unmapped, the lent one not");
            Thread.sleep(200);
            assertContent(held.view(), 4096, 13 + 2 * WINDOW * 7);
        }
        try (BlockDevice.Lent again = windows.lend(0, 4096)) {
            assertContent(again.view(), 4096, 13); // mapped afresh
        }
        windows.close();
    }

    @Test
    void unmapsOnlyIdleWindowsBeyondTheLimit() throws IOException {
        write(0, 8 * WINDOW, 11);
        MappedWindows windows = windows(2);
        List<BlockDevice.Lent> held = new ArrayList<>();
        for (int w = 0; w < 4; w++) {
            held.add(windows.lend((long) w * WINDOW, 4096)); // all lent at once: none may go
        }
        assertEquals(4, windows.mappedWindows(), "lent windows stay mapped beyond the limit");
        for (int w = 0; w < 4; w++) {
            assertContent(held.get(w).view(), 4096, 11 + w * WINDOW * 7);
            held.get(w).close();
        }
        for (int w = 4; w < 8; w++) {
            try (BlockDevice.Lent lent = windows.lend((long) w * WINDOW, 4096)) {
                assertContent(lent.view(), 4096, 11 + w * WINDOW * 7);
            }
        }
        assertEquals(2, windows.mappedWindows(), "idle windows were unmapped down to the limit");
        BlockDevice.Lent lentAtClose = windows.lend(7L * WINDOW, 4096);
        windows.close();
        assertContent(lentAtClose.view(), 4096, 11 + 7 * WINDOW * 7); // unmapped only when given back
        lentAtClose.close();
        assertThrows(IllegalStateException.class, () -> lentAtClose.view().get(0), "unmapped after the last lender");
    }
}
