package io.cairn.cli;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code bin/cairn} as a user runs it, for the integration tests: one-shot commands and external
 * tools with their output and wall time, and {@code bin/cairn serve} as a long-running process.
 * Every wait is bounded.
 */
final class Served implements AutoCloseable {

    static final Path LAUNCHER = Path.of("bin", "cairn").toAbsolutePath();
    /** JVM start-up on a busy machine is slow; no command of these tests takes longer than this. */
    static final long COMMAND_TIMEOUT_SECONDS = 120;
    private static final Duration START_TIMEOUT = Duration.ofSeconds(90);
    static final String READY_LINE = "Cairn is serving";

    record Result(int exitCode, String out, String err, long millis) {
        @Override
        public String toString() {
            return "exit " + exitCode + " after " + millis + " ms\n--- stdout\n" + out + "--- stderr\n" + err;
        }
    }

    // ------------------------------------------------------------------ one-shot processes

    /** Runs {@code bin/cairn ARGS} in {@code directory}. */
    static Result cairn(Path directory, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(LAUNCHER.toString()));
        command.addAll(List.of(args));
        return run(directory, COMMAND_TIMEOUT_SECONDS, command);
    }

    /** Runs {@code bin/cairn ARGS} in {@code directory} and fails unless it exits 0. */
    static Result cairnOk(Path directory, String... args) throws IOException, InterruptedException {
        Result result = cairn(directory, args);
        if (result.exitCode() != 0) {
            throw new AssertionError("bin/cairn " + String.join(" ", args) + ": " + result);
        }
        return result;
    }

    /** Runs an external tool, stdin from /dev/null. */
    static Result tool(Path directory, long timeoutSeconds, String... command) throws IOException, InterruptedException {
        return run(directory, timeoutSeconds, List.of(command));
    }

    static Result toolOk(Path directory, long timeoutSeconds, String... command) throws IOException, InterruptedException {
        Result result = tool(directory, timeoutSeconds, command);
        if (result.exitCode() != 0) {
            throw new AssertionError(String.join(" ", command) + ": " + result);
        }
        return result;
    }

    /** Like {@link #tool}, but a tool still running after {@code timeoutSeconds} is killed and null is returned. */
    static Result toolWithin(Path directory, long timeoutSeconds, String... command) throws IOException, InterruptedException {
        try {
            return run(directory, timeoutSeconds, List.of(command));
        } catch (TimedOut timedOut) {
            return null;
        }
    }

    /** A tool that did not finish in time (killed). */
    static final class TimedOut extends AssertionError {
        TimedOut(String message) {
            super(message);
        }
    }

    private static Result run(Path directory, long timeoutSeconds, List<String> command) throws IOException, InterruptedException {
        Path out = Files.createTempFile("cairn-it", ".out");
        Path err = Files.createTempFile("cairn-it", ".err");
        try {
            long start = System.nanoTime();
            Process process = new ProcessBuilder(command)
                    .directory(directory.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                    .redirectOutput(out.toFile())
                    .redirectError(err.toFile())
                    .start();
            if (!process.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
                throw new TimedOut("timed out after " + timeoutSeconds + " s: " + String.join(" ", command)
                        + "\n" + Files.readString(out) + Files.readString(err));
            }
            long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            return new Result(process.exitValue(), Files.readString(out), Files.readString(err), millis);
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }

    /** True if an executable of that name is on the PATH. */
    /** The command line of {@code qemu-io} running {@code commands} on {@code uri} (raw format). */
    static List<String> qemuIoCommand(String uri, boolean readOnly, String... commands) {
        List<String> command = new ArrayList<>(List.of("qemu-io", "-f", "raw"));
        if (readOnly) {
            command.add("-r");
        }
        for (String each : commands) {
            command.addAll(List.of("-c", each));
        }
        command.add(uri);
        return command;
    }

    static boolean hasTool(String name) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, name))) {
                return true;
            }
        }
        return false;
    }

    static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0)) {
            socket.setReuseAddress(true);
            return socket.getLocalPort();
        }
    }

    // ------------------------------------------------------------------ bin/cairn serve

    private final Process process;
    private final int port;
    private final Path stderr;
    private final List<String> stdout = new CopyOnWriteArrayList<>();
    private final CountDownLatch ready = new CountDownLatch(1);
    private final Thread stdoutReader;

    private Served(Process process, int port, Path stderr) {
        this.process = process;
        this.port = port;
        this.stderr = stderr;
        stdoutReader = Thread.ofVirtual().start(() -> {
            try (BufferedReader reader = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = reader.readLine()) != null; ) {
                    stdout.add(line);
                    if (line.startsWith(READY_LINE)) {
                        ready.countDown();
                    }
                }
            } catch (IOException ignored) {
                // The process is gone; what was read is all there is.
            }
        });
    }

    /**
     * Starts {@code bin/cairn serve [STORE] --listen 127.0.0.1:PORT EXTRA...} in {@code directory} on a
     * free port and waits for its "Cairn is serving" line.
     */
    static Served start(Path directory, String store, String... extra) throws IOException, InterruptedException {
        int port = freePort();
        // A shell running commands in the background starts them with SIGINT ignored, and a JVM that inherits that
        // never installs its handler: a test run from such a job (nohup .ci/run &) could not stop a server by
        // interrupt. env puts the default disposition back, then execs the launcher (same process, same pid).
        List<String> command = new ArrayList<>(List.of("env", "--default-signal=INT", LAUNCHER.toString(), "serve"));
        if (store != null) {
            command.add(store);
        }
        command.addAll(List.of("--listen", "127.0.0.1:" + port));
        command.addAll(List.of(extra));
        Path stderr = Files.createTempFile(directory, "serve", ".log");
        Process process = new ProcessBuilder(command)
                .directory(directory.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectError(stderr.toFile())
                .start();
        Served served = new Served(process, port, stderr);
        try {
            served.awaitReady();
        } catch (InterruptedException | RuntimeException | Error e) {
            served.close();
            throw e;
        }
        return served;
    }

    private void awaitReady() throws InterruptedException {
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        while (!ready.await(100, TimeUnit.MILLISECONDS)) {
            if (!process.isAlive()) {
                stdoutReader.join(Duration.ofSeconds(5));
                throw new AssertionError("bin/cairn serve exited with " + process.exitValue() + " before serving\n" + describe());
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("bin/cairn serve did not say '" + READY_LINE + "' within " + START_TIMEOUT + "\n" + describe());
            }
        }
    }

    /** Waits (bounded) until a line of the server's stdout contains {@code fragment}. */
    boolean awaitOutput(String fragment, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (stdout.stream().noneMatch(line -> line.contains(fragment))) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            Thread.sleep(20);
        }
        return true;
    }

    int port() {
        return port;
    }

    long pid() {
        return process.pid();
    }

    boolean isAlive() {
        return process.isAlive();
    }

    String uri(String export) {
        return "nbd://127.0.0.1:" + port + "/" + export;
    }

    List<String> stdoutLines() {
        return List.copyOf(stdout);
    }

    /** The server's log so far. */
    String log() {
        try {
            return Files.readString(stderr);
        } catch (IOException e) {
            return "(cannot read the log: " + e + ")";
        }
    }

    /** The server-side times, in ms, of the admin commands whose log line contains {@code fragment}. */
    List<Double> adminMillis(String fragment) {
        Pattern timing = Pattern.compile("admin: cairn (.*) -> exit (\\d+) in ([0-9.]+) ms");
        List<Double> millis = new ArrayList<>();
        for (String line : log().split("\n")) {
            Matcher matcher = timing.matcher(line);
            if (matcher.find() && matcher.group(1).contains(fragment)) {
                millis.add(Double.parseDouble(matcher.group(3)));
            }
        }
        return millis;
    }

    String describe() {
        return "--- serve stdout\n" + String.join("\n", stdout) + "\n--- serve stderr\n" + log();
    }

    /** Sends {@code signal} (TERM, INT, KILL) and waits for the exit; returns the exit code. */
    int signal(String signal, Duration timeout) throws IOException, InterruptedException {
        Result kill = tool(Path.of("."), 30, "kill", "-" + signal, Long.toString(process.pid()));
        if (kill.exitCode() != 0 && process.isAlive()) {
            throw new AssertionError("kill -" + signal + " failed: " + kill);
        }
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            throw new AssertionError("bin/cairn serve still running " + timeout + " after SIGTERM\n" + describe());
        }
        stdoutReader.join(Duration.ofSeconds(5));
        return process.exitValue();
    }

    /** kill -9: no chance to commit or clean up. */
    void kill9() throws InterruptedException {
        process.destroyForcibly(); // SIGKILL on Linux
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            throw new AssertionError("bin/cairn serve survived SIGKILL");
        }
    }

    /** Stops the server if it still runs (SIGKILL after a grace period for SIGTERM). */
    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            process.destroy();
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(30, TimeUnit.SECONDS);
            }
        }
        stdoutReader.join(Duration.ofSeconds(5));
    }
}
