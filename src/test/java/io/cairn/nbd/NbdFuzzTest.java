package io.cairn.nbd;

import static io.cairn.nbd.NbdConstants.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.AppenderBase;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.channels.WritableByteChannel;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.slf4j.LoggerFactory;

/**
 * Feeds the server malformed input: random bytes, valid sessions with random mutations, truncated
 * streams, absurd lengths and counts. For every input the connection must end without an internal
 * error, without letting a bad request through the gate, without allocating more than the input
 * could justify, and without leaking the export. Afterwards a well-behaved client on the same server
 * must still read and write correct data.
 *
 * <p>Replay: the seed is printed on failure. {@code -Dnbd.fuzz.seed=S} reruns a seed,
 * {@code -Dnbd.fuzz.case=N} runs only case N of it, {@code -Dnbd.fuzz.iterations=K} changes the count.
 */
class NbdFuzzTest {

    private static final int SCRATCH_BYTES = 1 << 20;
    private static final int GOLDEN_BYTES = 256 * 1024;
    private static final long GOLDEN_SEED = 77;
    private static final String[] NAMES = {"scratch", "golden", "", "missing", "scratch\u0000", "é"};
    private static final int[] ABSURD = {0, 1, -1, 0x7fff_ffff, 0x8000_0000, MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES + 1,
            MAX_OPTION_BYTES, MAX_OPTION_BYTES + 1, 4096, 4097, 0xffff, 0x10000};

    private MemoryCatalog catalog;
    private NbdServer server;
    private final AtomicLong largestAllocation = new AtomicLong();
    private final List<ILoggingEvent> errors = new CopyOnWriteArrayList<>();
    private AppenderBase<ILoggingEvent> errorCollector;

    @BeforeEach
    void setUp() {
        catalog = new MemoryCatalog()
                .add("scratch", "fuzzed", new MemoryExport(SCRATCH_BYTES, false))
                .add("golden", "never changes", MemoryExport.filled(GOLDEN_BYTES, true, GOLDEN_SEED))
                .withDefault("scratch");
        Connection.Limits limits = new Connection.Limits(16, 2 * MAX_PAYLOAD_BYTES, size -> {
            largestAllocation.accumulateAndGet(size, Math::max);
            return ByteBuffer.allocate(size);
        });
        server = new NbdServer(catalog, MetaContexts.standard(), limits);
        errorCollector = new AppenderBase<>() {
            @Override
            protected void append(ILoggingEvent event) {
                if (event.getLevel().isGreaterOrEqual(Level.ERROR)) {
                    errors.add(event);
                }
            }
        };
        errorCollector.start();
        ((ch.qos.logback.classic.Logger) LoggerFactory.getLogger("io.cairn.nbd")).addAppender(errorCollector);
    }

    @AfterEach
    void tearDown() {
        server.close();
        ((ch.qos.logback.classic.Logger) LoggerFactory.getLogger("io.cairn.nbd")).detachAppender(errorCollector);
    }

    @Test
    @Timeout(300)
    void malformedInputNeverHurtsTheServer() throws IOException {
        long seed = Long.getLong("nbd.fuzz.seed", new SplittableRandom().nextLong());
        int iterations = Integer.getInteger("nbd.fuzz.iterations", 100_000);
        Integer onlyCase = Integer.getInteger("nbd.fuzz.case");
        InetSocketAddress address = server.listenTcp("127.0.0.1", 0);
        try (NbdTestClient bystander = NbdTestClient.connect(address, "scratch")) {
            int first = onlyCase == null ? 0 : onlyCase;
            int last = onlyCase == null ? iterations - 1 : onlyCase;
            for (int i = first; i <= last; i++) {
                byte[] input = generate(new SplittableRandom(seed ^ (i * 0x9E3779B97F4A7C15L)));
                String replay = " [replay: -Dnbd.fuzz.seed=" + seed + " -Dnbd.fuzz.case=" + i + "]";
                // A few hundred cases go through real sockets, with a bystander connection open throughout.
                if (i % 300 == 0) {
                    runOverTcp(address, input, replay);
                } else {
                    runInMemory(input, replay);
                }
            }
            // The bystander's connection survived everything the fuzzer did to its neighbours.
            byte[] data = MemoryExport.pattern(seed, 10_000);
            bystander.write(123_456, data, true);
            assertArrayEquals(data, bystander.read(123_456, data.length), "bystander" + " [seed " + seed + "]");
        }
        try (NbdTestClient good = NbdTestClient.connect(address, "golden")) {
            assertArrayEquals(MemoryExport.pattern(GOLDEN_SEED, GOLDEN_BYTES), good.read(0, GOLDEN_BYTES),
                    "the read-only export is unchanged [seed " + seed + "]");
        }
        try (NbdTestClient good = NbdTestClient.connect(address, "scratch")) {
            byte[] data = MemoryExport.pattern(seed + 1, 70_000);
            good.write(SCRATCH_BYTES - data.length, data, false);
            good.flush();
            assertArrayEquals(data, good.read(SCRATCH_BYTES - data.length, data.length), "[seed " + seed + "]");
        }
        awaitNoConnections();
        // Guard against a fuzzer that never gets past the handshake.
        MemoryExport scratch = catalog.export("scratch");
        System.out.printf("fuzz seed %d: %d opens, %d flushes, %d caches, %d pages allocated%n", seed,
                scratch.opens.get(), scratch.flushes.get(), scratch.caches.get(), scratch.allocatedPages());
        assertTrue(onlyCase != null || scratch.opens.get() > iterations / 4 && scratch.flushes.get() > iterations / 20,
                "the fuzzer reached the transmission phase too rarely");
        assertEquals(0, catalog.openHandles(), "every export opened by a connection was closed [seed " + seed + "]");
    }

