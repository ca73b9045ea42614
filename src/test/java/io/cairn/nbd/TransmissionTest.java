package io.cairn.nbd;

import static io.cairn.nbd.NbdConstants.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.io.StorageException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.channels.Channels;
import java.nio.channels.WritableByteChannel;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The transmission phase, byte for byte, over in-memory channels; and the validation gate alone. */
class TransmissionTest {

    private static final int DISK_BYTES = 1 << 20;

    private MemoryCatalog catalog;
    private MemoryExport disk;

    @BeforeEach
    void setUp() {
        disk = new MemoryExport(DISK_BYTES, false);
        catalog = new MemoryCatalog().add("disk", "", disk).add("snap", "", MemoryExport.filled(65536, true, 3));
    }

    /** A client that negotiated GO on the export, optionally with structured replies and base:allocation. */
    private static Wire.Builder session(String export, boolean structured) {
        Wire.Builder client = new Wire.Builder().modernClient();
        if (structured) {
            client.structuredReply().metaContext(OPT_SET_META_CONTEXT, export, "base:allocation");
        }
        return client.infoOrGo(OPT_GO, export);
    }

    /** Runs the session and returns the transmission replies by cookie. */
    private Map<Long, Wire.Reply> run(Wire.Builder client, Map<Long, Integer> simpleReadLengths) {
        Wire.Reader server = Wire.run(catalog, client.bytes()).greeting();
        while (true) {
            Wire.OptionReply reply = server.optionReply();
            if (reply.option() == OPT_GO && reply.type() == REP_ACK) {
                break;
            }
            assertFalse((reply.type() & REP_FLAG_ERROR) != 0, "option failed: " + reply);
        }
        Map<Long, Wire.Reply> replies = server.replies(simpleReadLengths);
        assertEquals(0, catalog.openHandles(), "the export is closed when the connection ends");
        return replies;
    }

    private Map<Long, Wire.Reply> run(Wire.Builder client) {
        return run(client, Map.of());
    }

    @Test
    void writeThenReadWithSimpleReplies() {
        byte[] data = MemoryExport.pattern(9, 5000);
        Map<Long, Wire.Reply> replies = run(session("disk", false)
                .write(0, 1, 12345, data)
                .request(0, CMD_READ, 2, 12345, 5000)
                .disconnect(), Map.of(2L, 5000));
        assertEquals(0, replies.get(1L).error());
        assertArrayEquals(data, replies.get(2L).data());
        assertArrayEquals(data, disk.contents(12345, 5000));
    }

    @Test
    void readWithStructuredRepliesIsOneDataChunkMarkedDone() {
        byte[] data = MemoryExport.pattern(4, 700);
        disk.write(999, ByteBuffer.wrap(data), false);
        Wire.Reply read = run(session("disk", true).request(CMD_FLAG_DF, CMD_READ, 5, 999, 700)).get(5L);
        assertEquals(1, read.chunks().size());
        Wire.Chunk chunk = read.chunks().getFirst();
        assertEquals(REPLY_TYPE_OFFSET_DATA, chunk.type());
        assertEquals(REPLY_FLAG_DONE, chunk.flags());
        assertEquals(999, chunk.buffer().getLong());
        assertArrayEquals(data, read.data());
    }

    @Test
    void outOfRangeRequestsGetTheSpecsErrors() {
        long max = 0xffff_ffff_ffff_ffffL;
        Map<Long, Wire.Reply> replies = run(session("disk", false)
                .request(0, CMD_READ, 1, DISK_BYTES - 10, 11)
                .write(0, 2, DISK_BYTES - 1, new byte[2])
                .request(0, CMD_WRITE_ZEROES, 3, DISK_BYTES, 1)
                .request(0, CMD_TRIM, 4, DISK_BYTES + 1, 0)
                .request(0, CMD_CACHE, 5, max, 2)
                .request(0, CMD_READ, 6, max - 1, 4)
                .request(0, CMD_READ, 7, DISK_BYTES - 10, 10)
                .request(0, CMD_READ, 8, DISK_BYTES, 0), Map.of(7L, 10));
        assertEquals(EINVAL, replies.get(1L).error(), "read past the end");
        assertEquals(ENOSPC, replies.get(2L).error(), "write past the end");
        assertEquals(ENOSPC, replies.get(3L).error(), "write zeroes past the end");
        assertEquals(EINVAL, replies.get(4L).error(), "trim starting past the end");
        assertEquals(EINVAL, replies.get(5L).error(), "offset near 2^64");
        assertEquals(EINVAL, replies.get(6L).error(), "offset + length overflows");
        assertEquals(0, replies.get(7L).error(), "read of the last bytes");
        assertEquals(0, replies.get(8L).error(), "empty read at the very end");
    }

