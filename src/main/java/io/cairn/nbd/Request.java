package io.cairn.nbd;

import java.nio.ByteBuffer;

/**
 * One decoded transmission-phase request header. Nothing here is trusted yet: the reader checks the
 * magic, and {@link Transmission#validate} checks everything else before the request is executed.
 *
 * @param commandFlags 16 bits of NBD_CMD_FLAG_*
 * @param type         16 bits, NBD_CMD_*
 * @param cookie       opaque, echoed in the reply
 * @param offsetBytes  unsigned 64 bits; values of 2^63 and above are negative here and always out of range
 * @param lengthBytes  unsigned 32 bits, widened so it is never negative
 */
record Request(int commandFlags, int type, long cookie, long offsetBytes, long lengthBytes) {

    /** True if the 28-byte header starting at the buffer's position carries NBD_REQUEST_MAGIC. */
    static boolean hasRequestMagic(ByteBuffer header) {
        return header.getInt(header.position()) == NbdConstants.REQUEST_MAGIC;
    }

    /** Decodes a 28-byte header (position to limit), magic included but not checked. */
    static Request decode(ByteBuffer header) {
        if (header.remaining() != NbdConstants.REQUEST_HEADER_BYTES) {
            throw new IllegalArgumentException("request header must be 28 bytes, got " + header.remaining());
        }
        header.getInt();
        int flags = Short.toUnsignedInt(header.getShort());
        int type = Short.toUnsignedInt(header.getShort());
        long cookie = header.getLong();
        long offset = header.getLong();
        long length = Integer.toUnsignedLong(header.getInt());
        return new Request(flags, type, cookie, offset, length);
    }

    /** Encodes the header (the client's side; used by tests and tools). */
    ByteBuffer encode() {
        ByteBuffer header = ByteBuffer.allocate(NbdConstants.REQUEST_HEADER_BYTES);
        header.putInt(NbdConstants.REQUEST_MAGIC).putShort((short) commandFlags).putShort((short) type)
                .putLong(cookie).putLong(offsetBytes).putInt((int) lengthBytes);
        return header.flip();
    }

    static String commandName(int type) {
        return switch (type) {
            case NbdConstants.CMD_READ -> "READ";
            case NbdConstants.CMD_WRITE -> "WRITE";
            case NbdConstants.CMD_DISC -> "DISC";
            case NbdConstants.CMD_FLUSH -> "FLUSH";
            case NbdConstants.CMD_TRIM -> "TRIM";
            case NbdConstants.CMD_CACHE -> "CACHE";
            case NbdConstants.CMD_WRITE_ZEROES -> "WRITE_ZEROES";
            case NbdConstants.CMD_BLOCK_STATUS -> "BLOCK_STATUS";
            default -> "command " + type;
        };
    }
}
