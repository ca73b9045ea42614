package io.cairn.cli;

/**
 * A user error the CLI itself detects (a missing store file, a name that is taken), carrying the exit
 * code it maps to. Errors the engine detects keep their own types; {@link ExitCodes} maps both.
 */
final class CommandFailure extends RuntimeException {

    private final int exitCode;

    private CommandFailure(int exitCode, String message) {
        super(message);
        this.exitCode = exitCode;
    }

    static CommandFailure usage(String message) {
        return new CommandFailure(ExitCodes.USAGE, message);
    }

    static CommandFailure notFound(String message) {
        return new CommandFailure(ExitCodes.NOT_FOUND, message);
    }

    static CommandFailure conflict(String message) {
        return new CommandFailure(ExitCodes.CONFLICT, message);
    }

    /** A failure another process reported with its exit code (a command one node passed to another). */
    static CommandFailure relayed(int exitCode, String message) {
        return new CommandFailure(exitCode, message);
    }

    int exitCode() {
        return exitCode;
    }
}
