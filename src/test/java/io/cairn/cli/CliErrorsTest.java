package io.cairn.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every user error: one line on stderr with the precise message, its exit code, nothing on stdout,
 * and the store (and the directory around it) exactly as before.
 */
class CliErrorsTest {

    /** One store built through the CLI and copied for each test: formatting and commits cost fsyncs. */
    @TempDir
    static Path templateDirectory;

    private static Path template;

    @TempDir
    Path directory;

    private Path store;

    @BeforeAll
    static void createStoreWithADiskAndASnapshot() {
        template = templateDirectory.resolve("store.img");
        assertEquals(0, Cli.run("format", template, "--size", "16M", "--extent-size", "1M").exitCode());
        assertEquals(0, Cli.run("create", template, "base", "--size", "1M").exitCode());
        assertEquals(0, Cli.run("snapshot", template, "base", "--label", "gold").exitCode());
    }

    @BeforeEach
    void copyTheStoreAndMakeFilesToImport() throws IOException {
        store = directory.resolve("store.img");
        Files.copy(template, store);
        Files.write(directory.resolve("junk"), "not a store".getBytes());
        Files.write(directory.resolve("empty.raw"), new byte[0]);
        Files.write(directory.resolve("8k.raw"), new byte[8192]);
        Files.createDirectory(directory.resolve("folder"));
    }

    static Stream<Arguments> userErrors() {
        return Stream.of(
                // bad input: 2
                error(2, "disk name 'bad name' may only contain letters, digits and . _ + - and must start with a letter,"
                        + " digit or _", "create", "{store}", "bad name", "--size", "1G"),
                error(2, "Invalid value for option '--size': '12Q' is not a size; write a whole number of bytes, optionally"
                        + " followed by K, M, G or T (powers of 1024), for example 64G or 512M (see: cairn create --help)",
                        "create", "{store}", "x", "--size", "12Q"),
                error(2, "Invalid value for option '--size': '-1' is not a size: sizes cannot be negative"
                        + " (see: cairn create --help)", "create", "{store}", "x", "--size", "-1"),
                error(2, "Invalid value for option '--size': '99999999999T' is too large: sizes are limited to 2^63 - 1"
                        + " bytes (see: cairn create --help)", "create", "{store}", "x", "--size", "99999999999T"),
                error(2, "disk size must be a multiple of 512 bytes, got 1000", "create", "{store}", "x", "--size", "1000"),
                error(2, "disk size must be positive, got 0", "create", "{store}", "x", "--size", "0"),
                error(2, "Missing required argument (specify one of these): (--size=SIZE | --from=NAME@SNAP)"
                        + " (see: cairn create --help)", "create", "{store}", "x"),
                error(2, "--size=SIZE, --from=NAME@SNAP are mutually exclusive (specify only one) (see: cairn create --help)",
                        "create", "{store}", "x", "--size", "1G", "--from", "base@gold"),
                error(2, "label '123' is all digits, which would read as a snapshot id", "snapshot", "{store}", "base", "--label", "123"),
                error(2, "label 'a@b' must not contain '@', '/' or control characters", "label", "{store}", "base@gold", "a@b"),
                error(2, "'base' is not a snapshot reference; write NAME@ID or NAME@LABEL", "label", "{store}", "base", "x"),
                error(2, "--with-snapshots applies to disks; 'base@gold' is a snapshot", "delete", "{store}", "base@gold",
                        "--with-snapshots"),
                error(2, "{dir}/empty.raw is empty; give the size of the disk with --size", "import", "{store}", "new",
                        "{dir}/empty.raw"),
                error(2, "{dir}/8k.raw holds 8192 bytes, more than --size 4096", "import", "{store}", "new", "{dir}/8k.raw",
                        "--size", "4K"),
                error(2, "disk name '-x' may only contain letters, digits and . _ + - and must start with a letter, digit or _",
                        "import", "{store}", "--", "-x", "{dir}/8k.raw"),
                error(2, "{dir}/folder is a directory, not a store", "list", "{dir}/folder"),
                error(2, "Unmatched argument at index 2: 'extra' (see: cairn list --help)", "list", "{store}", "extra"),
                error(2, "Unmatched argument at index 0: 'frobnicate' (see: cairn --help)", "frobnicate"),
                error(2, "--extent-size must be a power of two of at least 256 KiB, got 3000000 bytes", "format",
                        "{dir}/new.img", "--size", "1G", "--extent-size", "3000000"),
                error(2, "a store needs at least two extents of 1048576 bytes; 1048576 bytes is too small", "format",
                        "{dir}/new.img", "--size", "1M", "--extent-size", "1M"),
                // not found: 3
                error(3, "no store at {dir}/none.img (create one with: cairn format {dir}/none.img --size 64G)",
                        "list", "{dir}/none.img"),
                error(3, "no disk named 'nobody'", "snapshot", "{store}", "nobody"),
                error(3, "no disk named 'nobody'", "snapshot", "{store}", "nobody", "--label", "x"),
                error(3, "no disk named 'nobody'", "snapshots", "{store}", "nobody"),
                error(3, "no disk named 'nobody'", "delete", "{store}", "nobody"),
                error(3, "disk 'base' has no snapshot labelled nope", "create", "{store}", "x", "--from", "base@nope"),
                error(3, "disk 'base' has no snapshot with id 77", "delete", "{store}", "base@77"),
                error(3, "disk 'base' has no snapshot with id 77", "label", "{store}", "base@77", "x"),
                error(3, "disk 'base' has no snapshot labelled nope", "export", "{store}", "base@nope", "{dir}/out.raw"),
                error(3, "no image at {dir}/none.raw", "import", "{store}", "new", "{dir}/none.raw"),
                // conflicts: 4
                error(4, "a disk named 'base' already exists", "create", "{store}", "base", "--size", "1G"),
                error(4, "a disk named 'base' already exists", "create", "{store}", "base", "--from", "base@gold"),
                error(4, "a disk named 'base' already exists", "import", "{store}", "base", "{dir}/8k.raw"),
                error(4, "disk 'base' already has a snapshot labelled 'gold' (id 1)", "snapshot", "{store}", "base", "--label", "gold"),
                error(4, "disk 'base' has 1 snapshot(s); delete them first or pass --with-snapshots", "delete", "{store}", "base"),
                error(4, "{store} already exists; remove it first to make a new store there", "format", "{store}", "--size", "1G"),
                error(4, "{dir}/8k.raw already exists; pass --force to overwrite it", "export", "{store}", "base", "{dir}/8k.raw"),
                // storage: 5
                error(5, "not a Cairn store: the device holds only 11 bytes", "list", "{dir}/junk"),
                error(5, "not a Cairn store: the device holds only 11 bytes", "create", "{dir}/junk", "x", "--size", "1M"));
    }

