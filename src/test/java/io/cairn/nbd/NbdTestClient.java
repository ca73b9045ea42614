package io.cairn.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.net.SocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * A minimal blocking NBD client: fixed newstyle, GO, structured replies, one request at a time.
 * Independent of the server's classes except the constants, so it checks the server from outside.
 */
final class NbdTestClient implements AutoCloseable {

    /** The server answered a request with an NBD error value. */
    static final class NbdError extends IOException {
        final int error;

        NbdError(int error, String message) {
            super("NBD error " + error + (message.isEmpty() ? "" : ": " + message));
            this.error = error;
        }
    }

    private final SocketChannel channel;
    private long sizeBytes;
    private int transmissionFlags;
    private long nextCookie = 1;

    private NbdTestClient(SocketChannel channel) {
        this.channel = channel;
    }

    /** Connects and negotiates structured replies, base:allocation and GO on the export. */
    static NbdTestClient connect(SocketAddress address, String exportName) throws IOException {
        return connect(address, exportName, true);
    }

    /**
     * Connects and negotiates GO on the export; with {@code structured}, also structured replies and
     * base:allocation, else READs are answered with simple replies.
     */
    static NbdTestClient connect(SocketAddress address, String exportName, boolean structured) throws IOException {
        NbdTestClient client = new NbdTestClient(SocketChannel.open(address));
        try {
            client.handshake(exportName, structured);
        } catch (IOException | RuntimeException e) {
            client.channel.close();
            throw e;
        }
        return client;
    }

    long sizeBytes() {
        return sizeBytes;
    }

    int transmissionFlags() {
        return transmissionFlags;
    }

    private void handshake(String exportName, boolean structured) throws IOException {
        ByteBuffer greeting = readExactly(18);
        if (greeting.getLong() != NbdConstants.NBDMAGIC || greeting.getLong() != NbdConstants.IHAVEOPT) {
            throw new IOException("not an NBD newstyle server");
        }
        writeAll(ByteBuffer.allocate(4).putInt(NbdConstants.FLAG_C_FIXED_NEWSTYLE | NbdConstants.FLAG_C_NO_ZEROES).flip());
        if (structured) {
            sendOption(NbdConstants.OPT_STRUCTURED_REPLY, new byte[0]);
            expectAck();
            sendOption(NbdConstants.OPT_SET_META_CONTEXT, Wire.Builder.metaContextData(exportName, "base:allocation"));
            ByteBuffer[] data = new ByteBuffer[1];
            int type;
            while ((type = readOptionReply(data)) != NbdConstants.REP_ACK) {
                // one META_CONTEXT reply for base:allocation; an error reply ends the option
                if ((type & NbdConstants.REP_FLAG_ERROR) != 0) {
                    throw new IOException("SET_META_CONTEXT failed (0x" + Integer.toHexString(type) + "): "
                            + StandardCharsets.UTF_8.decode(data[0]));
                }
            }
        }
        sendOption(NbdConstants.OPT_GO, Wire.Builder.infoData(exportName, NbdConstants.INFO_BLOCK_SIZE));
        while (true) {
            ByteBuffer[] data = new ByteBuffer[1];
            int type = readOptionReply(data);
            if (type == NbdConstants.REP_ACK) {
                return;
            }
            if ((type & NbdConstants.REP_FLAG_ERROR) != 0) {
                throw new IOException("GO failed: " + StandardCharsets.UTF_8.decode(data[0]));
            }
            if (data[0].getShort() == NbdConstants.INFO_EXPORT) {
                sizeBytes = data[0].getLong();
                transmissionFlags = data[0].getShort() & 0xffff;
            }
        }
    }

    private void sendOption(int option, byte[] data) throws IOException {
        ByteBuffer header = ByteBuffer.allocate(16 + data.length);
        header.putLong(NbdConstants.IHAVEOPT).putInt(option).putInt(data.length).put(data);
        writeAll(header.flip());
    }

    private void expectAck() throws IOException {
        int type = readOptionReply(null);
        if (type != NbdConstants.REP_ACK) {
            throw new IOException("expected ACK, got " + Integer.toHexString(type));
        }
    }

    private int readOptionReply(ByteBuffer[] dataOut) throws IOException {
        ByteBuffer header = readExactly(20);
        if (header.getLong() != NbdConstants.OPTION_REPLY_MAGIC) {
            throw new IOException("bad option reply magic");
        }
        header.getInt();
        int type = header.getInt();
        ByteBuffer data = readExactly(header.getInt());
        if (dataOut != null) {
            dataOut[0] = data;
        }
        return type;
    }

    byte[] read(long offsetBytes, int lengthBytes) throws IOException {
        return finishRead(startRead(offsetBytes, lengthBytes), offsetBytes, lengthBytes);
    }

    /** Sends a READ without waiting for its reply; returns its cookie for {@link #finishRead}. */
    long startRead(long offsetBytes, int lengthBytes) throws IOException {
        return send(0, NbdConstants.CMD_READ, offsetBytes, lengthBytes, null);
    }

