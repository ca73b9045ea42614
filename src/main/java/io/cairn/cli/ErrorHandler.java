package io.cairn.cli;

import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.NoSuchFileException;
import picocli.CommandLine;

/**
 * Turns every failure into one line on stderr, {@code cairn: <what went wrong>}, and its exit code
 * (see {@link ExitCodes}). Stack traces appear only with {@code --debug}, or for unexpected failures
 * that are not the user's doing, where they are what a bug report needs.
 */
final class ErrorHandler implements CommandLine.IExecutionExceptionHandler, CommandLine.IParameterExceptionHandler {

    static final String PREFIX = "cairn: ";

    @Override
    public int handleParseException(CommandLine.ParameterException problem, String[] args) {
        CommandLine commandLine = problem.getCommandLine();
        PrintWriter err = commandLine.getErr();
        // Some picocli messages start with their own "Error: "; ours already says where it comes from.
        String message = oneLine(problem.getMessage()).replaceFirst("^Error: ", "");
        err.println(PREFIX + message + " (see: "
                + commandLine.getCommandSpec().qualifiedName() + " --help)");
        err.flush();
        return ExitCodes.USAGE;
    }

    @Override
    public int handleExecutionException(Exception problem, CommandLine commandLine, CommandLine.ParseResult parseResult) {
        PrintWriter err = commandLine.getErr();
        int exitCode = ExitCodes.of(problem);
        boolean debug = debugRequested(parseResult);
        if (exitCode == ExitCodes.OTHER) {
            err.println(PREFIX + "unexpected error: " + oneLine(String.valueOf(problem))
                    + (debug ? "" : " (run with --debug to see where)"));
        } else {
            err.println(PREFIX + oneLine(describe(problem)));
        }
        if (debug) {
            problem.printStackTrace(err);
        }
        err.flush();
        return exitCode;
    }

    /** {@code --debug} may be given before or after the subcommand's name. */
    private static boolean debugRequested(CommandLine.ParseResult parseResult) {
        for (CommandLine.ParseResult level = parseResult; level != null; level = level.subcommand()) {
            if (level.hasMatchedOption(Main.DEBUG_OPTION)) {
                return true;
            }
        }
        return false;
    }

    /** File-system exceptions carry only the path as their message; say what happened to it. */
    static String describe(Throwable problem) {
        Throwable cause = problem instanceof UncheckedIOException unchecked ? unchecked.getCause() : problem;
        return switch (cause) {
            case NoSuchFileException missing -> "no such file: " + missing.getFile();
            case FileAlreadyExistsException exists -> exists.getFile() + " already exists";
            case AccessDeniedException denied -> "permission denied: " + denied.getFile();
            default -> cause.getMessage();
        };
    }

    /** Messages sometimes span lines (nested causes); the contract is one line per error. */
    static String oneLine(String message) {
        if (message == null || message.isBlank()) {
            return "failed without a message";
        }
        return message.strip().replaceAll("\\s*\\R\\s*", "; ");
    }
}