    private void runInMemory(byte[] input, String replay) {
        largestAllocation.set(0);
        CountingChannel output = new CountingChannel();
        server.serve(Channels.newChannel(new ByteArrayInputStream(input)), output, "fuzz");
        check(input, output.bytes, replay);
    }

    private void runOverTcp(InetSocketAddress address, byte[] input, String replay) throws IOException {
        largestAllocation.set(0);
        try (SocketChannel socket = SocketChannel.open(address)) {
            Thread writer = Thread.ofVirtual().start(() -> {
                try {
                    socket.write(ByteBuffer.wrap(input));
                    socket.shutdownOutput();
                } catch (IOException ignored) {
                    // The server may hang up before taking all of the input; that is allowed.
                }
            });
            socket.socket().setSoTimeout(20_000);
            InputStream replies = socket.socket().getInputStream();
            long bytes = 0;
            try {
                for (int n; (n = replies.read(new byte[8192])) >= 0; ) {
                    bytes += n;
                }
            } catch (IOException reset) {
                // A hard disconnect may reset the connection; what matters is that it ended.
            }
            join(writer);
            check(input, bytes, replay);
        }
    }

    private void check(byte[] input, long outputBytes, String replay) {
        if (!errors.isEmpty()) {
            ILoggingEvent event = errors.getFirst();
            fail("internal error: " + event.getFormattedMessage() + " " + event.getThrowableProxy().getMessage() + replay);
        }
        for (String name : List.of("scratch", "golden")) {
            assertEquals(0, catalog.export(name).gateViolations.get(), "a request got past the gate" + replay);
        }
        assertTrue(outputBytes >= GREETING_BYTES, "the server always greets" + replay);
        long allowed = Math.max(1 << 20, 4L * input.length);
        assertTrue(largestAllocation.get() <= allowed, "allocated " + largestAllocation.get() + " bytes for "
                + input.length + " bytes of input" + replay);
    }

    // ---- input generation ----

    static byte[] generate(SplittableRandom random) {
        int kind = random.nextInt(10);
        if (kind == 0) {
            return randomBytes(random, random.nextInt(300));
        }
        byte[] session = validSession(random);
        if (kind <= 3) {
            return session;
        }
        byte[] mutated = mutate(random, session);
        if (random.nextInt(4) == 0) {
            mutated = Arrays.copyOf(mutated, random.nextInt(mutated.length + 1));
        }
        return mutated;
    }

    /** A plausible session: some options, GO or EXPORT_NAME, then requests, mostly valid. */
    static byte[] validSession(SplittableRandom random) {
        Wire.Builder client = new Wire.Builder();
        client.clientFlags(random.nextInt(10) == 0 ? random.nextInt() : FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES);
        boolean structured = random.nextBoolean();
        if (structured) {
            client.structuredReply();
        }
        String exportName = random.nextInt(5) == 0 ? "golden" : "scratch";
        for (int i = random.nextInt(4); i > 0; i--) {
            randomOption(random, client);
        }
        if (structured && random.nextBoolean()) {
            client.metaContext(OPT_SET_META_CONTEXT, exportName, "base:allocation");
        }
        if (random.nextInt(5) == 0) {
            client.exportName(exportName);
        } else {
            client.infoOrGo(OPT_GO, exportName, INFO_BLOCK_SIZE);
        }
        long size = exportName.equals("golden") ? GOLDEN_BYTES : SCRATCH_BYTES;
        for (int i = random.nextInt(12); i > 0; i--) {
            randomRequest(random, client, size);
        }
        if (random.nextBoolean()) {
            client.disconnect();
        }
        return client.bytes();
    }

