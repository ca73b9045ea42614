package io.cairn.nbd;

import io.cairn.nbd.store.StoreExportCatalog;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;
import java.io.UncheckedIOException;

import java.io.File;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * The one place integration tests get their exports and server from. {@link #createCatalog()} is the
 * only code that knows the exports are in memory: to run every integration test against the real
 * storage engine, change that method (and {@link #contents}/{@link #seed} if the engine needs another
 * way in) and nothing else.
 *
 * <p>Exports: {@link #DISK} (writable, empty), {@link #SPARSE} (writable, data in two places, holes
 * elsewhere), {@link #GOLDEN} (read-only, filled with {@link #goldenContent()}).
 */
final class NbdTestFixture implements AutoCloseable {

    static final String DISK = "disk";
    static final String SPARSE = "sparse";
    static final String GOLDEN_DISK = "base";
    static final String GOLDEN_LABEL = "golden";
    /** A read-only snapshot export, named NAME@LABEL. */
    static final String GOLDEN = GOLDEN_DISK + "@" + GOLDEN_LABEL;
    static final long DISK_BYTES = 16L << 20;
    static final long SPARSE_BYTES = 16L << 20;
    static final int GOLDEN_BYTES = 4 << 20;
    /** Data regions of {@link #SPARSE}: [offset, length] pairs; everything else is a hole. */
    static final long[][] SPARSE_DATA = {{0, 1 << 20}, {8L << 20, 64 << 10}};
    private static final long GOLDEN_SEED = 2024;

    private final ExportCatalog catalog;
    private final NbdServer server;
    private final InetSocketAddress tcpAddress;
    private final Path unixSocket;
    private final Path directory;

    private NbdTestFixture() throws IOException {
        catalog = createCatalog();
        server = new NbdServer(catalog);
        tcpAddress = server.listenTcp("127.0.0.1", 0);
        directory = Files.createTempDirectory("cairn-nbd-it");
        unixSocket = directory.resolve("nbd.sock");
        server.listenUnix(unixSocket);
    }

    static NbdTestFixture start() throws IOException {
        return new NbdTestFixture();
    }

    /**
     * The exports under test, served by the storage engine from a store in a temporary file:
     * {@link #DISK} and {@link #SPARSE} are disks, {@link #GOLDEN} a read-only snapshot.
     */
    static ExportCatalog createCatalog() {
        return new StoreExportCatalog(createStore(), DISK);
    }

    static Store createStore() {
        try {
            Path directory = Files.createTempDirectory("cairn-nbd-store");
            Path file = directory.resolve("store.cairn");
            file.toFile().deleteOnExit();
            directory.toFile().deleteOnExit();
            Store store = Store.formatFile(file, 256L << 20, 256, StoreOptions.defaults());
            store.create(DISK, DISK_BYTES);
            store.create(SPARSE, SPARSE_BYTES);
            try (Volume sparse = store.openVolume(SPARSE)) {
                for (long[] region : SPARSE_DATA) {
                    sparse.write(region[0], ByteBuffer.wrap(MemoryExport.pattern(region[0], (int) region[1])), false);
                }
            }
            store.create(GOLDEN_DISK, GOLDEN_BYTES);
            try (Volume base = store.openVolume(GOLDEN_DISK)) {
                base.write(0, ByteBuffer.wrap(goldenContent()), false);
            }
            store.snapshot(GOLDEN_DISK, GOLDEN_LABEL);
            store.commit();
            return store;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static byte[] goldenContent() {
        return MemoryExport.pattern(GOLDEN_SEED, GOLDEN_BYTES);
    }

    /** Expected content of {@link #SPARSE}, as seeded. */
    static byte[] sparseContent() {
        byte[] content = new byte[(int) SPARSE_BYTES];
        for (long[] region : SPARSE_DATA) {
            System.arraycopy(MemoryExport.pattern(region[0], (int) region[1]), 0, content, (int) region[0], (int) region[1]);
        }
        return content;
    }

    ExportCatalog catalog() {
        return catalog;
    }

    NbdServer server() {
        return server;
    }

    InetSocketAddress tcpAddress() {
        return tcpAddress;
    }

    Path unixSocket() {
        return unixSocket;
    }

    Path directory() {
        return directory;
    }

    String tcpUri(String export) {
        return "nbd://127.0.0.1:" + tcpAddress.getPort() + "/" + export;
    }

    String unixUri(String export) {
        return "nbd+unix:///" + export + "?socket=" + unixSocket;
    }

    /** Reads an export directly through the catalog, bypassing NBD. */
    byte[] contents(String export, long offsetBytes, int lengthBytes) {
        try (NbdExport opened = catalog.open(export)) {
            ByteBuffer buffer = ByteBuffer.allocate(lengthBytes);
            opened.read(offsetBytes, buffer);
            return buffer.array();
        } catch (NoSuchExportException e) {
            throw new IllegalArgumentException(e);
        }
    }

    /** Writes an export directly through the catalog, bypassing NBD. */
    void seed(String export, long offsetBytes, byte[] data) {
        try (NbdExport opened = catalog.open(export)) {
            opened.write(offsetBytes, ByteBuffer.wrap(data), false);
        } catch (NoSuchExportException e) {
            throw new IllegalArgumentException(e);
        }
    }

    @Override
    public void close() throws IOException {
        server.close();
        try (var files = Files.list(directory)) {
            for (Path file : files.toList()) {
                Files.deleteIfExists(file);
            }
        }
        Files.deleteIfExists(directory);
    }

    // ---- spawning real clients ----

    record Result(int exitCode, String output) {
    }

    /** True if an executable of that name is on the PATH. */
    static boolean hasTool(String name) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            if (Files.isExecutable(Path.of(dir, name))) {
                return true;
            }
        }
        return false;
    }

    /** Runs a command, stdout and stderr merged, killing it after the timeout. */
    static Result run(long timeoutSeconds, String... command) throws IOException, InterruptedException {
        Process process = new ProcessBuilder(command).redirectErrorStream(true).redirectInput(ProcessBuilder.Redirect.PIPE).start();
        process.getOutputStream().close();
        StringBuilder output = new StringBuilder();
        Thread reader = Thread.ofVirtual().start(() -> {
            try {
                output.append(new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
            } catch (IOException ignored) {
                // The process died; what was read is all there is.
            }
        });
        if (!process.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            process.waitFor();
            reader.join();
            throw new AssertionError("timed out after " + timeoutSeconds + " s: " + String.join(" ", command)
                    + "\n" + output);
        }
        reader.join();
        return new Result(process.exitValue(), output.toString());
    }

    /** Runs a command and fails with its output unless it exits 0. */
    static String runOk(long timeoutSeconds, String... command) throws IOException, InterruptedException {
        Result result = run(timeoutSeconds, command);
        if (result.exitCode() != 0) {
            throw new AssertionError("exit " + result.exitCode() + ": " + String.join(" ", command) + "\n" + result.output());
        }
        return result.output();
    }

    /** A command line that starts {@link InetdMain} (this fixture's catalog in inetd mode) in a new JVM. */
    static List<String> inetdServerCommand() {
        Set<String> classpath = new LinkedHashSet<>();
        for (Class<?> type : List.of(NbdServer.class, InetdMain.class, org.slf4j.LoggerFactory.class,
                ch.qos.logback.classic.Logger.class, ch.qos.logback.core.Appender.class)) {
            try {
                classpath.add(Path.of(type.getProtectionDomain().getCodeSource().getLocation().toURI()).toString());
            } catch (URISyntaxException e) {
                throw new IllegalStateException(e);
            }
        }
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.add("-XX:TieredStopAtLevel=1");
        // As bin/cairn: the file device calls the C library through the foreign function API.
        command.add("--enable-native-access=ALL-UNNAMED");
        command.add("-cp");
        command.add(String.join(File.pathSeparator, classpath));
        command.add(InetdMain.class.getName());
        return command;
    }
}
