package io.cairn.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class MainTest {

    @Test
    void versionAndHelpGoToStdoutAndSucceed() {
        StringWriter out = new StringWriter();
        CommandLine commandLine = Main.commandLine().setOut(new PrintWriter(out));
        assertEquals(0, commandLine.execute("--version"));
        assertTrue(out.toString().startsWith("cairn "), out.toString());

        out.getBuffer().setLength(0);
        assertEquals(0, commandLine.execute("help"));
        assertTrue(out.toString().contains("Usage: cairn"), out.toString());
    }

    @Test
    void unknownCommandFailsWithTheMessageOnStderr() {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine commandLine = Main.commandLine().setOut(new PrintWriter(out)).setErr(new PrintWriter(err));
        assertNotEquals(0, commandLine.execute("no-such-command"));
        assertEquals("", out.toString());
        assertTrue(err.toString().contains("no-such-command"), err.toString());
    }
}
