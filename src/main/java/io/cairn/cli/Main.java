package io.cairn.cli;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;

/**
 * Entry point of {@code bin/cairn}. Normal output goes to stdout; logs and errors go to stderr, so
 * stdout stays usable for inetd mode and {@code --json}.
 *
 * <p>A command on a store that a running server holds is sent to that server and carried out there
 * ({@link AdminForwarding}), so the CLI works the same on a live store.
 *
 * <p>Each subcommand is one class; new commands are added to
 * the list below the same way; commands on a store extend {@link StoreCommand}.
 */
@Command(name = "cairn",
        // Subcommands inherit the help and version options.
        scope = ScopeType.INHERIT,
        mixinStandardHelpOptions = true,
        versionProvider = Main.VersionProvider.class,
        description = "Virtual disks with instant snapshots and writable clones, served over NBD.",
        footer = {"", "Exit codes: 0 ok, 1 unexpected error, 2 usage error, 3 not found, 4 conflict or in use,"
                + " 5 storage error or corruption; check: 6 leaks only, 7 damage; gc: 7 damage;"
                + " 8 cluster coordinator (ZooKeeper) unreachable."},
        subcommands = {
            FormatCommand.class,
            MigrateCommand.class,
            GiveBackCommand.class,
            CreateCommand.class,
            SnapshotCommand.class,
            ListCommand.class,
            SnapshotsCommand.class,
            LabelCommand.class,
            TreeCommand.class,
            DeleteCommand.class,
            ImportCommand.class,
            ExportCommand.class,
            InfoCommand.class,
            DuCommand.class,
            DiffCommand.class,
            ExportDiffCommand.class,
            ImportDiffCommand.class,
            ServeCommand.class,
            ScheduleCommand.class,
            StatsCommand.class,
            CheckCommand.class,
            GcCommand.class,
            NodesCommand.class,
            CommandLine.HelpCommand.class})
public final class Main implements Runnable {

    static final String DEBUG_OPTION = "--debug";

    /** Read by {@link ErrorHandler} from the parse result, at whatever level it was given. */
    @Option(names = DEBUG_OPTION, scope = ScopeType.INHERIT, description = "Show the stack trace of any error.")
    boolean debug;

    public static void main(String[] args) {
        System.exit(AdminForwarding.forwardIfServed(args).orElseGet(() -> commandLine().execute(args)));
    }

    /** The configured command line, for tests that run commands without exiting the JVM. */
    public static CommandLine commandLine() {
        ErrorHandler errors = new ErrorHandler();
        return new CommandLine(new Main())
                .setExecutionExceptionHandler(errors)
                .setParameterExceptionHandler(errors);
    }

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** Without a subcommand there is nothing to do but explain what there is. */
    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /** Reads the version Maven records in the jar; a build from classes has none. */
    static final class VersionProvider implements CommandLine.IVersionProvider {

        private static final String POM_PROPERTIES = "/META-INF/maven/io.cairn/cairn/pom.properties";

        @Override
        public String[] getVersion() throws IOException {
            try (InputStream in = Main.class.getResourceAsStream(POM_PROPERTIES)) {
                if (in == null) {
                    return new String[] {"cairn (development build)"};
                }
                Properties properties = new Properties();
                properties.load(in);
                return new String[] {"cairn " + properties.getProperty("version", "(unknown version)")};
            }
        }
    }
}
