package io.cairn.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** Package-level rules: what nbd may depend on, and the wire sizes the constants promise. */
class NbdPackageTest {

    private static final Path SOURCES = Path.of("src/main/java/io/cairn/nbd");
    private static final Pattern CAIRN_IMPORT = Pattern.compile("^import (?:static )?(io\\.cairn\\.[\\w.]+);", Pattern.MULTILINE);

    @Test
    void nbdDependsOnNoOtherCairnPackageButTheStorageException() throws IOException {
        List<String> violations = new ArrayList<>();
        try (Stream<Path> files = Files.list(SOURCES)) {
            for (Path file : files.filter(path -> path.toString().endsWith(".java")).toList()) {
                String source = Files.readString(file);
                Matcher imports = CAIRN_IMPORT.matcher(source);
                while (imports.find()) {
                    String imported = imports.group(1);
                    if (!imported.startsWith("io.cairn.nbd.") && !imported.equals("io.cairn.io.StorageException")
                            && !imported.equals("io.cairn.io.SocketDescriptor")) {
                        violations.add(file.getFileName() + " imports " + imported);
                    }
                }
                // Fully qualified uses slip past import checks.
                Matcher qualified = Pattern.compile("io\\.cairn\\.(?!nbd\\b|io\\.StorageException\\b|io\\.SocketDescriptor\\b)[a-z]+\\.").matcher(source);
                if (qualified.find()) {
                    violations.add(file.getFileName() + " refers to " + qualified.group());
                }
            }
        }
        assertEquals(List.of(), violations);
    }

    @Test
    void wireSizesMatchTheSpec() {
        assertEquals(18, NbdConstants.GREETING_BYTES);
        assertEquals(16, NbdConstants.OPTION_HEADER_BYTES);
        assertEquals(28, NbdConstants.REQUEST_HEADER_BYTES);
        assertEquals(16, NbdConstants.SIMPLE_REPLY_HEADER_BYTES);
        assertEquals(20, NbdConstants.STRUCTURED_REPLY_HEADER_BYTES);
        assertEquals(28, new Request(0, 0, 0, 0, 0).encode().remaining());
        assertEquals(16, Replies.simpleReply(1, 0).remaining());
        assertEquals(20, Replies.noneChunk(1).remaining());
        assertEquals(0x80000001, NbdConstants.REP_ERR_UNSUP);
        assertEquals(0x8001, NbdConstants.REPLY_TYPE_ERROR);
        assertTrue(Integer.bitCount(NbdConstants.PREFERRED_BLOCK_BYTES) == 1
                && NbdConstants.MAX_PAYLOAD_BYTES >= NbdConstants.PREFERRED_BLOCK_BYTES, "spec constraints on block sizes");
    }

    @Test
    void longMessagesAreCutToTheSpecsStringLimitOnACharacterBoundary() {
        byte[] cut = Replies.truncatedUtf8("é".repeat(3000));
        assertEquals(4096, cut.length);
        assertEquals("é".repeat(2048), new String(cut, java.nio.charset.StandardCharsets.UTF_8));
    }
}