    @Test
    void structuredErrorsCarryAMessage() {
        Wire.Reply read = run(session("disk", true).request(0, CMD_READ, 1, DISK_BYTES, 1)).get(1L);
        Wire.Chunk chunk = read.chunks().getFirst();
        assertEquals(REPLY_TYPE_ERROR, chunk.type());
        assertEquals(REPLY_FLAG_DONE, chunk.flags());
        ByteBuffer payload = chunk.buffer();
        assertEquals(EINVAL, payload.getInt());
        byte[] message = new byte[payload.getShort()];
        payload.get(message);
        assertTrue(new String(message, java.nio.charset.StandardCharsets.UTF_8).contains("beyond the export size"));
        assertFalse(payload.hasRemaining());
    }

    @Test
    void oversizedReadsAreRefused() {
        assertEquals(EINVAL, run(session("disk", false).request(0, CMD_READ, 1, 0, MAX_PAYLOAD_BYTES + 1)).get(1L).error());
        assertEquals(EOVERFLOW, run(session("disk", true).request(0, CMD_READ, 1, 0, MAX_PAYLOAD_BYTES + 1)).get(1L).error());
    }

    @Test
    void oversizedWritePayloadIsConsumedAndRefused() {
        byte[] payload = new byte[MAX_PAYLOAD_BYTES + 1];
        Arrays.fill(payload, (byte) 0x55);
        Map<Long, Wire.Reply> replies = run(session("disk", false)
                .write(0, 1, 0, payload)
                .request(0, CMD_READ, 2, 0, 16), Map.of(2L, 16));
        assertEquals(EINVAL, replies.get(1L).error());
        assertArrayEquals(new byte[16], replies.get(2L).data(), "nothing was written, and framing survived");
    }

    @Test
    void unknownCommandsAndFlagsAreInvalid() {
        Map<Long, Wire.Reply> replies = run(session("disk", false)
                .request(0, 9, 1, 0, 0)
                .request(0, 0xffff, 2, 0, 0)
                .request(1 << 7, CMD_READ, 3, 0, 1)
                .write(CMD_FLAG_NO_HOLE, 4, 0, new byte[1])
                .request(CMD_FLAG_REQ_ONE, CMD_READ, 5, 0, 1)
                .request(CMD_FLAG_DF, CMD_READ, 6, 0, 1)
                .request(CMD_FLAG_FAST_ZERO, CMD_TRIM, 7, 0, 1)
                .request(CMD_FLAG_NO_HOLE, CMD_CACHE, 8, 0, 1)
                .request(CMD_FLAG_FUA, CMD_CACHE, 9, 0, 1));
        for (long cookie = 1; cookie <= 8; cookie++) {
            assertEquals(EINVAL, replies.get(cookie).error(), "request " + cookie);
        }
        assertEquals(0, replies.get(9L).error(), "FUA is valid on any command");
        assertArrayEquals(new byte[1], disk.contents(0, 1), "the refused write wrote nothing");
    }

    @Test
    void readOnlyExportRefusesWritesWithEperm() {
        Map<Long, Wire.Reply> replies = run(session("snap", false)
                .write(0, 1, 0, new byte[100])
                .request(0, CMD_TRIM, 2, 0, 4096)
                .request(CMD_FLAG_FAST_ZERO, CMD_WRITE_ZEROES, 3, 0, 4096)
                .request(0, CMD_READ, 4, 0, 100)
                .request(0, CMD_FLUSH, 5, 0, 0), Map.of(4L, 100));
        for (long cookie = 1; cookie <= 3; cookie++) {
            assertEquals(EPERM, replies.get(cookie).error(), "request " + cookie);
        }
        assertArrayEquals(Arrays.copyOf(MemoryExport.pattern(3, 65536), 100), replies.get(4L).data());
        assertEquals(0, replies.get(5L).error());
    }