    /** Receives the reply to a READ sent with {@link #startRead}, which must be the next reply. */
    byte[] finishRead(long cookie, long offsetBytes, int lengthBytes) throws IOException {
        byte[] data = new byte[lengthBytes];
        receive(cookie, offsetBytes, data, null);
        return data;
    }

    void write(long offsetBytes, byte[] data, boolean fua) throws IOException {
        long cookie = send(fua ? NbdConstants.CMD_FLAG_FUA : 0, NbdConstants.CMD_WRITE, offsetBytes, data.length, data);
        receive(cookie, offsetBytes, null, null);
    }

    void flush() throws IOException {
        receive(send(0, NbdConstants.CMD_FLUSH, 0, 0, null), 0, null, null);
    }

    void trim(long offsetBytes, int lengthBytes) throws IOException {
        receive(send(0, NbdConstants.CMD_TRIM, offsetBytes, lengthBytes, null), offsetBytes, null, null);
    }

    void writeZeroes(long offsetBytes, int lengthBytes, int flags) throws IOException {
        receive(send(flags, NbdConstants.CMD_WRITE_ZEROES, offsetBytes, lengthBytes, null), offsetBytes, null, null);
    }

    List<Extent> blockStatus(long offsetBytes, int lengthBytes) throws IOException {
        List<Extent> extents = new ArrayList<>();
        receive(send(0, NbdConstants.CMD_BLOCK_STATUS, offsetBytes, lengthBytes, null), offsetBytes, null, extents);
        return extents;
    }

    private long send(int flags, int type, long offsetBytes, long lengthBytes, byte[] payload) throws IOException {
        long cookie = nextCookie++;
        ByteBuffer request = ByteBuffer.allocate(28 + (payload == null ? 0 : payload.length));
        request.putInt(NbdConstants.REQUEST_MAGIC).putShort((short) flags).putShort((short) type).putLong(cookie)
                .putLong(offsetBytes).putInt((int) lengthBytes);
        if (payload != null) {
            request.put(payload);
        }
        writeAll(request.flip());
        return cookie;
    }

    /** Reads the (structured) reply chunks of one request. */
    private void receive(long cookie, long offsetBytes, byte[] readInto, List<Extent> extents) throws IOException {
        while (true) {
            ByteBuffer magic = readExactly(4);
            int value = magic.getInt();
            if (value == NbdConstants.SIMPLE_REPLY_MAGIC) {
                ByteBuffer rest = readExactly(12);
                int error = rest.getInt();
                checkCookie(cookie, rest.getLong());
                if (error != 0) {
                    throw new NbdError(error, "");
                }
                if (readInto != null) {
                    // A simple reply to a READ: the data follows the header.
                    readExactly(readInto.length).get(readInto);
                }
                return;
            }
            if (value != NbdConstants.STRUCTURED_REPLY_MAGIC) {
                throw new IOException("bad reply magic " + Integer.toHexString(value));
            }
            ByteBuffer header = readExactly(16);
            int flags = header.getShort() & 0xffff;
            int type = header.getShort() & 0xffff;
            checkCookie(cookie, header.getLong());
            ByteBuffer payload = readExactly(header.getInt());
            switch (type) {
                case NbdConstants.REPLY_TYPE_NONE -> {
                }
                case NbdConstants.REPLY_TYPE_OFFSET_DATA -> {
                    long chunkOffset = payload.getLong();
                    payload.get(readInto, (int) (chunkOffset - offsetBytes), payload.remaining());
                }
                case NbdConstants.REPLY_TYPE_OFFSET_HOLE -> {
                    // Holes read as zeroes, which the fresh array already holds.
                }
                case NbdConstants.REPLY_TYPE_BLOCK_STATUS -> {
                    payload.getInt();
                    while (payload.hasRemaining()) {
                        extents.add(new Extent(Integer.toUnsignedLong(payload.getInt()), payload.getInt()));
                    }
                }
                default -> {
                    if ((type & 0x8000) == 0) {
                        throw new IOException("unknown chunk type " + type);
                    }
                    int error = payload.getInt();
                    byte[] message = new byte[payload.getShort() & 0xffff];
                    payload.get(message);
                    throw new NbdError(error, new String(message, StandardCharsets.UTF_8));
                }
            }
            if ((flags & NbdConstants.REPLY_FLAG_DONE) != 0) {
                return;
            }
        }
    }

    private static void checkCookie(long expected, long actual) throws IOException {
        if (expected != actual) {
            throw new IOException("reply for cookie " + actual + ", expected " + expected);
        }
    }

    private ByteBuffer readExactly(int lengthBytes) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(lengthBytes);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer) < 0) {
                throw new EOFException("server closed the connection");
            }
        }
        return buffer.flip();
    }

    private void writeAll(ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
    }

    /** Soft disconnect: NBD_CMD_DISC, then close. */
    @Override
    public void close() throws IOException {
        try {
            if (channel.isOpen()) {
                send(0, NbdConstants.CMD_DISC, 0, 0, null);
            }
        } catch (IOException ignored) {
            // The server may already be gone; closing is all that is left.
        } finally {
            channel.close();
        }
    }
}
