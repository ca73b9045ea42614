package io.cairn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Keeps the layers of DESIGN.md §2 honest: a package may use only the packages below it.
 * A plain scan of {@code src/main/java} for references to {@code io.cairn.<layer>} (imports, static
 * imports and fully qualified names), with comments and string literals removed first.
 */
class LayeringTest {

    private static final String ROOT_PACKAGE = "io.cairn";

    /** Layer → the layers it may use. A layer not listed here is an error until it is placed. */
    static final Map<String, Set<String>> ALLOWED = Map.ofEntries(
            Map.entry("io", Set.of()),
            Map.entry("cluster", Set.of("io")),
            Map.entry("format", Set.of("io")),
            Map.entry("alloc", Set.of("format", "io", "cluster")),
            Map.entry("tree", Set.of("alloc", "format", "io")),
            Map.entry("volume", Set.of("tree", "alloc", "format", "io", "cluster")),
            Map.entry("space", Set.of("volume", "tree", "alloc", "format", "io", "cluster")),
            Map.entry("gc", Set.of("volume", "tree", "alloc", "format", "io", "cluster")),
            Map.entry("nbd", Set.of("space", "gc", "volume", "tree", "alloc", "format", "io", "cluster")),
            Map.entry("cli", Set.of("*")));

    private static final Pattern PACKAGE_DECLARATION = Pattern.compile("^\\s*package\\s+([\\w.]+)\\s*;", Pattern.MULTILINE);
    private static final Pattern LAYER_REFERENCE = Pattern.compile("\\b" + Pattern.quote(ROOT_PACKAGE) + "\\.([a-z_][\\w]*)\\b");
    private static final Pattern COMMENTS_AND_LITERALS = Pattern.compile(
            "//[^\\n]*|/\\*.*?\\*/|\"\"\".*?\"\"\"|\"(?:\\\\.|[^\"\\\\\\n])*\"|'(?:\\\\.|[^'\\\\\\n])*'", Pattern.DOTALL);

    @Test
    void mainSourcesRespectTheLayers() {
        Path sources = Path.of("src", "main", "java");
        assertTrue(Files.isDirectory(sources), "run from the repository root: " + sources.toAbsolutePath());
        Scan scan = scan(sources);
        assertTrue(scan.filesByLayer.getOrDefault("io", 0) >= 3, "the scan must see the io layer: " + scan.filesByLayer);
        assertEquals(List.of(), scan.violations);
    }

    @Test
    void checkerCatchesUpwardAndUnknownDependencies(@TempDir Path sources) throws IOException {
        write(sources, "io/cairn/io/Device.java", """
                package io.cairn.io;
                import io.cairn.tree.RadixTree;
                class Device { }
                """);
        write(sources, "io/cairn/format/Superblock.java", """
                package io.cairn.format;
                import static io.cairn.alloc.Extents.SIZE;
                class Superblock { io.cairn.volume.Volume owner; io.cairn.io.BlockDevice device; }
                """);
        write(sources, "io/cairn/tree/RadixTree.java", """
                package io.cairn.tree;
                import io.cairn.alloc.Allocator;
                // io.cairn.nbd.Server is only mentioned in a comment
                /* so is io.cairn.cli.Main */
                class RadixTree { String s = "io.cairn.volume.Volume"; }
                """);
        write(sources, "io/cairn/cli/Main.java", """
                package io.cairn.cli;
                import io.cairn.nbd.Server;
                import io.cairn.io.BlockDevice;
                class Main { }
                """);
        write(sources, "io/cairn/cache/LogRing.java", """
                package io.cairn.cache;
                class LogRing { }
                """);

        List<String> violations = scan(sources).violations;

        assertEquals(4, violations.size(), () -> String.join("\n", violations));
        assertTrue(violations.get(0).contains("io/cairn/cache/LogRing.java") && violations.get(0).contains("unknown layer 'cache'"), violations.get(0));
        assertTrue(violations.get(1).contains("Superblock.java") && violations.get(1).contains("format uses alloc"), violations.get(1));
        assertTrue(violations.get(2).contains("Superblock.java") && violations.get(2).contains("format uses volume"), violations.get(2));
        assertTrue(violations.get(3).contains("Device.java") && violations.get(3).contains("io uses tree"), violations.get(3));
    }

    record Scan(Map<String, Integer> filesByLayer, List<String> violations) {
    }

    static Scan scan(Path sourceRoot) {
        Map<String, Integer> filesByLayer = new java.util.TreeMap<>();
        List<String> violations = new ArrayList<>();
        try (Stream<Path> files = Files.walk(sourceRoot)) {
            for (Path file : files.filter(path -> path.toString().endsWith(".java")).sorted().toList()) {
                String where = sourceRoot.relativize(file).toString().replace('\\', '/');
                String source = COMMENTS_AND_LITERALS.matcher(Files.readString(file)).replaceAll(" ");
                Matcher declaration = PACKAGE_DECLARATION.matcher(source);
                if (!declaration.find()) {
                    violations.add(where + ": no package declaration");
                    continue;
                }
                String layer = layerOf(declaration.group(1));
                if (layer == null || !ALLOWED.containsKey(layer)) {
                    violations.add(where + ": unknown layer '" + (layer == null ? declaration.group(1) : layer)
                            + "'; place it in LayeringTest.ALLOWED and DESIGN.md");
                    continue;
                }
                filesByLayer.merge(layer, 1, Integer::sum);
                Set<String> allowed = ALLOWED.get(layer);
                Set<String> used = new TreeSet<>();
                Matcher reference = LAYER_REFERENCE.matcher(source.substring(declaration.end()));
                while (reference.find()) {
                    used.add(reference.group(1));
                }
                for (String target : used) {
                    if (!target.equals(layer) && !allowed.contains("*") && !allowed.contains(target)) {
                        violations.add(where + ": " + layer + " uses " + target + "; allowed: " + new TreeSet<>(allowed));
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return new Scan(filesByLayer, violations);
    }

    /** "io.cairn.volume.pipeline" → "volume"; a package outside io.cairn's layers → null. */
    private static String layerOf(String packageName) {
        if (!packageName.startsWith(ROOT_PACKAGE + ".")) {
            return null;
        }
        String rest = packageName.substring(ROOT_PACKAGE.length() + 1);
        int dot = rest.indexOf('.');
        return dot < 0 ? rest : rest.substring(0, dot);
    }

    private static void write(Path root, String relativePath, String source) throws IOException {
        Path file = root.resolve(relativePath);
        Files.createDirectories(file.getParent());
        Files.writeString(file, source);
    }
}
