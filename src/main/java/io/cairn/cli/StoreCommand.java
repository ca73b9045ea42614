package io.cairn.cli;

import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * What every command on a store shares: the STORE argument and the output streams of the command
 * line it runs in (tests capture them). A command's own positional parameters start at index 1.
 */
abstract class StoreCommand implements Callable<Integer> {

    @Mixin
    StoreArgument store;

    @Spec
    CommandSpec spec;

    PrintWriter out() {
        return spec.commandLine().getOut();
    }

    PrintWriter err() {
        return spec.commandLine().getErr();
    }

    /**
     * Arguments that name files but are not typed {@link java.nio.file.Path} (because their position
     * decides what they are), for {@link AdminForwarding} to make absolute like Path arguments.
     */
    List<String> fileArguments() {
        return List.of();
    }

    /** Whether a server of the STORE argument runs this command line (false for forms whose first argument is no store). */
    boolean forwardable() {
        return true;
    }

    /** Runs the command; failures are thrown and mapped by {@link ErrorHandler}. */
    abstract void run() throws Exception;

    /** The exit status after a successful run; commands whose result is a verdict override it. */
    int exitCode() {
        return ExitCodes.OK;
    }

    @Override
    public final Integer call() throws Exception {
        run();
        out().flush();
        return exitCode();
    }
}