    @Test
    void zeroLengthRequestsAreHarmless() {
        Map<Long, Wire.Reply> replies = run(session("disk", true)
                .request(0, CMD_READ, 1, 10, 0)
                .write(0, 2, 10, new byte[0])
                .request(0, CMD_TRIM, 3, 10, 0)
                .request(0, CMD_WRITE_ZEROES, 4, 10, 0)
                .request(0, CMD_CACHE, 5, 10, 0)
                .request(0, CMD_BLOCK_STATUS, 6, 10, 0));
        for (long cookie = 1; cookie <= 5; cookie++) {
            assertEquals(0, replies.get(cookie).error(), "request " + cookie);
        }
        assertEquals(REPLY_TYPE_NONE, replies.get(1L).chunks().getFirst().type());
        assertEquals(EINVAL, replies.get(6L).error(), "block status needs a nonzero length");
        assertEquals(0, disk.allocatedPages());
    }

    @Test
    void flushMustHaveZeroOffsetAndLength() {
        Map<Long, Wire.Reply> replies = run(session("disk", false)
                .request(0, CMD_FLUSH, 1, 0, 0)
                .request(0, CMD_FLUSH, 2, 1, 0)
                .request(0, CMD_FLUSH, 3, 0, 1));
        assertEquals(0, replies.get(1L).error());
        assertEquals(EINVAL, replies.get(2L).error());
        assertEquals(EINVAL, replies.get(3L).error());
        assertEquals(1, disk.flushes.get());
    }

    @Test
    void fuaReachesTheExport() {
        run(session("disk", false).write(CMD_FLAG_FUA, 1, 0, new byte[10]).write(0, 2, 0, new byte[10]));
        assertEquals(1, disk.fuaWrites.get());
    }

    @Test
    void trimAndWriteZeroesZeroTheData() {
        disk.write(0, ByteBuffer.wrap(MemoryExport.pattern(1, 5 * 4096)), false);
        Map<Long, Wire.Reply> replies = run(session("disk", false)
                .request(0, CMD_TRIM, 1, 0, 4096)
                .request(0, CMD_WRITE_ZEROES, 2, 4096, 4096)
                .request(CMD_FLAG_NO_HOLE, CMD_WRITE_ZEROES, 3, 2 * 4096, 4096 + 100));
        replies.values().forEach(reply -> assertEquals(0, reply.error()));
        assertArrayEquals(new byte[3 * 4096 + 100], disk.contents(0, 3 * 4096 + 100));
        assertArrayEquals(Arrays.copyOfRange(MemoryExport.pattern(1, 5 * 4096), 3 * 4096 + 100, 5 * 4096),
                disk.contents(3 * 4096 + 100, 2 * 4096 - 100));
        assertEquals(3, disk.allocatedPages(), "trim and plain write-zeroes punched holes; NO_HOLE kept pages");
    }

    @Test
    void fastZeroFailsFastWithEnotsupWithoutChangingData() {
        disk.write(0, ByteBuffer.wrap(new byte[] {1, 2, 3}), false);
        disk.setFastZeroSupported(false);
        Map<Long, Wire.Reply> replies = run(session("disk", false)
                .request(CMD_FLAG_FAST_ZERO, CMD_WRITE_ZEROES, 1, 0, 4096)
                .request(CMD_FLAG_FAST_ZERO | CMD_FLAG_NO_HOLE, CMD_WRITE_ZEROES, 2, DISK_BYTES, 4096));
        assertEquals(ENOTSUP, replies.get(1L).error());
        assertEquals(ENOSPC, replies.get(2L).error(), "range check comes before the export is asked");
        assertArrayEquals(new byte[] {1, 2, 3}, disk.contents(0, 3));
    }