    private static Arguments error(int exitCode, String message, String... args) {
        return Arguments.of(String.join(" ", args), exitCode, message, List.of(args));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("userErrors")
    void userErrorGivesOneLineAnExitCodeAndChangesNothing(String command, int exitCode, String message, List<String> args)
            throws IOException {
        Snapshot before = snapshotOfDirectory();
        Cli.Result result = Cli.run(args.stream().map(this::expand).toArray());
        assertEquals(exitCode, result.exitCode(), result::toString);
        assertEquals("cairn: " + expand(message) + "\n", result.err(), result::toString);
        assertEquals("", result.out(), result::toString);
        assertEquals(before, snapshotOfDirectory(), "the command changed files: " + command);
    }

    @Test
    void storeHeldByAnotherOwnerIsAConflict() throws IOException {
        try (Store held = Store.openFile(store, StoreOptions.defaults())) {
            Snapshot before = snapshotOfDirectory();
            Cli.Result result = Cli.run("create", store, "x", "--size", "1M");
            assertEquals(4, result.exitCode(), result::toString);
            assertTrue(result.err().startsWith("cairn: ") && result.err().lines().count() == 1, result::toString);
            assertEquals(before, snapshotOfDirectory());
        }
    }

    @Test
    void corruptSuperblocksAreAStorageError() throws IOException {
        byte[] image = Files.readAllBytes(store);
        image[100] ^= 1;      // inside superblock slot A
        image[4096 + 100] ^= 1; // inside slot B
        Files.write(store, image);
        Cli.Result result = Cli.run("list", store);
        assertEquals(5, result.exitCode(), result::toString);
        assertTrue(result.err().startsWith("cairn: corrupt metadata in block "), result::toString);
        assertEquals(1, result.err().lines().count(), result::toString);
    }

    @Test
    void debugShowsTheStackTraceAndKeepsTheExitCode() {
        Cli.Result result = Cli.run("--debug", "snapshot", store, "nobody");
        assertEquals(3, result.exitCode());
        assertTrue(result.err().startsWith("cairn: no disk named 'nobody'\n"), result::toString);
        assertTrue(result.err().contains("\tat io.cairn.volume.Store"), result::toString);

        Cli.Result quiet = Cli.run("snapshot", store, "nobody");
        assertFalse(quiet.err().contains("\tat "), quiet::toString);
    }

    @Test
    @SuppressWarnings("unchecked")
    void importThatRunsOutOfSpaceTakesTheHalfImportedDiskAway() throws IOException {
        Path small = directory.resolve("small.img");
        assertEquals(0, Cli.run("format", small, "--size", "4M", "--extent-size", "256K").exitCode());
        byte[] data = new byte[8 << 20];
        Arrays.fill(data, (byte) 7);
        Path image = directory.resolve("big.raw");
        Files.write(image, data);

        Cli.Result result = Cli.run("import", small, "big", image);
        assertEquals(5, result.exitCode(), result::toString);
        assertTrue(result.err().startsWith("cairn: no free data block left in the store"), result::toString);
        assertEquals(1, result.err().lines().count(), result::toString);
        assertEquals("NAME  ID  SIZE  PARENT  SNAPSHOTS  CREATED\n", Cli.run("list", small).out());
        // The space the partial copy took is free again once the command has exited.
        Map<String, Object> space = (Map<String, Object>) JsonParser.parseObject(Cli.run("info", small, "--json").out())
                .get("space");
        assertTrue((Long) space.get("dataBytes") < 256 << 10, space::toString);
    }

    @Test
    void failedExportLeavesNoImageBehind() {
        Path image = directory.resolve("out.raw");
        assertEquals(3, Cli.run("export", store, "nobody", image).exitCode());
        assertFalse(Files.exists(image));
    }

    private String expand(Object text) {
        return String.valueOf(text).replace("{store}", store.toString()).replace("{dir}", directory.toString());
    }

    /** Names and content digests of every file in the directory. */
    private record Snapshot(List<String> files) {
    }

    private Snapshot snapshotOfDirectory() throws IOException {
        try (Stream<Path> paths = Files.walk(directory)) {
            return new Snapshot(paths.sorted().map(path -> directory.relativize(path) + " " + digest(path)).toList());
        }
    }

    private static String digest(Path path) {
        if (Files.isDirectory(path)) {
            return "dir";
        }
        try (InputStream in = new DigestInputStream(Files.newInputStream(path), MessageDigest.getInstance("SHA-256"))) {
            MessageDigest digest = ((DigestInputStream) in).getMessageDigest();
            in.transferTo(java.io.OutputStream.nullOutputStream());
            return java.util.HexFormat.of().formatHex(digest.digest()) + " " + Files.size(path);
        } catch (IOException | NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }
}
