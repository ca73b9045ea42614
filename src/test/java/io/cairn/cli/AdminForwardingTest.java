package io.cairn.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(30)
class AdminForwardingTest {

    @TempDir
    Path directory;

    @Test
    void aServerThatDiesBeforeAnsweringIsOneErrorLineWithTheStorageExitCode() throws Exception {
        Path store = Files.createFile(directory.resolve("store.cairn"));
        Path socket = AdminEndpoint.socketFor(store);
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(socket));
            Thread dying = Thread.ofVirtual().start(() -> {
                try (SocketChannel client = server.accept()) {
                    client.read(ByteBuffer.allocate(4)); // takes the request, then dies without a word
                } catch (Exception ignored) {
                    // the test sees the outcome on the client side
                }
            });
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            Optional<Integer> exit = AdminForwarding.forwardIfServed(new String[] {"snapshot", store.toString(), "vm"},
                    new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
            dying.join();
            assertEquals(Optional.of(ExitCodes.STORAGE), exit);
            assertEquals("", out.toString(StandardCharsets.UTF_8));
            String message = err.toString(StandardCharsets.UTF_8);
            assertTrue(message.startsWith("cairn: the server of " + store + " stopped before answering"), message);
            assertTrue(message.endsWith("may or may not have been carried out\n"), message);
            assertEquals(1, message.lines().count(), message);
        } finally {
            Files.deleteIfExists(socket);
        }
    }
}
