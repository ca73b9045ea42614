package io.cairn.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The real launcher, {@code bin/cairn}, as a user runs it: a separate process, exit codes and streams. */
class CliIT {

    private static final long PROCESS_TIMEOUT_SECONDS = 120;

    @TempDir
    Path directory;

    private record Result(int exitCode, String out, String err) {
    }

    private Result cairn(String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(Path.of("bin", "cairn").toAbsolutePath().toString()));
        command.addAll(List.of(args));
        Path out = directory.resolve("stdout");
        Path err = directory.resolve("stderr");
        Process process = new ProcessBuilder(command)
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                .redirectOutput(out.toFile())
                .redirectError(err.toFile())
                .start();
        if (!process.waitFor(PROCESS_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new AssertionError("bin/cairn " + String.join(" ", args) + " did not finish in "
                    + PROCESS_TIMEOUT_SECONDS + " s");
        }
        return new Result(process.exitValue(), Files.readString(out), Files.readString(err));
    }

    @Test
    @SuppressWarnings("unchecked")
    void formatCreateSnapshotCloneAndListAsJson() throws Exception {
        String store = directory.resolve("store.img").toString();
        Result formatted = cairn("format", store, "--size", "64M", "--extent-size", "1M");
        assertEquals(0, formatted.exitCode(), formatted::toString);
        assertEquals("", formatted.err());
        assertEquals(0, cairn("create", store, "vm", "--size", "1G").exitCode());
        Result snapshot = cairn("snapshot", store, "vm", "--label", "base");
        assertEquals(new Result(0, "1\n", ""), snapshot);
        assertEquals(0, cairn("create", store, "clone", "--from", "vm@base").exitCode());

        Result list = cairn("list", store, "--json");
        assertEquals(0, list.exitCode(), list::toString);
        assertEquals("", list.err());
        List<Map<String, Object>> disks = (List<Map<String, Object>>) JsonParser.parseObject(list.out()).get("disks");
        assertEquals(List.of("vm", "clone"), disks.stream().map(disk -> disk.get("name")).toList());
        assertEquals(1L << 30, disks.get(1).get("sizeBytes"));
        assertEquals("vm@1", disks.get(1).get("parent"));
    }

    @Test
    void errorsAreOneLineOnStderrWithTheirExitCode() throws Exception {
        Path missing = directory.resolve("missing.img");
        Result result = cairn("list", missing.toString());
        assertEquals(3, result.exitCode(), result::toString);
        assertEquals("", result.out());
        assertEquals("cairn: no store at " + missing + " (create one with: cairn format " + missing + " --size 64G)\n",
                result.err());

        Result usage = cairn("create");
        assertEquals(2, usage.exitCode(), usage::toString);
        assertTrue(usage.err().startsWith("cairn: Missing required parameter"), usage::toString);
        assertEquals(1, usage.err().lines().count(), usage::toString);
    }
}