    private static void randomOption(SplittableRandom random, Wire.Builder client) {
        String name = NAMES[random.nextInt(NAMES.length)];
        switch (random.nextInt(9)) {
            case 0 -> client.option(OPT_LIST, new byte[0]);
            case 1 -> client.infoOrGo(OPT_INFO, name, INFO_NAME, INFO_DESCRIPTION);
            case 2 -> client.structuredReply();
            case 3 -> client.metaContext(OPT_LIST_META_CONTEXT, name, "base:", "x-y:z");
            case 4 -> client.metaContext(OPT_SET_META_CONTEXT, name, "base:allocation");
            case 5 -> client.option(OPT_STARTTLS, new byte[0]);
            case 6 -> client.option(random.nextInt(), randomBytes(random, random.nextInt(40)));
            case 7 -> client.option(OPT_GO, randomBytes(random, random.nextInt(40)));
            default -> client.infoOrGo(OPT_GO, "missing");
        }
    }

    private static void randomRequest(SplittableRandom random, Wire.Builder client, long size) {
        int type = random.nextInt(20) == 0 ? random.nextInt(0x10000) : random.nextInt(8);
        if (type == CMD_DISC) {
            type = CMD_FLUSH;
        }
        int flags = random.nextInt(8) == 0 ? random.nextInt(0x10000) : random.nextInt(4) == 0 ? 1 << random.nextInt(5) : 0;
        long length = random.nextInt(6) == 0 ? Integer.toUnsignedLong(ABSURD[random.nextInt(ABSURD.length)])
                : random.nextInt(9000);
        long offset = random.nextInt(6) == 0 ? random.nextLong() : random.nextLong(size + 1);
        if (type == CMD_FLUSH && random.nextBoolean()) {
            offset = 0;
            length = 0;
        }
        client.request(flags, type, random.nextLong(), offset, length);
        if (type == CMD_WRITE) {
            // Send the payload the header promises, unless it is absurd: then send a little and let it starve.
            int payload = length <= 20_000 ? (int) length : random.nextInt(100);
            client.raw(randomBytes(random, payload));
        }
    }

    static byte[] mutate(SplittableRandom random, byte[] input) {
        byte[] data = input;
        for (int i = 1 + random.nextInt(6); i > 0 && data.length > 0; i--) {
            int at = random.nextInt(data.length);
            switch (random.nextInt(6)) {
                case 0 -> data[at] ^= (byte) (1 << random.nextInt(8));
                case 1 -> data[at] = (byte) random.nextInt(256);
                case 2 -> {
                    if (at + 4 <= data.length) {
                        ByteBuffer.wrap(data).putInt(at, ABSURD[random.nextInt(ABSURD.length)]);
                    }
                }
                case 3 -> {
                    int cut = random.nextInt(Math.min(64, data.length - at) + 1);
                    byte[] shorter = new byte[data.length - cut];
                    System.arraycopy(data, 0, shorter, 0, at);
                    System.arraycopy(data, at + cut, shorter, at, data.length - at - cut);
                    data = shorter;
                }
                case 4 -> {
                    byte[] inserted = randomBytes(random, 1 + random.nextInt(32));
                    byte[] longer = new byte[data.length + inserted.length];
                    System.arraycopy(data, 0, longer, 0, at);
                    System.arraycopy(inserted, 0, longer, at, inserted.length);
                    System.arraycopy(data, at, longer, at + inserted.length, data.length - at);
                    data = longer;
                }
                default -> {
                    int length = Math.min(28, data.length - at);
                    byte[] repeated = new byte[data.length + length];
                    System.arraycopy(data, 0, repeated, 0, at + length);
                    System.arraycopy(data, at, repeated, at + length, data.length - at);
                    data = repeated;
                }
            }
        }
        return data;
    }

    private static byte[] randomBytes(SplittableRandom random, int length) {
        byte[] bytes = new byte[length];
        random.nextBytes(bytes);
        return bytes;
    }

    private void awaitNoConnections() {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (server.connectionCount() > 0 && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        assertEquals(0, server.connectionCount());
    }

    private static void join(Thread thread) {
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Swallows the server's output, counting bytes. */
    private static final class CountingChannel implements WritableByteChannel {
        long bytes;
        private boolean open = true;

        @Override
        public synchronized int write(ByteBuffer src) {
            int n = src.remaining();
            src.position(src.limit());
            bytes += n;
            return n;
        }

        @Override
        public boolean isOpen() {
            return open;
        }

        @Override
        public void close() {
            open = false;
        }
    }
}
