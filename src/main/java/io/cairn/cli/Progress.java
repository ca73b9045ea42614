package io.cairn.cli;

import java.io.Console;
import java.io.PrintWriter;

/**
 * A one-line progress bar for long copies, redrawn in place on stderr. Drawn only on a terminal:
 * in scripts and logs a bar is noise, so there it stays silent.
 */
final class Progress implements AutoCloseable {

    private static final int BAR_CHARS = 30;

    private final PrintWriter err;
    private final String what;
    private final long totalBytes;
    private final boolean enabled;
    private int shownPercent = -1;

    Progress(PrintWriter err, String what, long totalBytes, boolean enabled) {
        this.err = err;
        this.what = what;
        this.totalBytes = totalBytes;
        this.enabled = enabled;
    }

    /** A bar on {@code err} if the process talks to a terminal, otherwise a silent one. */
    static Progress onTerminal(PrintWriter err, String what, long totalBytes) {
        Console console = System.console();
        return new Progress(err, what, totalBytes, console != null && console.isTerminal());
    }

    /** Redraws only when the percentage changes, so a fast copy does not drown in terminal writes. */
    void advanceTo(long doneBytes) {
        if (!enabled) {
            return;
        }
        int percent = totalBytes <= 0 ? 100 : (int) Math.min(100, doneBytes * 100 / totalBytes);
        if (percent != shownPercent) {
            shownPercent = percent;
            draw(percent, doneBytes);
        }
    }

    private void draw(int percent, long doneBytes) {
        int filled = percent * BAR_CHARS / 100;
        err.print("\r" + what + " [" + "#".repeat(filled) + ".".repeat(BAR_CHARS - filled) + "] "
                + String.format(java.util.Locale.ROOT, "%3d%%", percent) + "  " + Sizes.human(Math.min(doneBytes, totalBytes))
                + " / " + Sizes.human(totalBytes) + "   ");
        err.flush();
    }

    /** Ends the bar's line, so whatever is printed next starts on a fresh one. */
    @Override
    public void close() {
        if (enabled && shownPercent >= 0) {
            err.println();
            err.flush();
        }
    }
}
