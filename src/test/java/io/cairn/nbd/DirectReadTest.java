package io.cairn.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.cairn.io.SocketDescriptor;
import io.cairn.io.StorageException;
import io.cairn.nbd.store.StoreExportCatalog;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * READs answered straight from the store file ({@link NbdExport#sendTo}, Transmission design note 5)
 * over real sockets: content with holes, both reply styles, TCP and Unix sockets, a client that stops
 * reading, errors before and after the reply started, and blocks freed and reused while reads run.
 */
class DirectReadTest {

    private static final long DISK_BYTES = 48L << 20;
    /** Data regions of the disk as [offset, length]; everything else is a hole. */
    private static final long[][] DATA = {{0, 3 << 20}, {(5L << 20) + 4096, 200 << 10}, {16L << 20, 16L << 20}};

    @TempDir
    Path directory;

    private Store store;
    private NbdServer server;
    private InetSocketAddress tcp;
    private Path unixSocket;
    private byte[] content;
    /** Calls the server made of the export's sendTo and read. */
    private final AtomicInteger sends = new AtomicInteger();
    private final AtomicInteger reads = new AtomicInteger();
    /** What the next sendTo does instead of sending, if set. */
    private final AtomicReference<RuntimeException> sendFailure = new AtomicReference<>();
    private final AtomicBoolean failAfterHeader = new AtomicBoolean();

    @BeforeEach
    void setUp() throws IOException {
        store = Store.formatFile(directory.resolve("store.cairn"), 512L << 20, 256, StoreOptions.defaults());
        store.create("disk", DISK_BYTES);
        store.create("other", DISK_BYTES);
        content = new byte[(int) DISK_BYTES];
        try (Volume disk = store.openVolume("disk")) {
            for (long[] region : DATA) {
                byte[] bytes = MemoryExport.pattern(region[0], (int) region[1]);
                disk.write(region[0], ByteBuffer.wrap(bytes), false);
                System.arraycopy(bytes, 0, content, (int) region[0], bytes.length);
            }
        }
        store.commit();
        server = new NbdServer(new CountingCatalog(new StoreExportCatalog(store, "disk")), MetaContexts.standard(), true);
        tcp = server.listenTcp("127.0.0.1", 0);
        unixSocket = directory.resolve("nbd.sock");
        server.listenUnix(unixSocket);
    }

    @AfterEach
    void tearDown() {
        if (server != null) {
            server.close();
        }
        if (store != null) {
            store.close();
        }
    }

    @Test
    void theTestJvmCanReachSocketDescriptors() throws IOException {
        // Without --add-exports every test here would pass through the copy path and prove nothing.
        try (ServerSocketChannel listener = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0));
             SocketChannel client = SocketChannel.open(listener.getLocalAddress());
             SocketChannel accepted = listener.accept()) {
            SocketDescriptor descriptor = SocketDescriptor.of(accepted, 10);
            assertNotNull(descriptor, "the test JVM needs --add-exports java.base/sun.nio.ch=ALL-UNNAMED");
            descriptor.close();
        }
    }

    @Test
    void largeReadsOverTcpMatchTheDiskWithHolesAsZeros() throws IOException {
        readEverywhere(tcp, true);
        readEverywhere(tcp, false);
        // Every large read went the direct way (a copy happens only for the rest of one that stalled).
        assertEquals(20, sends.get());
    }

    @Test
    void largeReadsOverAUnixSocketMatchTheDisk() throws IOException {
        readEverywhere(UnixDomainSocketAddress.of(unixSocket), true);
        readEverywhere(UnixDomainSocketAddress.of(unixSocket), false);
        assertEquals(20, sends.get());
    }

    @Test
    void smallReadsAreCopiedAsBefore() throws IOException {
        try (NbdTestClient client = NbdTestClient.connect(tcp, "disk")) {
            int length = Transmission.SEND_MIN_BYTES - 512;
            assertArrayEquals(expected(4096, length), client.read(4096, length));
        }
        assertEquals(0, sends.get());
        assertEquals(1, reads.get());
    }

    @Test
    void aServerWithoutDirectReadsCopiesEveryRead() throws IOException {
        try (NbdServer copying = new NbdServer(new CountingCatalog(new StoreExportCatalog(store, "disk")))) {
            InetSocketAddress address = copying.listenTcp("127.0.0.1", 0);
            try (NbdTestClient client = NbdTestClient.connect(address, "disk")) {
                assertArrayEquals(expected(0, 4 << 20), client.read(0, 4 << 20));
            }
        }
        assertEquals(0, sends.get());
        assertEquals(1, reads.get());
    }

    @Test
    void aClientThatStopsReadingDoesNotHoldOffSnapshots() throws Exception {
        try (NbdTestClient client = NbdTestClient.connect(tcp, "disk")) {
            // 16 MiB is more than the socket buffers of both ends hold, so the send stalls part way.
            int length = 16 << 20;
            long offset = 16L << 20;
            long cookie = client.startRead(offset, length);
            waitFor(() -> sends.get() == 1);
            // The snapshot needs the I/O gate exclusively: it gets it once the stalled send gives up.
            CompletableFuture<?> snapshot = CompletableFuture.runAsync(() -> store.snapshot("disk", "while-stalled"));
            snapshot.get(30, TimeUnit.SECONDS);
            try (Volume disk = store.openVolume("disk")) {
                disk.write(0, ByteBuffer.wrap(new byte[1 << 20]), false); // outside the read; after the snapshot
            }
            assertArrayEquals(expected(offset, length), client.finishRead(cookie, offset, length));
            assertEquals(1, reads.get(), "the rest of the reply was read and copied");
            // The connection goes on, and sees the write.
            assertArrayEquals(new byte[1 << 20], client.read(0, 1 << 20));
        }
    }

    @Test
    void aFailureBeforeAnythingWasSentIsAnErrorReplyAndTheConnectionGoesOn() throws IOException {
        try (NbdTestClient structured = NbdTestClient.connect(tcp, "disk");
             NbdTestClient simple = NbdTestClient.connect(tcp, "disk", false)) {
            sendFailure.set(new StorageException(StorageException.Code.IO, "injected"));
            NbdTestClient.NbdError error = assertThrows(NbdTestClient.NbdError.class, () -> structured.read(0, 1 << 20));
            assertEquals(NbdConstants.EIO, error.error);
            assertTrue(error.getMessage().contains("injected"), error.getMessage());
            sendFailure.set(new IllegalArgumentException("injected"));
            assertEquals(NbdConstants.EINVAL, assertThrows(NbdTestClient.NbdError.class,
                    () -> simple.read(0, 1 << 20)).error);
            sendFailure.set(null);
            assertArrayEquals(expected(0, 1 << 20), structured.read(0, 1 << 20));
            assertArrayEquals(expected(0, 1 << 20), simple.read(0, 1 << 20));
        }
    }

    @Test
    void aFailureAfterTheHeaderWentOutEndsTheConnection() throws IOException {
        try (NbdTestClient client = NbdTestClient.connect(tcp, "disk")) {
            failAfterHeader.set(true);
            assertThrows(IOException.class, () -> client.read(0, 1 << 20));
        }
        failAfterHeader.set(false);
        try (NbdTestClient client = NbdTestClient.connect(tcp, "disk")) {
            assertArrayEquals(expected(0, 1 << 20), client.read(0, 1 << 20), "the server serves on");
        }
    }

    /**
     * Blocks of a range being sent are freed (trim, commit, reclamation) and handed to writes of another
     * disk over and over. A read may see the range's data or zeros, never the other disk's bytes: the
     * gate held while sending keeps freed blocks from being reused until the send is done.
     */
    @Test
    void readsNeverSeeFreedBlocksReusedByAnotherDisk() throws Exception {
        int length = 1 << 20;
        byte victimByte = (byte) 0xA1;
        byte otherByte = (byte) 0xB2;
        byte[] victim = new byte[length];
        Arrays.fill(victim, victimByte);
        byte[] other = new byte[length];
        Arrays.fill(other, otherByte);
        AtomicBoolean stop = new AtomicBoolean();
        AtomicInteger rounds = new AtomicInteger();
        try (Volume disk = store.openVolume("disk"); Volume otherDisk = store.openVolume("other")) {
            disk.write(0, ByteBuffer.wrap(victim), false);
            store.commit();
            CompletableFuture<Void> mutator = CompletableFuture.runAsync(() -> {
                while (!stop.get()) {
                    disk.trim(0, length, false);
                    store.commit(); // frees the blocks; reclamation makes them allocatable again
                    otherDisk.write((rounds.get() % 8) * (long) length, ByteBuffer.wrap(other), false);
                    disk.write(0, ByteBuffer.wrap(victim), false);
                    store.commit();
                    rounds.incrementAndGet();
                }
            });
            try (NbdTestClient client = NbdTestClient.connect(tcp, "disk")) {
                long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(1500);
                int readsDone = 0;
                while (System.nanoTime() < deadline || rounds.get() < 3 || readsDone < 20) {
                    byte[] data = client.read(0, length);
                    readsDone++;
                    for (int i = 0; i < length; i++) {
                        if (data[i] != victimByte && data[i] != 0) {
                            fail("byte " + i + " of read " + readsDone + " is 0x" + Integer.toHexString(data[i] & 0xff)
                                    + ", from a block reused by another disk");
                        }
                    }
                    if (mutator.isDone()) {
                        mutator.join(); // rethrows the mutator's failure
                    }
                }
            } finally {
                stop.set(true);
            }
            mutator.get(30, TimeUnit.SECONDS);
        }
        assertTrue(sends.get() >= 20);
    }

    /** Reads of many sizes and alignments, across data and holes, compared with the disk's content. */
    private void readEverywhere(SocketAddress address, boolean structured) throws IOException {
        long[][] reads = {
            {0, 1 << 20}, {4096, 256 << 10}, {511, 3 << 20}, {(3L << 20) - 100, 1 << 20},
            {5L << 20, 1 << 20}, {(5L << 20) + 4097, 300 << 10}, {6L << 20, 8 << 20},
            {16L << 20, 32 << 20}, {DISK_BYTES - (1 << 20), 1 << 20}, {DISK_BYTES - 262_145, 262_145},
        };
        try (NbdTestClient client = NbdTestClient.connect(address, "disk", structured)) {
            for (long[] read : reads) {
                int length = (int) read[1];
                assertArrayEquals(expected(read[0], length), client.read(read[0], length),
                        "read of " + length + " bytes at " + read[0] + (structured ? ", structured" : ", simple"));
            }
        }
    }

    private byte[] expected(long offset, int length) {
        return Arrays.copyOfRange(content, (int) offset, (int) offset + length);
    }

    private static void waitFor(java.util.function.BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                fail("condition not reached in 30 s");
            }
            Thread.sleep(5);
        }
    }

    /** Exports of the store, counting how reads are served, with failures injected on request. */
    private final class CountingCatalog implements ExportCatalog {

        private final ExportCatalog delegate;

        CountingCatalog(ExportCatalog delegate) {
            this.delegate = delegate;
        }

        @Override
        public List<ExportDescription> list() {
            return delegate.list();
        }

        @Override
        public Optional<String> defaultExportName() {
            return delegate.defaultExportName();
        }

        @Override
        public NbdExport open(String name) throws NoSuchExportException {
            return new ForwardingExport(delegate.open(name)) {
                @Override
                public long sendTo(long offsetBytes, int lengthBytes, ByteBuffer header, SocketDescriptor socket)
                        throws IOException {
                    sends.incrementAndGet();
                    RuntimeException failure = sendFailure.get();
                    if (failure != null) {
                        throw failure;
                    }
                    if (failAfterHeader.get()) {
                        socket.send(header, true);
                        throw new IOException("injected failure after the header");
                    }
                    return super.sendTo(offsetBytes, lengthBytes, header, socket);
                }

                @Override
                public void read(long offsetBytes, ByteBuffer dst) {
                    reads.incrementAndGet();
                    super.read(offsetBytes, dst);
                }
            };
        }
    }
}