    @Test
    void cacheIsAccepted() {
        assertEquals(0, run(session("disk", false).request(0, CMD_CACHE, 1, 0, DISK_BYTES)).get(1L).error());
        assertEquals(1, disk.caches.get());
    }

    @Test
    void blockStatusReportsHolesZeroesAndData() {
        disk.write(4096, ByteBuffer.wrap(MemoryExport.pattern(2, 8192)), false);
        disk.writeZeroes(3 * 4096, 4096, false, false, false);
        Map<Long, Wire.Reply> replies = run(session("disk", true)
                .request(0, CMD_BLOCK_STATUS, 1, 0, 5 * 4096)
                .request(CMD_FLAG_REQ_ONE, CMD_BLOCK_STATUS, 2, 100, 1000)
                .request(0, CMD_BLOCK_STATUS, 3, 4096 + 10, 10));
        assertEquals(List.of(new Extent(4096, Extent.HOLE | Extent.ZERO), new Extent(8192, 0),
                new Extent(4096, Extent.ZERO), new Extent(4096, Extent.HOLE | Extent.ZERO)), descriptors(replies.get(1L)));
        assertEquals(List.of(new Extent(1000, Extent.HOLE | Extent.ZERO)), descriptors(replies.get(2L)));
        assertEquals(List.of(new Extent(10, 0)), descriptors(replies.get(3L)));
    }

    @Test
    void blockStatusNeedsASelectedContext() {
        Map<Long, Wire.Reply> replies = run(session("disk", false).request(0, CMD_BLOCK_STATUS, 1, 0, 4096));
        assertEquals(EINVAL, replies.get(1L).error());
        // Contexts chosen for another export do not carry over to the one GO picks.
        Wire.Builder client = new Wire.Builder().modernClient().structuredReply()
                .metaContext(OPT_SET_META_CONTEXT, "snap", "base:allocation")
                .infoOrGo(OPT_GO, "disk")
                .request(0, CMD_BLOCK_STATUS, 2, 0, 4096);
        assertEquals(EINVAL, run(client).get(2L).error());
    }

    @Test
    void exportFailuresBecomeErrorRepliesAndTheConnectionGoesOn() {
        Map<StorageException.Code, Integer> expected = Map.of(
                StorageException.Code.IO, EIO, StorageException.Code.NO_SPACE, ENOSPC,
                StorageException.Code.READ_ONLY, EPERM, StorageException.Code.LOCKED, EPERM,
                StorageException.Code.CORRUPT, EIO, StorageException.Code.CLOSED, ESHUTDOWN);
        for (var entry : expected.entrySet()) {
            disk.failWith(new StorageException(entry.getKey(), "injected"));
            Map<Long, Wire.Reply> replies = run(session("disk", true)
                    .write(0, 1, 0, new byte[10])
                    .request(0, CMD_READ, 2, 0, 10));
            assertEquals(entry.getValue(), replies.get(1L).error(), entry.getKey().toString());
            assertEquals(0, replies.get(2L).error());
        }
        disk.failWith(new IllegalArgumentException("bad"));
        assertEquals(EINVAL, run(session("disk", false).request(0, CMD_FLUSH, 1, 0, 0)).get(1L).error());
        disk.failWith(new NullPointerException());
        assertEquals(EIO, run(session("disk", false).request(0, CMD_FLUSH, 1, 0, 0)).get(1L).error());
    }

    @Test
    void badRequestMagicHangsUpAfterAnsweringEarlierRequests() {
        Wire.Builder client = session("disk", false).request(0, CMD_FLUSH, 1, 0, 0)
                .raw(new Request(0, CMD_FLUSH, 2, 0, 0).encode().putInt(0, 0x12345678).array())
                .request(0, CMD_FLUSH, 3, 0, 0);
        Map<Long, Wire.Reply> replies = run(client);
        assertEquals(List.of(1L), new ArrayList<>(replies.keySet()));
    }

    @Test
    void disconnectAnswersOutstandingRequestsAndIgnoresTheRest() {
        Wire.Builder client = session("disk", false);
        for (long cookie = 1; cookie <= 50; cookie++) {
            client.write(0, cookie, cookie * 100, new byte[100]);
        }
        client.disconnect().request(0, CMD_FLUSH, 99, 0, 0);
        Map<Long, Wire.Reply> replies = run(client);
        assertEquals(50, replies.size());
        assertFalse(replies.containsKey(99L));
    }

