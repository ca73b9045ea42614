package io.cairn.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Byte-level client side of the protocol for tests without sockets: {@link Builder} writes what a
 * client would send, {@link #run} pushes it through a {@link Connection} on in-memory channels, and
 * {@link Reader} parses what the server sent back.
 */
final class Wire {

    private Wire() {
    }

    /** Runs a whole connection over the given client bytes and returns everything the server wrote. */
    static Reader run(ExportCatalog catalog, byte[] clientBytes) {
        return run(catalog, clientBytes, Connection.Limits.DEFAULT);
    }

    static Reader run(ExportCatalog catalog, byte[] clientBytes, Connection.Limits limits) {
        ByteArrayOutputStream serverBytes = new ByteArrayOutputStream();
        OutputStream synchronizedOut = new OutputStream() {
            @Override
            public synchronized void write(int b) {
                serverBytes.write(b);
            }

            @Override
            public synchronized void write(byte[] b, int off, int len) {
                serverBytes.write(b, off, len);
            }
        };
        Connection connection = new Connection("test", Channels.newChannel(new ByteArrayInputStream(clientBytes)),
                Channels.newChannel(synchronizedOut), catalog, MetaContexts.standard(), limits, () -> false);
        connection.run();
        return new Reader(serverBytes.toByteArray());
    }

    // ---- client side ----

    static final class Builder {
        private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();

        byte[] bytes() {
            return bytes.toByteArray();
        }

        Builder raw(byte[] data) {
            bytes.writeBytes(data);
            return this;
        }

        Builder u16(int value) {
            return raw(ByteBuffer.allocate(2).putShort((short) value).array());
        }

        Builder u32(int value) {
            return raw(ByteBuffer.allocate(4).putInt(value).array());
        }

        Builder u64(long value) {
            return raw(ByteBuffer.allocate(8).putLong(value).array());
        }

        Builder clientFlags(int flags) {
            return u32(flags);
        }

        /** The usual opening: fixed newstyle and no zeroes. */
        Builder modernClient() {
            return clientFlags(NbdConstants.FLAG_C_FIXED_NEWSTYLE | NbdConstants.FLAG_C_NO_ZEROES);
        }

        Builder option(int option, byte[] data) {
            return u64(NbdConstants.IHAVEOPT).u32(option).u32(data.length).raw(data);
        }

        Builder exportName(String name) {
            return option(NbdConstants.OPT_EXPORT_NAME, utf8(name));
        }

        Builder structuredReply() {
            return option(NbdConstants.OPT_STRUCTURED_REPLY, new byte[0]);
        }

        Builder infoOrGo(int option, String name, int... infoRequests) {
            return option(option, infoData(name, infoRequests));
        }

        static byte[] infoData(String name, int... infoRequests) {
            byte[] nameBytes = utf8(name);
            ByteBuffer data = ByteBuffer.allocate(4 + nameBytes.length + 2 + 2 * infoRequests.length);
            data.putInt(nameBytes.length).put(nameBytes).putShort((short) infoRequests.length);
            for (int info : infoRequests) {
                data.putShort((short) info);
            }
            return data.array();
        }

        Builder metaContext(int option, String name, String... queries) {
            return option(option, metaContextData(name, queries));
        }

        static byte[] metaContextData(String name, String... queries) {
            ByteArrayOutputStream data = new ByteArrayOutputStream();
            byte[] nameBytes = utf8(name);
            data.writeBytes(ByteBuffer.allocate(4).putInt(nameBytes.length).array());
            data.writeBytes(nameBytes);
            data.writeBytes(ByteBuffer.allocate(4).putInt(queries.length).array());
            for (String query : queries) {
                byte[] queryBytes = utf8(query);
                data.writeBytes(ByteBuffer.allocate(4).putInt(queryBytes.length).array());
                data.writeBytes(queryBytes);
            }
            return data.toByteArray();
        }

        Builder request(int flags, int type, long cookie, long offsetBytes, long lengthBytes) {
            return raw(new Request(flags, type, cookie, offsetBytes, lengthBytes).encode().array());
        }

        Builder write(int flags, long cookie, long offsetBytes, byte[] data) {
            return request(flags, NbdConstants.CMD_WRITE, cookie, offsetBytes, data.length).raw(data);
        }

        Builder disconnect() {
            return request(0, NbdConstants.CMD_DISC, 0, 0, 0);
        }
    }

    static byte[] utf8(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    // ---- server side ----

    record OptionReply(int option, int type, byte[] data) {
        ByteBuffer buffer() {
            return ByteBuffer.wrap(data);
        }
    }

    /** One reply of the transmission phase: a simple reply, or all chunks of a structured one. */
    record Reply(long cookie, int error, byte[] data, java.util.List<Chunk> chunks) {
    }

    record Chunk(int flags, int type, byte[] payload) {
        ByteBuffer buffer() {
            return ByteBuffer.wrap(payload);
        }
    }

    static final class Reader {
        private final ByteBuffer bytes;

        Reader(byte[] serverBytes) {
            this.bytes = ByteBuffer.wrap(serverBytes);
        }

        int remaining() {
            return bytes.remaining();
        }

        Reader greeting() {
            assertEquals(NbdConstants.NBDMAGIC, bytes.getLong(), "NBDMAGIC");
            assertEquals(NbdConstants.IHAVEOPT, bytes.getLong(), "IHAVEOPT");
            assertEquals(NbdConstants.FLAG_FIXED_NEWSTYLE | NbdConstants.FLAG_NO_ZEROES, bytes.getShort() & 0xffff);
            return this;
        }

        OptionReply optionReply() {
            assertEquals(NbdConstants.OPTION_REPLY_MAGIC, bytes.getLong(), "option reply magic");
            int option = bytes.getInt();
            int type = bytes.getInt();
            byte[] data = new byte[bytes.getInt()];
            bytes.get(data);
            return new OptionReply(option, type, data);
        }

        long u64() {
            return bytes.getLong();
        }

        int u16() {
            return bytes.getShort() & 0xffff;
        }

        byte[] take(int lengthBytes) {
            byte[] data = new byte[lengthBytes];
            bytes.get(data);
            return data;
        }

        /**
         * Reads all remaining transmission replies, keyed by cookie.
         *
         * @param simpleReadLengths for simple replies that carry read data: cookie → data length
         */
        Map<Long, Reply> replies(Map<Long, Integer> simpleReadLengths) {
            Map<Long, Reply> replies = new LinkedHashMap<>();
            Map<Long, java.util.List<Chunk>> open = new HashMap<>();
            while (bytes.hasRemaining()) {
                int magic = bytes.getInt();
                if (magic == NbdConstants.SIMPLE_REPLY_MAGIC) {
                    int error = bytes.getInt();
                    long cookie = bytes.getLong();
                    byte[] data = error == 0 ? take(simpleReadLengths.getOrDefault(cookie, 0)) : new byte[0];
                    replies.put(cookie, new Reply(cookie, error, data, java.util.List.of()));
                } else {
                    assertEquals(NbdConstants.STRUCTURED_REPLY_MAGIC, magic, "reply magic");
                    int flags = bytes.getShort() & 0xffff;
                    int type = bytes.getShort() & 0xffff;
                    long cookie = bytes.getLong();
                    byte[] payload = take(bytes.getInt());
                    open.computeIfAbsent(cookie, c -> new java.util.ArrayList<>()).add(new Chunk(flags, type, payload));
                    if ((flags & NbdConstants.REPLY_FLAG_DONE) != 0) {
                        java.util.List<Chunk> chunks = open.remove(cookie);
                        replies.put(cookie, new Reply(cookie, structuredError(chunks), structuredData(chunks), chunks));
                    }
                }
            }
            assertEquals(Map.of(), open, "structured replies without a DONE chunk");
            return replies;
        }

        private static int structuredError(java.util.List<Chunk> chunks) {
            for (Chunk chunk : chunks) {
                if ((chunk.type() & 0x8000) != 0) {
                    return chunk.buffer().getInt();
                }
            }
            return 0;
        }

        private static byte[] structuredData(java.util.List<Chunk> chunks) {
            ByteArrayOutputStream data = new ByteArrayOutputStream();
            for (Chunk chunk : chunks) {
                if (chunk.type() == NbdConstants.REPLY_TYPE_OFFSET_DATA) {
                    data.write(chunk.payload(), 8, chunk.payload().length - 8);
                }
            }
            return data.toByteArray();
        }
    }

}
