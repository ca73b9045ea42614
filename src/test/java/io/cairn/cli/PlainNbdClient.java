package io.cairn.cli;

import io.cairn.nbd.NbdConstants;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.channels.Channels;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;

/**
 * The smallest useful NBD client, written from the protocol (fixed newstyle, OPT_GO, simple replies,
 * one request at a time) over any pair of channels: a TCP socket, or the pipes of a server started in
 * inetd mode. Independent of the server's code except the protocol constants.
 */
final class PlainNbdClient implements AutoCloseable {

    /** The server answered a request with an NBD error. */
    static final class NbdError extends IOException {
        final int error;

        NbdError(int error) {
            super("NBD error " + error);
            this.error = error;
        }
    }

    private final ReadableByteChannel in;
    private final WritableByteChannel out;
    private long sizeBytes;
    private int transmissionFlags;
    private long nextCookie = 1;

    private PlainNbdClient(ReadableByteChannel in, WritableByteChannel out) {
        this.in = in;
        this.out = out;
    }

    /** A silent server fails the read after this long instead of hanging the test. */
    static final int READ_TIMEOUT_MILLIS = 60_000;

    static PlainNbdClient connect(int port, String export) throws IOException {
        Socket socket = new Socket();
        try {
            socket.connect(new InetSocketAddress("127.0.0.1", port), READ_TIMEOUT_MILLIS);
            socket.setTcpNoDelay(true);
            socket.setSoTimeout(READ_TIMEOUT_MILLIS);
            return over(Channels.newChannel(socket.getInputStream()), flushing(socket.getOutputStream()), export);
        } catch (IOException | RuntimeException e) {
            socket.close();
            throw e;
        }
    }

    /** A channel over a stream that flushes every write (a process's stdin is buffered). */
    static WritableByteChannel flushing(OutputStream stream) {
        return new WritableByteChannel() {
            private boolean open = true;

            @Override
            public int write(ByteBuffer src) throws IOException {
                byte[] bytes = new byte[src.remaining()];
                src.get(bytes);
                stream.write(bytes);
                stream.flush();
                return bytes.length;
            }

            @Override
            public boolean isOpen() {
                return open;
            }

            @Override
            public void close() throws IOException {
                open = false;
                stream.close();
            }
        };
    }

    /** Negotiates {@code export} over an already connected pair of channels. */
    static PlainNbdClient over(ReadableByteChannel in, WritableByteChannel out, String export) throws IOException {
        PlainNbdClient client = new PlainNbdClient(in, out);
        client.handshake(export);
        return client;
    }

    long sizeBytes() {
        return sizeBytes;
    }

    boolean readOnly() {
        return (transmissionFlags & NbdConstants.FLAG_READ_ONLY) != 0;
    }

    private void handshake(String export) throws IOException {
        ByteBuffer greeting = readExactly(NbdConstants.GREETING_BYTES);
        if (greeting.getLong() != NbdConstants.NBDMAGIC || greeting.getLong() != NbdConstants.IHAVEOPT) {
            throw new IOException("not a newstyle NBD server");
        }
        writeAll(ByteBuffer.allocate(4).putInt(NbdConstants.FLAG_C_FIXED_NEWSTYLE | NbdConstants.FLAG_C_NO_ZEROES).flip());
        byte[] name = export.getBytes(StandardCharsets.UTF_8);
        ByteBuffer go = ByteBuffer.allocate(16 + 4 + name.length + 2);
        go.putLong(NbdConstants.IHAVEOPT).putInt(NbdConstants.OPT_GO).putInt(4 + name.length + 2)
                .putInt(name.length).put(name).putShort((short) 0);
        writeAll(go.flip());
        while (true) {
            ByteBuffer header = readExactly(20);
            if (header.getLong() != NbdConstants.OPTION_REPLY_MAGIC) {
                throw new IOException("bad option reply magic");
            }
            header.getInt();
            int type = header.getInt();
            ByteBuffer data = readExactly(header.getInt());
            if (type == NbdConstants.REP_ACK) {
                return;
            }
            if ((type & NbdConstants.REP_FLAG_ERROR) != 0) {
                throw new IOException("OPT_GO for '" + export + "' refused (" + Integer.toHexString(type) + "): "
                        + StandardCharsets.UTF_8.decode(data));
            }
            if (type == NbdConstants.REP_INFO && data.getShort() == NbdConstants.INFO_EXPORT) {
                sizeBytes = data.getLong();
                transmissionFlags = data.getShort() & 0xffff;
            }
        }
    }

    byte[] read(long offsetBytes, int lengthBytes) throws IOException {
        long cookie = send(0, NbdConstants.CMD_READ, offsetBytes, lengthBytes, null);
        reply(cookie);
        byte[] data = new byte[lengthBytes];
        ByteBuffer buffer = ByteBuffer.wrap(data);
        fill(buffer);
        return data;
    }

    void write(long offsetBytes, byte[] data, boolean fua) throws IOException {
        reply(send(fua ? NbdConstants.CMD_FLAG_FUA : 0, NbdConstants.CMD_WRITE, offsetBytes, data.length, data));
    }

    void writeZeroes(long offsetBytes, int lengthBytes) throws IOException {
        reply(send(0, NbdConstants.CMD_WRITE_ZEROES, offsetBytes, lengthBytes, null));
    }

    void flush() throws IOException {
        reply(send(0, NbdConstants.CMD_FLUSH, 0, 0, null));
    }

    private long send(int flags, int type, long offsetBytes, int lengthBytes, byte[] payload) throws IOException {
        long cookie = nextCookie++;
        ByteBuffer request = ByteBuffer.allocate(NbdConstants.REQUEST_HEADER_BYTES + (payload == null ? 0 : payload.length));
        request.putInt(NbdConstants.REQUEST_MAGIC).putShort((short) flags).putShort((short) type).putLong(cookie)
                .putLong(offsetBytes).putInt(lengthBytes);
        if (payload != null) {
            request.put(payload);
        }
        writeAll(request.flip());
        return cookie;
    }

    private void reply(long cookie) throws IOException {
        ByteBuffer header = readExactly(NbdConstants.SIMPLE_REPLY_HEADER_BYTES);
        if (header.getInt() != NbdConstants.SIMPLE_REPLY_MAGIC) {
            throw new IOException("bad reply magic");
        }
        int error = header.getInt();
        if (header.getLong() != cookie) {
            throw new IOException("reply for another request");
        }
        if (error != 0) {
            throw new NbdError(error);
        }
    }

    private ByteBuffer readExactly(int lengthBytes) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(lengthBytes);
        fill(buffer);
        return buffer.flip();
    }

    private void fill(ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            if (in.read(buffer) < 0) {
                throw new EOFException("server closed the connection");
            }
        }
    }

    private void writeAll(ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            out.write(buffer);
        }
    }

    /** NBD_CMD_DISC, then closes the channel to the server only (what the server says after can still be read). */
    void disconnect() throws IOException {
        send(0, NbdConstants.CMD_DISC, 0, 0, null);
        out.close();
    }

    /** NBD_CMD_DISC, then closes both channels. */
    @Override
    public void close() throws IOException {
        try {
            send(0, NbdConstants.CMD_DISC, 0, 0, null);
        } catch (IOException ignored) {
            // The server may be gone already.
        } finally {
            try {
                out.close();
            } finally {
                in.close();
            }
        }
    }
}
