package io.cairn.cli;

import io.cairn.io.StorageException;
import picocli.CommandLine;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.ParseResult;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/**
 * Decides whether a command line belongs to a running server and, if so, has the server carry it
 * out. A command qualifies when it works on a STORE ({@link StoreCommand}) whose server answers on
 * the store's admin socket. File arguments are made absolute first: the server has its own working
 * directory.
 */
final class AdminForwarding {

    private AdminForwarding() {
    }

    /** The exit code of the command run by the store's server, or empty to run it here. */
    static Optional<Integer> forwardIfServed(String[] args) {
        return forwardIfServed(args, System.out, System.err);
    }

    static Optional<Integer> forwardIfServed(String[] args, PrintStream out, PrintStream err) {
        ParseResult parsed;
        try {
            parsed = Main.commandLine().parseArgs(args);
        } catch (CommandLine.ParameterException malformed) {
            return Optional.empty(); // let the local run report it
        }
        ParseResult command = parsed.subcommand();
        if (command == null || !(command.commandSpec().userObject() instanceof StoreCommand storeCommand)
                || command.isUsageHelpRequested() || command.isVersionHelpRequested()) {
            return Optional.empty();
        }
        Path store = storeCommand.store.path;
        if (store == null || !storeCommand.forwardable()) {
            return Optional.empty();
        }
        Optional<AdminProtocol.Response> answered;
        try {
            answered = AdminClient.forward(store, absolutePaths(args, command, storeCommand.fileArguments()));
        } catch (StorageException brokenOff) {
            // Reported like any other failure: one line, the storage exit code.
            err.println(ErrorHandler.PREFIX + ErrorHandler.oneLine(brokenOff.getMessage()));
            err.flush();
            return Optional.of(ExitCodes.of(brokenOff));
        }
        return answered.map(response -> {
            out.print(response.out());
            out.flush();
            err.print(response.err());
            err.flush();
            return response.exitCode();
        });
    }

    static List<String> absolutePaths(String[] args, ParseResult command) {
        return absolutePaths(args, command, List.of());
    }

    /**
     * {@code args} with the value of every matched Path-typed argument, and of each of {@code otherFiles},
     * replaced by its absolute form.
     */
    static List<String> absolutePaths(String[] args, ParseResult command, List<String> otherFiles) {
        List<String> rewritten = new ArrayList<>(Arrays.asList(args));
        boolean[] done = new boolean[args.length];
        for (ArgSpec spec : command.matchedArgs()) {
            if (spec.type() == Path.class) {
                for (String value : spec.originalStringValues()) {
                    makeAbsolute(rewritten, done, value, false);
                }
            }
        }
        for (String value : otherFiles) {
            // Such files come after the names that decide what they are: look from the end.
            makeAbsolute(rewritten, done, value, true);
        }
        return rewritten;
    }

    private static void makeAbsolute(List<String> rewritten, boolean[] done, String value, boolean fromEnd) {
        String absolute = Path.of(value).toAbsolutePath().normalize().toString();
        for (int step = 0; step < rewritten.size(); step++) {
            int i = fromEnd ? rewritten.size() - 1 - step : step;
            String token = rewritten.get(i);
            if (done[i]) {
                continue;
            }
            if (token.equals(value)) {
                rewritten.set(i, absolute);
                done[i] = true;
                return;
            }
            if (token.startsWith("--") && token.endsWith("=" + value)) {
                rewritten.set(i, token.substring(0, token.length() - value.length()) + absolute);
                done[i] = true;
                return;
            }
        }
    }
}
