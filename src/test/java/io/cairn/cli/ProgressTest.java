package io.cairn.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;

class ProgressTest {

    @Test
    void drawsABarOnlyWhenThePercentageChangesAndEndsTheLine() {
        StringWriter err = new StringWriter();
        try (Progress progress = new Progress(new PrintWriter(err), "import", 4L << 20, true)) {
            progress.advanceTo(0);
            progress.advanceTo(1L << 20);
            progress.advanceTo((1L << 20) + 1); // still 25%: no redraw
            progress.advanceTo(4L << 20);
        }
        String[] frames = err.toString().split("\r", -1);
        assertEquals(4, frames.length, err.toString()); // "" before the first \r, then three frames
        assertEquals("import [.......] ".replace(".......", ".".repeat(30)) + "  0%  0 B / 4 MiB   ", frames[1]);
        assertEquals("import [" + "#".repeat(7) + ".".repeat(23) + "]  25%  1 MiB / 4 MiB   ", frames[2]);
        assertTrue(frames[3].startsWith("import [" + "#".repeat(30) + "] 100%  4 MiB / 4 MiB"), frames[3]);
        assertTrue(frames[3].endsWith(System.lineSeparator()), frames[3]);
    }

    @Test
    void staysSilentWhenNotOnATerminal() {
        StringWriter err = new StringWriter();
        try (Progress progress = new Progress(new PrintWriter(err), "export", 100, false)) {
            progress.advanceTo(50);
            progress.advanceTo(100);
        }
        assertEquals("", err.toString());
    }
}
