package io.cairn.nbd;

import static io.cairn.nbd.NbdTestFixture.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The server over real sockets with our own client: permissions, concurrency, isolation, shutdown, stdio. */
@Timeout(120)
class ServerIT {

    private NbdTestFixture fixture;

    @BeforeEach
    void setUp() throws Exception {
        fixture = NbdTestFixture.start();
    }

    @AfterEach
    void tearDown() throws Exception {
        fixture.close();
    }

    private SocketAddress unix() {
        return UnixDomainSocketAddress.of(fixture.unixSocket());
    }

    @Test
    void readOnlyExportRefusesWritesWithEperm() throws Exception {
        try (NbdTestClient client = NbdTestClient.connect(fixture.tcpAddress(), GOLDEN)) {
            assertTrue((client.transmissionFlags() & NbdConstants.FLAG_READ_ONLY) != 0);
            assertEquals(NbdConstants.EPERM, assertThrows(NbdTestClient.NbdError.class,
                    () -> client.write(0, new byte[512], false)).error);
            assertEquals(NbdConstants.EPERM, assertThrows(NbdTestClient.NbdError.class,
                    () -> client.trim(0, 4096)).error);
            assertEquals(NbdConstants.EPERM, assertThrows(NbdTestClient.NbdError.class,
                    () -> client.writeZeroes(0, 4096, 0)).error);
            assertArrayEquals(Arrays.copyOf(goldenContent(), 4096), client.read(0, 4096), "still usable, unchanged");
        }
    }

    @Test
    void sixtyFourConcurrentConnections() throws Exception {
        int connections = 64;
        int regionBytes = 200_003;
        CountDownLatch allConnected = new CountDownLatch(connections);
        List<Future<Void>> results = new ArrayList<>();
        try (ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < connections; i++) {
                int index = i;
                results.add(executor.submit(() -> {
                    SocketAddress address = index % 2 == 0 ? fixture.tcpAddress() : unix();
                    try (NbdTestClient client = NbdTestClient.connect(address, DISK)) {
                        allConnected.countDown();
                        assertTrue(allConnected.await(60, TimeUnit.SECONDS), "all connections open at once");
                        long offset = 7 + (long) index * regionBytes;
                        byte[] data = MemoryExport.pattern(index, regionBytes);
                        for (int chunk = 0; chunk < regionBytes; chunk += 65_536) {
                            int length = Math.min(65_536, regionBytes - chunk);
                            client.write(offset + chunk, Arrays.copyOfRange(data, chunk, chunk + length), chunk == 0);
                        }
                        client.flush();
                        assertArrayEquals(data, client.read(offset, regionBytes), "connection " + index);
                        assertEquals(0, client.blockStatus(offset, 4096).getFirst().flags() & Extent.HOLE);
                        byte[] golden = fixture.contents(GOLDEN, index * 4096L, 4096);
                        assertArrayEquals(Arrays.copyOfRange(goldenContent(), index * 4096, index * 4096 + 4096), golden);
                    }
                    return null;
                }));
            }
            for (Future<Void> result : results) {
                result.get(90, TimeUnit.SECONDS);
            }
        }
        for (int i = 0; i < connections; i++) {
            assertArrayEquals(MemoryExport.pattern(i, regionBytes), fixture.contents(DISK, 7 + (long) i * regionBytes, regionBytes));
        }
    }

    @Test
    void garbageOnOneConnectionDoesNotDisturbAnother() throws Exception {
        try (NbdTestClient good = NbdTestClient.connect(fixture.tcpAddress(), DISK)) {
            for (SocketAddress address : List.of(fixture.tcpAddress(), unix())) {
                try (SocketChannel bad = SocketChannel.open(address)) {
                    byte[] garbage = new Wire.Builder().modernClient().infoOrGo(NbdConstants.OPT_GO, DISK)
                            .request(0, NbdConstants.CMD_WRITE, 1, 0, 0xffff_fff0L).raw(new byte[5000]).bytes();
                    bad.write(ByteBuffer.wrap(garbage));
                }
                try (SocketChannel bad = SocketChannel.open(address)) {
                    bad.write(ByteBuffer.wrap(MemoryExport.pattern(3, 10_000)));
                }
            }
            good.write(4096, new byte[] {1, 2, 3}, false);
            assertArrayEquals(new byte[] {1, 2, 3}, good.read(4096, 3));
        }
    }

    @Test
    void closeStopsListeningAndEndsConnections() throws Exception {
        NbdTestClient client = NbdTestClient.connect(fixture.tcpAddress(), DISK);
        client.write(0, new byte[] {9}, false);
        long start = System.nanoTime();
        fixture.server().close();
        assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(5), "close does not hang");
        assertThrows(IOException.class, () -> client.read(0, 1), "the connection was closed");
        client.close();
        assertThrows(IOException.class, () -> SocketChannel.open(fixture.tcpAddress()).close());
        assertTrue(!java.nio.file.Files.exists(fixture.unixSocket()), "the Unix socket file is removed");
        assertEquals(0, fixture.server().connectionCount());
    }

    @Test
    void inetdModeOverStdinAndStdoutPipes() throws Exception {
        // Pipes, not sockets: the server falls back to plain stdin/stdout.
        Process process = new ProcessBuilder(NbdTestFixture.inetdServerCommand())
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        byte[] data = MemoryExport.pattern(8, 1000);
        try (var stdin = process.getOutputStream()) {
            stdin.write(new Wire.Builder().modernClient().infoOrGo(NbdConstants.OPT_GO, GOLDEN)
                    .request(0, NbdConstants.CMD_READ, 1, 100, 1000)
                    .write(0, 2, 0, data)
                    .disconnect().bytes());
        }
        byte[] output = process.getInputStream().readAllBytes();
        assertTrue(process.waitFor(30, TimeUnit.SECONDS), "the server exits after DISC");
        Wire.Reader server = new Wire.Reader(output).greeting();
        while (server.optionReply().type() != NbdConstants.REP_ACK) {
            // INFO replies of GO
        }
        Map<Long, Wire.Reply> replies = server.replies(Map.of(1L, 1000));
        assertArrayEquals(Arrays.copyOfRange(goldenContent(), 100, 1100), replies.get(1L).data());
        assertEquals(NbdConstants.EPERM, replies.get(2L).error());
    }
}
