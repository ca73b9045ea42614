package io.cairn.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/**
 * Where the admin socket of a store's server lives: a Unix socket in the runtime directory
 * ({@code $XDG_RUNTIME_DIR}, else {@code /tmp}), named from a hash of the store's real path, so any
 * command given the same STORE (however it was spelled) finds it, and a store on a read-only
 * location or a block device still gets one.
 */
final class AdminEndpoint {

    private AdminEndpoint() {
    }

    static Path socketFor(Path store) {
        return directory().resolve(prefix(store) + ".sock");
    }

    /** The admin socket of node {@code node} of a store served by several node processes. */
    static Path socketFor(Path store, String node) {
        return directory().resolve(prefix(store) + "@" + node + ".sock");
    }

    /** Admin sockets of the nodes serving {@code store} together, sorted by name (empty if none). */
    static List<Path> nodeSockets(Path store) {
        String prefix = prefix(store) + "@";
        try (java.util.stream.Stream<Path> entries = Files.list(directory())) {
            return entries.filter(path -> {
                String name = path.getFileName().toString();
                return name.startsWith(prefix) && name.endsWith(".sock");
            }).sorted().toList();
        } catch (IOException unreadable) {
            return List.of();
        }
    }

    private static String prefix(Path store) {
        Path real;
        try {
            real = store.toRealPath();
        } catch (IOException missing) {
            real = store.toAbsolutePath().normalize();
        }
        return "cairn-" + shortHash(real.toString());
    }

    private static Path directory() {
        String runtime = System.getenv("XDG_RUNTIME_DIR");
        return runtime != null && !runtime.isEmpty() && Files.isDirectory(Path.of(runtime))
                ? Path.of(runtime) : Path.of(System.getProperty("java.io.tmpdir"));
    }

    private static String shortHash(String text) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(digest, 0, 8);
        } catch (NoSuchAlgorithmException impossible) {
            throw new IllegalStateException(impossible);
        }
    }
}
