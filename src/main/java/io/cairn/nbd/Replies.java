package io.cairn.nbd;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/** Encoders for server messages: option replies and transmission replies. */
final class Replies {

    private Replies() {
    }

    // ---- handshake ----

    static ByteBuffer greeting() {
        ByteBuffer greeting = ByteBuffer.allocate(NbdConstants.GREETING_BYTES);
        greeting.putLong(NbdConstants.NBDMAGIC).putLong(NbdConstants.IHAVEOPT)
                .putShort((short) (NbdConstants.FLAG_FIXED_NEWSTYLE | NbdConstants.FLAG_NO_ZEROES));
        return greeting.flip();
    }

    static ByteBuffer optionReply(int option, int replyType, ByteBuffer data) {
        ByteBuffer reply = ByteBuffer.allocate(8 + 4 + 4 + 4 + data.remaining());
        reply.putLong(NbdConstants.OPTION_REPLY_MAGIC).putInt(option).putInt(replyType).putInt(data.remaining())
                .put(data.duplicate());
        return reply.flip();
    }

    static ByteBuffer optionAck(int option) {
        return optionReply(option, NbdConstants.REP_ACK, ByteBuffer.allocate(0));
    }

    static ByteBuffer optionError(int option, int errorType, String message) {
        return optionReply(option, errorType, ByteBuffer.wrap(truncatedUtf8(message)));
    }

    static ByteBuffer server(int option, String name, String description) {
        byte[] nameBytes = name.getBytes(StandardCharsets.UTF_8);
        byte[] descriptionBytes = truncatedUtf8(description);
        ByteBuffer data = ByteBuffer.allocate(4 + nameBytes.length + descriptionBytes.length);
        data.putInt(nameBytes.length).put(nameBytes).put(descriptionBytes);
        return optionReply(option, NbdConstants.REP_SERVER, data.flip());
    }

    static ByteBuffer infoExport(int option, long sizeBytes, int transmissionFlags) {
        ByteBuffer data = ByteBuffer.allocate(2 + 8 + 2);
        data.putShort((short) NbdConstants.INFO_EXPORT).putLong(sizeBytes).putShort((short) transmissionFlags);
        return optionReply(option, NbdConstants.REP_INFO, data.flip());
    }

    static ByteBuffer infoString(int option, int infoType, String value) {
        byte[] bytes = truncatedUtf8(value);
        ByteBuffer data = ByteBuffer.allocate(2 + bytes.length);
        data.putShort((short) infoType).put(bytes);
        return optionReply(option, NbdConstants.REP_INFO, data.flip());
    }

    static ByteBuffer infoBlockSize(int option) {
        ByteBuffer data = ByteBuffer.allocate(2 + 4 + 4 + 4);
        data.putShort((short) NbdConstants.INFO_BLOCK_SIZE).putInt(NbdConstants.MIN_BLOCK_BYTES)
                .putInt(NbdConstants.PREFERRED_BLOCK_BYTES).putInt(NbdConstants.MAX_PAYLOAD_BYTES);
        return optionReply(option, NbdConstants.REP_INFO, data.flip());
    }

    static ByteBuffer metaContext(int option, int contextId, String name) {
        byte[] nameBytes = name.getBytes(StandardCharsets.UTF_8);
        ByteBuffer data = ByteBuffer.allocate(4 + nameBytes.length);
        data.putInt(contextId).put(nameBytes);
        return optionReply(option, NbdConstants.REP_META_CONTEXT, data.flip());
    }

    /** Reply to NBD_OPT_EXPORT_NAME: size, flags and, for old clients, 124 bytes of zeroes. */
    static ByteBuffer exportNameReply(long sizeBytes, int transmissionFlags, boolean noZeroes) {
        int padding = noZeroes ? 0 : NbdConstants.EXPORT_NAME_PADDING_BYTES;
        ByteBuffer reply = ByteBuffer.allocate(8 + 2 + padding);
        reply.putLong(sizeBytes).putShort((short) transmissionFlags);
        return reply.position(reply.limit()).flip();
    }

    // ---- transmission ----

    static ByteBuffer simpleReply(long cookie, int error) {
        ByteBuffer reply = ByteBuffer.allocate(NbdConstants.SIMPLE_REPLY_HEADER_BYTES);
        reply.putInt(NbdConstants.SIMPLE_REPLY_MAGIC).putInt(error).putLong(cookie);
        return reply.flip();
    }

    /** Header of one structured reply chunk; the caller sends {@code payloadBytes} bytes after it. */
    static ByteBuffer chunkHeader(long cookie, int flags, int type, int payloadBytes) {
        ByteBuffer header = ByteBuffer.allocate(NbdConstants.STRUCTURED_REPLY_HEADER_BYTES);
        header.putInt(NbdConstants.STRUCTURED_REPLY_MAGIC).putShort((short) flags).putShort((short) type)
                .putLong(cookie).putInt(payloadBytes);
        return header.flip();
    }

    static ByteBuffer noneChunk(long cookie) {
        return chunkHeader(cookie, NbdConstants.REPLY_FLAG_DONE, NbdConstants.REPLY_TYPE_NONE, 0);
    }

    /** A final NBD_REPLY_TYPE_ERROR chunk carrying a human-readable message. */
    static ByteBuffer errorChunk(long cookie, int error, String message) {
        byte[] messageBytes = truncatedUtf8(message);
        ByteBuffer chunk = ByteBuffer.allocate(NbdConstants.STRUCTURED_REPLY_HEADER_BYTES + 4 + 2 + messageBytes.length);
        chunk.put(chunkHeader(cookie, NbdConstants.REPLY_FLAG_DONE, NbdConstants.REPLY_TYPE_ERROR,
                4 + 2 + messageBytes.length));
        chunk.putInt(error).putShort((short) messageBytes.length).put(messageBytes);
        return chunk.flip();
    }

    /** Strings on the wire must stay within the spec's 4096-byte limit; cut on a character boundary. */
    static byte[] truncatedUtf8(String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        if (bytes.length <= NbdConstants.MAX_STRING_BYTES) {
            return bytes;
        }
        int end = NbdConstants.MAX_STRING_BYTES;
        while (end > 0 && (bytes[end] & 0xC0) == 0x80) {
            end--;
        }
        return java.util.Arrays.copyOf(bytes, end);
    }
}
