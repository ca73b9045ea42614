package io.cairn.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

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
        Path real;
        try {
            real = store.toRealPath();
        } catch (IOException missing) {
            real = store.toAbsolutePath().normalize();
        }
        String runtime = System.getenv("XDG_RUNTIME_DIR");
        Path directory = runtime != null && !runtime.isEmpty() && Files.isDirectory(Path.of(runtime))
                ? Path.of(runtime) : Path.of(System.getProperty("java.io.tmpdir"));
        return directory.resolve("cairn-" + shortHash(real.toString()) + ".sock");
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
