package io.cairn.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Compares tool output with the files in {@code src/test/resources/golden}. Timestamps vary from run
 * to run and are replaced by a placeholder of the same width (so column alignment is still checked).
 * Run with {@code -Dcairn.golden.update=true} to rewrite the files after an intended change, then
 * review the diff.
 */
final class Golden {

    static final Path DIRECTORY = Path.of("src", "test", "resources", "golden");
    static final String TIME_PLACEHOLDER = "YYYY-MM-DDTHH:MM:SSZ";

    private Golden() {
    }

    static String normalise(String output) {
        return output.replaceAll("\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z", TIME_PLACEHOLDER);
    }

    static void assertMatches(String fileName, String output) throws IOException {
        Path file = DIRECTORY.resolve(fileName);
        String actual = normalise(output);
        if (Boolean.getBoolean("cairn.golden.update")) {
            Files.createDirectories(DIRECTORY);
            Files.writeString(file, actual);
            return;
        }
        if (!Files.exists(file)) {
            throw new AssertionError("no golden file " + file.toAbsolutePath() + " (run with -Dcairn.golden.update=true"
                    + " to create it); the output was:\n" + actual);
        }
        assertEquals(Files.readString(file), actual, "output differs from " + file);
    }
}