    @Test
    @Timeout(10)
    void requestsRunConcurrentlyAndRepliesMatchByCookie() throws InterruptedException {
        CountDownLatch flushSeen = new CountDownLatch(1);
        NbdExport blockingRead = new ForwardingExport(disk) {
            @Override
            public void read(long offsetBytes, ByteBuffer dst) {
                try {
                    // Completes only if the later FLUSH runs while this read is still in flight.
                    assertTrue(flushSeen.await(5, TimeUnit.SECONDS), "flush never ran concurrently");
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
                super.read(offsetBytes, dst);
            }

            @Override
            public void flush() {
                flushSeen.countDown();
            }
        };
        ExportCatalog single = serving(blockingRead);
        Wire.Reader server = Wire.run(single, session("x", false).request(0, CMD_READ, 1, 0, 8)
                .request(0, CMD_FLUSH, 2, 0, 0).bytes()).greeting();
        while (server.optionReply().type() != REP_ACK) {
            // skip INFO replies of GO
        }
        Map<Long, Wire.Reply> replies = server.replies(new HashMap<>(Map.of(1L, 8)));
        // The read could only complete because the flush ran while it was in flight; which reply reaches
        // the wire first is a race (the read wakes as soon as the flush has run, before its reply is sent).
        assertEquals(java.util.Set.of(1L, 2L), replies.keySet(), "both requests answered, matched by cookie");
    }

    /**
     * Connection design note 7: small and large WRITEs pipelined back to back, so the read-ahead buffer
     * holds parts of payloads, and is refilled with only a header after a large one; every byte lands
     * where its request said.
     */
    @Test
    void pipelinedWritesOfMixedSizesLandWhereTheySaid() {
        int[] sizes = {200 * 1024, 4096, 512 * 1024, 130 * 1024, 512, 128 * 1024, 127 * 1024, 64 * 1024, 300 * 1024};
        Wire.Builder client = session("disk", false);
        byte[] expected = new byte[DISK_BYTES];
        long offsetBytes = 0;
        long cookie = 1;
        for (int round = 0; round < 2; round++) {
            for (int size : sizes) {
                byte[] data = MemoryExport.pattern(cookie, size);
                long at = offsetBytes % (DISK_BYTES - size);
                System.arraycopy(data, 0, expected, (int) at, size);
                client.write(0, cookie++, at, data);
                offsetBytes += size + 777;
            }
        }
        client.request(0, CMD_READ, 999, 0, DISK_BYTES);
        Map<Long, Wire.Reply> replies = run(client, Map.of(999L, DISK_BYTES));
        for (long c = 1; c < cookie; c++) {
            assertEquals(0, replies.get(c).error(), "write " + c);
        }
        assertArrayEquals(expected, replies.get(999L).data());
    }

    /**
     * Connection design note 8: replies finish in any order on many threads and one writer at a time sends
     * them; every reply still arrives whole with its own data, and every READ buffer goes back to the pool
     * once its reply is written, on whichever thread wrote it.
     */
    @Test
    @Timeout(30)
    void repliesFromManyThreadsArriveWholeAndEveryReadBufferComesBack() {
        byte[] content = MemoryExport.pattern(8, DISK_BYTES);
        disk.write(0, ByteBuffer.wrap(content), false);
        NbdExport jittery = new ForwardingExport(disk) {
            @Override
            public void read(long offsetBytes, ByteBuffer dst) {
                // Finish in a scrambled order, so replies queue behind one another's writes.
                LockSupport.parkNanos(ThreadLocalRandom.current().nextLong(200_000));
                super.read(offsetBytes, dst);
            }
        };
        AtomicInteger payloadBuffersOut = new AtomicInteger();
        PayloadBuffers counting = new PayloadBuffers() {
            @Override
            public ByteBuffer apply(int lengthBytes) {
                if (lengthBytes >= 4096) { // payloads; handshake option data is smaller and never given back
                    payloadBuffersOut.incrementAndGet();
                }
                return ByteBuffer.allocate(lengthBytes);
            }

            @Override
            public void release(ByteBuffer buffer) {
                payloadBuffersOut.decrementAndGet();
            }
        };
        Wire.Builder client = session("x", true);
        SplittableRandom random = new SplittableRandom(11);
        Map<Long, long[]> asked = new HashMap<>();
        for (long cookie = 1; cookie <= 400; cookie++) {
            int lengthBytes = 4096 << random.nextInt(5);
            long offsetBytes = random.nextInt((DISK_BYTES - lengthBytes) / 512) * 512L;
            asked.put(cookie, new long[] {offsetBytes, lengthBytes});
            client.request(0, CMD_READ, cookie, offsetBytes, lengthBytes);
        }
        Wire.Reader server = Wire.run(serving(jittery), client.bytes(),
                new Connection.Limits(16, 2 * MAX_PAYLOAD_BYTES, counting)).greeting();
        skipToGoAck(server);
        Map<Long, Wire.Reply> replies = server.replies(Map.of());
        assertEquals(asked.keySet(), replies.keySet());
        asked.forEach((cookie, range) -> assertArrayEquals(
                Arrays.copyOfRange(content, (int) range[0], (int) (range[0] + range[1])), replies.get(cookie).data(),
                "read " + cookie));
        assertEquals(0, payloadBuffersOut.get(), "READ buffers not given back");
    }

    /**
     * Connection design note 8: a sender leaves its reply to the thread writing, but at most as many replies
     * as requests in flight wait unsent. A client that stops reading stalls the server after a bounded
     * number of requests (two per request slot: one queued, one finished and waiting to queue), not after
     * all it sent; once it reads again, everything is answered.
     */
    @Test
    @Timeout(30)
    void aClientThatStopsReadingStallsTheServerAfterABoundedNumberOfReplies() throws Exception {
        int requestSlots = 4;
        AtomicInteger readsDone = new AtomicInteger();
        NbdExport counting = new ForwardingExport(disk) {
            @Override
            public void read(long offsetBytes, ByteBuffer dst) {
                super.read(offsetBytes, dst);
                readsDone.incrementAndGet();
            }
        };
        CountDownLatch clientReadsAgain = new CountDownLatch(1);
        ByteArrayOutputStream serverBytes = new ByteArrayOutputStream();
        WritableByteChannel stalling = new WritableByteChannel() {
            private volatile boolean open = true;

            @Override
            public synchronized int write(ByteBuffer src) throws java.io.IOException {
                if (src.remaining() >= 4 && src.getInt(src.position()) == SIMPLE_REPLY_MAGIC) {
                    // Transmission replies find the socket full until the client reads again.
                    try {
                        clientReadsAgain.await();
                    } catch (InterruptedException e) {
                        throw new java.io.InterruptedIOException();
                    }
                }
                int n = src.remaining();
                byte[] bytes = new byte[n];
                src.get(bytes);
                serverBytes.write(bytes, 0, n);
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
        };
        Wire.Builder client = session("x", false);
        for (long cookie = 1; cookie <= 100; cookie++) {
            client.request(0, CMD_READ, cookie, cookie * 4096, 4096);
        }
        Connection connection = new Connection("stalled", Channels.newChannel(new ByteArrayInputStream(client.bytes())),
                stalling, serving(counting), MetaContexts.standard(),
                new Connection.Limits(requestSlots, 2 * MAX_PAYLOAD_BYTES, ByteBuffer::allocate), () -> false);
        Thread serving = Thread.ofPlatform().start(connection);
        // Let the server run into the stall and stay there.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        int before;
        do {
            before = readsDone.get();
            Thread.sleep(200);
        } while (readsDone.get() != before && System.nanoTime() < deadline);
        assertTrue(readsDone.get() >= 1 && readsDone.get() <= 2 * requestSlots,
                readsDone.get() + " reads ran while the client read nothing");
        clientReadsAgain.countDown();
        serving.join(TimeUnit.SECONDS.toMillis(10));
        assertFalse(serving.isAlive(), "connection did not finish");
        Map<Long, Integer> lengths = new HashMap<>();
        for (long cookie = 1; cookie <= 100; cookie++) {
            lengths.put(cookie, 4096);
        }
        Wire.Reader server = new Wire.Reader(serverBytes.toByteArray()).greeting();
        skipToGoAck(server);
        assertEquals(100, server.replies(lengths).size());
        assertEquals(100, readsDone.get());
    }

    /**
     * Design note 6: a request waits for the earlier writes it overlaps, and only for those. The write below
     * is held until the non-overlapping read has run (so that read did not wait for it); the overlapping read,
     * sent before the write finished, must still return what it wrote.
     */
    @Test
    @Timeout(10)
    void aReadWaitsForTheEarlierWriteItOverlapsAndOnlyForThat() {
        CountDownLatch otherReadRan = new CountDownLatch(1);
        CountDownLatch overlappingReadRan = new CountDownLatch(1);
        java.util.concurrent.atomic.AtomicBoolean overtaken = new java.util.concurrent.atomic.AtomicBoolean();
        NbdExport slowWrite = new ForwardingExport(disk) {
            @Override
            public void read(long offsetBytes, ByteBuffer dst) {
                (offsetBytes == 4096 ? otherReadRan : overlappingReadRan).countDown();
                super.read(offsetBytes, dst);
            }

            @Override
            public void write(long offsetBytes, ByteBuffer src, boolean fua) {
                try {
                    assertTrue(otherReadRan.await(5, TimeUnit.SECONDS), "the non-overlapping read waited for the write");
                    // Time for the overlapping read to run, which it must not do before this write ends.
                    overtaken.set(overlappingReadRan.await(500, TimeUnit.MILLISECONDS));
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
                super.write(offsetBytes, src, fua);
            }
        };
        ExportCatalog single = serving(slowWrite);
        byte[] written = "ABCDEFGH".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        Wire.Reader server = Wire.run(single, session("x", false).write(0, 1, 0, written)
                .request(0, CMD_READ, 2, 4096, 8).request(0, CMD_READ, 3, 4, 8).bytes()).greeting();
        while (server.optionReply().type() != REP_ACK) {
            // skip INFO replies of GO
        }
        Map<Long, Wire.Reply> replies = server.replies(new HashMap<>(Map.of(2L, 8, 3L, 8)));
        assertEquals(java.util.Set.of(1L, 2L, 3L), replies.keySet());
        assertFalse(overtaken.get(), "the overlapping read ran while the write it came after was in flight");
        assertEquals(0, replies.get(1L).error());
        assertArrayEquals(new byte[8], replies.get(2L).data());
        assertArrayEquals("EFGH\0\0\0\0".getBytes(java.nio.charset.StandardCharsets.US_ASCII), replies.get(3L).data(),
                "the overlapping read saw the write it came after");
    }

    /** A catalogue that serves {@code export} under any name. */
    private static void skipToGoAck(Wire.Reader server) {
        Wire.OptionReply reply;
        do {
            reply = server.optionReply();
        } while (reply.option() != OPT_GO || reply.type() != REP_ACK);
    }

    private static ExportCatalog serving(NbdExport export) {
        return new ExportCatalog() {
            @Override
            public List<ExportDescription> list() {
                return List.of();
            }

            @Override
            public NbdExport open(String name) {
                return export;
            }
        };
    }

    // ---- the gate alone, no channels at all ----

    @Test
    void validateIsTheOnlyGate() {
        Transmission writable = new Transmission(disk, false, List.of(), ByteBuffer::allocate);
        assertNull(writable.validate(new Request(0, CMD_WRITE, 1, 0, DISK_BYTES)));
        assertNull(writable.validate(new Request(CMD_FLAG_FUA | CMD_FLAG_NO_HOLE | CMD_FLAG_FAST_ZERO, CMD_WRITE_ZEROES, 1, 0, 1)));
        assertEquals(EINVAL, writable.validate(new Request(0, CMD_DISC, 1, 0, 0)).error());
        assertEquals(EINVAL, writable.validate(new Request(0, CMD_BLOCK_STATUS, 1, 0, 1)).error());
        assertEquals(ENOSPC, writable.validate(new Request(0, CMD_WRITE, 1, 1, DISK_BYTES)).error());
        assertEquals(EINVAL, writable.validate(new Request(0, CMD_WRITE, 1, 0, MAX_PAYLOAD_BYTES + 1L)).error());
        Transmission structured = new Transmission(disk, true,
                List.of(new Transmission.SelectedContext(1, MetaContexts.BASE_ALLOCATION)), ByteBuffer::allocate);
        assertNull(structured.validate(new Request(CMD_FLAG_REQ_ONE, CMD_BLOCK_STATUS, 1, 0, DISK_BYTES)));
        assertEquals(EINVAL, structured.validate(new Request(0, CMD_BLOCK_STATUS, 1, 0, DISK_BYTES + 1L)).error(),
                "spec: EINVAL for block status beyond the end");
        assertNull(structured.validate(new Request(CMD_FLAG_DF, CMD_READ, 1, 0, 1)));
    }

    @Test
    void descriptorsAreTrimmedToTheRequest() {
        ByteBuffer one = Transmission.encodeDescriptors(List.of(Extent.hole(1 << 20), Extent.data(5)), 4096, false);
        assertEquals(8, one.remaining());
        assertEquals(4096, one.getInt());
        ByteBuffer reqOne = Transmission.encodeDescriptors(List.of(Extent.data(10), Extent.hole(10)), 100, true);
        assertEquals(8, reqOne.remaining());
        ByteBuffer empty = Transmission.encodeDescriptors(List.of(), 77, false);
        assertEquals(77, empty.getInt());
        assertEquals(0, empty.getInt(), "an export that says nothing gets the always-safe status 0");
    }

    @Test
    void customMetaContextsAreListedSelectedAndQueried() {
        MetaContext dirty = new MetaContext() {
            @Override
            public String name() {
                return "x-cairn:dirty";
            }

            @Override
            public List<Extent> status(NbdExport export, long offsetBytes, long lengthBytes) {
                return List.of(new Extent(lengthBytes, 7));
            }
        };
        MetaContexts contexts = MetaContexts.standard().with(dirty);
        Transmission transmission = new Transmission(disk, true, List.of(
                new Transmission.SelectedContext(contexts.idOf(MetaContexts.BASE_ALLOCATION), MetaContexts.BASE_ALLOCATION),
                new Transmission.SelectedContext(contexts.idOf(dirty), dirty)), ByteBuffer::allocate);
        List<ByteBuffer> sent = new ArrayList<>();
        try {
            transmission.execute(new Request(0, CMD_BLOCK_STATUS, 42, 0, 4096), null, (afterSent, buffers) -> {
                sent.addAll(List.of(buffers));
                afterSent.run();
            }, ReplySink.NOTHING);
        } catch (java.io.IOException e) {
            throw new AssertionError(e);
        }
        Map<Long, Wire.Reply> replies = new Wire.Reader(HandshakeTest.concat(sent)).replies(Map.of());
        List<Wire.Chunk> chunks = replies.get(42L).chunks();
        assertEquals(2, chunks.size());
        assertEquals(0, chunks.get(0).flags(), "only the last chunk is marked done");
        ByteBuffer second = chunks.get(1).buffer();
        assertEquals(2, second.getInt(), "context id");
        assertEquals(4096, second.getInt());
        assertEquals(7, second.getInt());
        assertEquals(List.of(dirty), contexts.matchForList("x-cairn:", disk));
    }

    private static List<Extent> descriptors(Wire.Reply reply) {
        assertEquals(0, reply.error());
        assertEquals(1, reply.chunks().size());
        Wire.Chunk chunk = reply.chunks().getFirst();
        assertEquals(REPLY_TYPE_BLOCK_STATUS, chunk.type());
        ByteBuffer payload = chunk.buffer();
        assertEquals(1, payload.getInt(), "context id of base:allocation");
        List<Extent> extents = new ArrayList<>();
        while (payload.hasRemaining()) {
            extents.add(new Extent(Integer.toUnsignedLong(payload.getInt()), payload.getInt()));
        }
        return extents;
    }
}
