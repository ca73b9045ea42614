package io.cairn.cli;

import java.io.PrintWriter;
import java.io.StringWriter;

/** Runs {@code cairn} commands in this JVM with stdout and stderr captured. */
final class Cli {

    record Result(int exitCode, String out, String err) {
        @Override
        public String toString() {
            return "exit " + exitCode + "\n--- stdout\n" + out + "--- stderr\n" + err;
        }
    }

    private Cli() {
    }

    static Result run(Object... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        String[] text = new String[args.length];
        for (int i = 0; i < args.length; i++) {
            text[i] = String.valueOf(args[i]);
        }
        int exitCode = Main.commandLine()
                .setOut(new PrintWriter(out, true))
                .setErr(new PrintWriter(err, true))
                .execute(text);
        return new Result(exitCode, unix(out.toString()), unix(err.toString()));
    }

    /** Output lines end as the platform says; goldens are stored with '\n'. */
    private static String unix(String text) {
        return text.replace(System.lineSeparator(), "\n");
    }
}
