package io.cairn.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Connections relayed by one server to another that serves their export ({@link Relay}): with and without
 * structured replies and metadata contexts, an unreachable other server, and either side ending the session.
 */
class RelayTest {

    private static final long DISK_BYTES = 8L << 20;

    private MemoryCatalog remoteCatalog;
    private NbdServer remote;
    private InetSocketAddress remoteAddress;
    private MemoryCatalog localCatalog;
    private NbdServer local;
    private InetSocketAddress localAddress;
    /** Where the local server says "disk" is served; changed by tests. */
    private volatile InetSocketAddress diskServedAt;

    @BeforeEach
    void setUp() throws IOException {
        remoteCatalog = new MemoryCatalog().add("disk", "the relayed disk", new MemoryExport(DISK_BYTES, false));
        remote = new NbdServer(remoteCatalog);
        remoteAddress = remote.listenTcp("127.0.0.1", 0);
        diskServedAt = remoteAddress;
        localCatalog = new MemoryCatalog().add("here", "a disk served here", new MemoryExport(DISK_BYTES, false));
        local = new NbdServer(new ExportCatalog() {
            @Override
            public List<ExportDescription> list() {
                return localCatalog.list();
            }

            @Override
            public NbdExport open(String name) throws NoSuchExportException {
                if (name.equals("disk")) {
                    throw new ServedElsewhereException(name, diskServedAt);
                }
                return localCatalog.open(name);
            }

            @Override
            public Optional<String> defaultExportName() {
                return Optional.empty();
            }
        });
        localAddress = local.listenTcp("127.0.0.1", 0);
    }

    @AfterEach
    void tearDown() {
        local.close();
        remote.close();
    }

    @Test
    void aRelayedConnectionWritesReadsFlushesAndReportsHolesOnTheOtherServer() throws Exception {
        byte[] data = MemoryExport.pattern(7, 64 << 10);
        try (NbdTestClient client = NbdTestClient.connect(localAddress, "disk")) {
            assertEquals(DISK_BYTES, client.sizeBytes());
            client.write(1 << 20, data, false);
            client.flush();
            assertArrayEquals(data, client.read(1 << 20, data.length));
            // base:allocation was set through the relay (the first option naming the disk), so the other
            // server's holes come back.
            List<Extent> extents = client.blockStatus(0, 2 << 20);
            assertEquals(Extent.HOLE, extents.getFirst().flags() & Extent.HOLE, "the start of the disk is a hole: " + extents);
            assertTrue(extents.stream().anyMatch(extent -> (extent.flags() & Extent.HOLE) == 0), "the written range is data: " + extents);
        }
        assertArrayEquals(data, remoteCatalog.export("disk").contents(1 << 20, data.length), "the write landed on the other server");
        awaitNoConnections();
    }

    @Test
    void aClientWithoutStructuredRepliesIsRelayedAtGo() throws Exception {
        byte[] data = MemoryExport.pattern(11, 4096);
        try (NbdTestClient client = NbdTestClient.connect(localAddress, "disk", false)) {
            client.write(4096, data, true);
            assertArrayEquals(data, client.read(4096, data.length));
        }
        assertArrayEquals(data, remoteCatalog.export("disk").contents(4096, data.length));
        awaitNoConnections();
    }

    @Test
    void anUnreachableServerGetsTheClientAnErrorAndTheServerServesOn() throws Exception {
        int closedPort;
        try (ServerSocket probe = new ServerSocket(0)) {
            closedPort = probe.getLocalPort();
        }
        diskServedAt = new InetSocketAddress("127.0.0.1", closedPort);
        IOException refused = assertThrows(IOException.class, () -> NbdTestClient.connect(localAddress, "disk"));
        assertTrue(refused.getMessage().contains("cannot be reached"), refused.getMessage());
        byte[] data = MemoryExport.pattern(3, 4096);
        try (NbdTestClient client = NbdTestClient.connect(localAddress, "here")) {
            client.write(0, data, false);
            assertArrayEquals(data, client.read(0, data.length));
        }
        awaitNoConnections();
    }

    @Test
    void whenTheOtherServerEndsTheSessionSoDoesTheRelay() throws Exception {
        try (NbdTestClient client = NbdTestClient.connect(localAddress, "disk")) {
            client.write(0, MemoryExport.pattern(5, 4096), false);
            assertEquals(1, remote.disconnect(name -> name.equals("disk")));
            assertThrows(IOException.class, () -> client.read(0, 4096));
        }
        awaitNoConnections();
        assertEquals(0, remoteCatalog.openHandles());
    }

    @Test
    void endingTheLocalConnectionEndsTheRelayedOneAfterItsRepliesAreIn() throws Exception {
        // The other server's export holds a read until released, so the request is surely in flight there.
        java.util.concurrent.CountDownLatch reading = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        MemoryExport backing = new MemoryExport(DISK_BYTES, false);
        ExportCatalog slowCatalog = new ExportCatalog() {
            @Override
            public List<ExportDescription> list() {
                return List.of(new ExportDescription("disk", "slow"));
            }

            @Override
            public NbdExport open(String name) {
                return new ForwardingExport(backing) {
                    @Override
                    public void read(long offsetBytes, java.nio.ByteBuffer dst) {
                        reading.countDown();
                        try {
                            release.await();
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                        super.read(offsetBytes, dst);
                    }
                };
            }
        };
        try (NbdServer slow = new NbdServer(slowCatalog)) {
            diskServedAt = slow.listenTcp("127.0.0.1", 0);
            NbdTestClient client = NbdTestClient.connect(localAddress, "disk", false);
            long cookie = client.startRead(0, 1 << 20);
            assertTrue(reading.await(10, java.util.concurrent.TimeUnit.SECONDS), "the read reached the other server");
            // As in a migration: the local server stops reading the client's connection to the disk; the read
            // in flight is answered once the other server has done it.
            Thread releaser = Thread.ofPlatform().start(() -> {
                try {
                    Thread.sleep(200);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                release.countDown();
            });
            assertEquals(1, local.disconnect(name -> name.equals("disk")));
            releaser.join();
            assertEquals(1 << 20, client.finishRead(cookie, 0, 1 << 20).length, "the request in flight was answered");
            client.close();
            long deadline = System.nanoTime() + 10_000_000_000L;
            while ((local.connectionCount() > 0 || slow.connectionCount() > 0) && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertEquals(0, local.connectionCount());
            assertEquals(0, slow.connectionCount());
        }
    }

    private void awaitNoConnections() throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while ((local.connectionCount() > 0 || remote.connectionCount() > 0) && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertEquals(0, local.connectionCount(), "connections to the relaying server");
        assertEquals(0, remote.connectionCount(), "connections to the other server");
    }
}
