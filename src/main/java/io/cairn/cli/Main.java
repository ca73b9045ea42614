package io.cairn.cli;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * Entry point of {@code bin/cairn}. Normal output goes to stdout; logs and errors go to stderr, so
 * stdout stays usable for inetd mode and {@code --json}.
 */
@Command(name = "cairn",
        mixinStandardHelpOptions = true,
        versionProvider = Main.VersionProvider.class,
        description = "Virtual disks with instant snapshots and writable clones, served over NBD.",
        subcommands = {CommandLine.HelpCommand.class})
public final class Main implements Runnable {

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /** The configured command line, for tests that run commands without exiting the JVM. */
    public static CommandLine commandLine() {
        return new CommandLine(new Main());
    }

    /** Without a subcommand there is nothing to do but explain what there is. */
    @Override
    public void run() {
        CommandLine.usage(this, System.out);
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
