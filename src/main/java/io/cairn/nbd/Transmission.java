package io.cairn.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * The transmission phase of one connection, without any I/O of its own: {@link #validate} is the gate
 * every request passes before anything touches the export, and {@link #execute} runs a validated
 * request and hands its reply to a {@link ReplySink}.
 *
 * <p>Design notes:
 * <ol>
 *   <li>Nothing reaches the export unless {@link #validate} returned null for it. So the export sees
 *       only known commands, known flags, in-range offsets and payloads of at most 32 MiB.</li>
 *   <li>Every request gets exactly one reply (a simple reply, or structured chunks ending in one
 *       with NBD_REPLY_FLAG_DONE), except DISC which the reader handles and never gets here.</li>
 *   <li>Once structured replies are negotiated, READ is never answered with a simple reply, not even
 *       for errors (spec, "Structured reply chunk message").</li>
 *   <li>An exception from the export becomes an error reply for that request only.</li>
 * </ol>
 *
 * <p>Threading: {@link #validate} is called by the connection's reader; {@link #execute} by many
 * worker threads at once. The object is immutable after construction.
 */
final class Transmission {

    /** Why a request was refused: an NBD error value and a message for the client's user. */
    record Rejection(int error, String message) {
    }

    /** A context the client selected with NBD_OPT_SET_META_CONTEXT, under the id we gave it. */
    record SelectedContext(int id, MetaContext context) {
    }

    private final NbdExport export;
    private final long sizeBytes;
    private final boolean structuredReplies;
    private final List<SelectedContext> contexts;
    private final int transmissionFlags;
    private final PayloadBuffers allocator;

    Transmission(NbdExport export, boolean structuredReplies, List<SelectedContext> contexts,
                 PayloadBuffers allocator) {
        this.allocator = allocator;
        this.export = export;
        this.sizeBytes = export.sizeBytes();
        this.structuredReplies = structuredReplies;
        this.contexts = List.copyOf(contexts);
        this.transmissionFlags = flagsFor(export, structuredReplies);
    }

    /** The transmission flags we advertise for an export. */
    static int flagsFor(NbdExport export, boolean structuredReplies) {
        int flags = NbdConstants.FLAG_HAS_FLAGS | NbdConstants.FLAG_SEND_FLUSH | NbdConstants.FLAG_SEND_FUA
                | NbdConstants.FLAG_SEND_CACHE;
        if (export.readOnly()) {
            flags |= NbdConstants.FLAG_READ_ONLY;
        } else {
            flags |= NbdConstants.FLAG_SEND_TRIM | NbdConstants.FLAG_SEND_WRITE_ZEROES
                    | NbdConstants.FLAG_SEND_FAST_ZERO;
        }
        if (export.canFlushAcrossConnections()) {
            flags |= NbdConstants.FLAG_CAN_MULTI_CONN;
        }
        if (structuredReplies) {
            // Reads are always answered with a single data chunk, so "don't fragment" costs nothing.
            flags |= NbdConstants.FLAG_SEND_DF;
        }
        return flags;
    }

    int transmissionFlags() {
        return transmissionFlags;
    }

    boolean structuredReplies() {
        return structuredReplies;
    }

    NbdExport export() {
        return export;
    }

    /** The gate: null if the request may run, otherwise why not. DISC never comes here. */
    Rejection validate(Request request) {
        int type = request.type();
        if (type > NbdConstants.CMD_BLOCK_STATUS || type == NbdConstants.CMD_DISC) {
            return new Rejection(NbdConstants.EINVAL, "unknown command " + type);
        }
        int unknownFlags = request.commandFlags() & ~allowedFlags(type);
        if (unknownFlags != 0) {
            return new Rejection(NbdConstants.EINVAL, String.format("flags 0x%x not valid for %s",
                    unknownFlags, Request.commandName(type)));
        }
        boolean writes = type == NbdConstants.CMD_WRITE || type == NbdConstants.CMD_TRIM
                || type == NbdConstants.CMD_WRITE_ZEROES;
        if (writes && export.readOnly()) {
            return new Rejection(NbdConstants.EPERM, "export is read-only");
        }
        long offsetBytes = request.offsetBytes();
        long lengthBytes = request.lengthBytes();
        switch (type) {
            case NbdConstants.CMD_FLUSH -> {
                if (offsetBytes != 0 || lengthBytes != 0) {
                    return new Rejection(NbdConstants.EINVAL, "FLUSH must have offset and length 0");
                }
                return null;
            }
            case NbdConstants.CMD_READ, NbdConstants.CMD_WRITE -> {
                if (lengthBytes > NbdConstants.MAX_PAYLOAD_BYTES) {
                    // The spec allows EOVERFLOW for a structured read that is too large to send at once.
                    int error = type == NbdConstants.CMD_READ && structuredReplies
                            ? NbdConstants.EOVERFLOW : NbdConstants.EINVAL;
                    return new Rejection(error, "payload of " + lengthBytes + " bytes exceeds the maximum of "
                            + NbdConstants.MAX_PAYLOAD_BYTES);
                }
            }
            case NbdConstants.CMD_BLOCK_STATUS -> {
                if (contexts.isEmpty()) {
                    return new Rejection(NbdConstants.EINVAL, "BLOCK_STATUS without a selected metadata context");
                }
                if (lengthBytes == 0) {
                    // A reply needs at least one extent of nonzero length, which a 0-byte query cannot have.
                    return new Rejection(NbdConstants.EINVAL, "BLOCK_STATUS of length 0");
                }
            }
            default -> {
            }
        }
        if (!inRange(offsetBytes, lengthBytes)) {
            // Spec, "Error values": ENOSPC for writes past the end, EINVAL for everything else.
            int error = type == NbdConstants.CMD_WRITE || type == NbdConstants.CMD_WRITE_ZEROES
                    ? NbdConstants.ENOSPC : NbdConstants.EINVAL;
            return new Rejection(error, Request.commandName(type) + " of " + lengthBytes + " bytes at offset "
                    + Long.toUnsignedString(offsetBytes) + " is beyond the export size " + sizeBytes);
        }
        return null;
    }

    private int allowedFlags(int type) {
        // FUA is valid on every command once SEND_FUA is advertised, which we always do.
        int allowed = NbdConstants.CMD_FLAG_FUA;
        switch (type) {
            case NbdConstants.CMD_READ -> {
                if (structuredReplies) {
                    allowed |= NbdConstants.CMD_FLAG_DF;
                }
            }
            case NbdConstants.CMD_WRITE_ZEROES -> allowed |= NbdConstants.CMD_FLAG_NO_HOLE | NbdConstants.CMD_FLAG_FAST_ZERO;
            case NbdConstants.CMD_BLOCK_STATUS -> allowed |= NbdConstants.CMD_FLAG_REQ_ONE;
            default -> {
            }
        }
        return allowed;
    }

    /** offset + length ≤ size, in unsigned arithmetic and without overflow. */
    private boolean inRange(long offsetBytes, long lengthBytes) {
        return offsetBytes >= 0 && offsetBytes <= sizeBytes && lengthBytes <= sizeBytes - offsetBytes;
    }

    /** Sends the error reply for a request that failed validation. */
    void reject(Request request, Rejection rejection, ReplySink sink) throws IOException {
        reject(request, rejection, sink, ReplySink.NOTHING);
    }

    private void reject(Request request, Rejection rejection, ReplySink sink, Runnable afterSent) throws IOException {
        sink.send(afterSent, errorReply(request, rejection));
    }

    private ByteBuffer[] errorReply(Request request, Rejection rejection) {
        return new ByteBuffer[] {structuredReplies
                ? Replies.errorChunk(request.cookie(), rejection.error(), rejection.message())
                : Replies.simpleReply(request.cookie(), rejection.error())};
    }

    /**
     * Runs a validated request and sends its reply. Export failures become error replies; only a
     * failure to send (the connection is gone) escapes as IOException.
     *
     * @param payload   the WRITE data, exactly {@code lengthBytes} long; null for other commands
     * @param afterSent runs once the reply is on the wire or the connection failed (see {@link ReplySink})
     */
    void execute(Request request, ByteBuffer payload, ReplySink sink, Runnable afterSent) throws IOException {
        if (request.type() == NbdConstants.CMD_READ && request.lengthBytes() >= LEND_MIN_BYTES && sink.lendsInPlace()) {
            sink.sendLentRead(new LentRead(export, request.offsetBytes(), (int) request.lengthBytes(),
                    readReplyHeader(request.cookie(), request.offsetBytes(), (int) request.lengthBytes()),
                    failure -> errorReply(request, new Rejection(NbdErrors.errorFor(failure), NbdErrors.describe(failure)))),
                    afterSent);
            return;
        }
        List<ByteBuffer> reply;
        try {
            reply = perform(request, payload);
        } catch (Throwable failure) {
            // The handler boundary: whatever the export throws becomes this request's error reply.
            reject(request, new Rejection(NbdErrors.errorFor(failure), NbdErrors.describe(failure)), sink, afterSent);
            return;
        }
        if (request.type() == NbdConstants.CMD_READ && request.lengthBytes() > 0) {
            // The data buffer is the last one of a READ reply; it goes back to the pool once written.
            ByteBuffer data = reply.getLast();
            sink.send(() -> {
                allocator.release(data);
                afterSent.run();
            }, reply.toArray(ByteBuffer[]::new));
        } else {
            sink.send(afterSent, reply.toArray(ByteBuffer[]::new));
        }
    }

    /**
     * READs of at least this many bytes go to the sink as {@link LentRead}s when it can send them in place: a
     * 1 MiB reply then costs one copy (page cache to socket) instead of two. Smaller ones are copied as they
     * run, in parallel, rather than looked up one after another by the thread writing replies.
     */
    static final int LEND_MIN_BYTES = 256 * 1024;

    private List<ByteBuffer> perform(Request request, ByteBuffer payload) {
        long cookie = request.cookie();
        long offsetBytes = request.offsetBytes();
        long lengthBytes = request.lengthBytes();
        boolean fua = (request.commandFlags() & NbdConstants.CMD_FLAG_FUA) != 0;
        // Zero-length requests are unspecified by the protocol; we treat them as successful no-ops.
        boolean empty = lengthBytes == 0;
        switch (request.type()) {
            case NbdConstants.CMD_READ -> {
                return read(cookie, offsetBytes, (int) lengthBytes);
            }
            case NbdConstants.CMD_WRITE -> {
                if (!empty) {
                    export.write(offsetBytes, payload, fua);
                }
            }
            case NbdConstants.CMD_FLUSH -> export.flush();
            case NbdConstants.CMD_TRIM -> {
                if (!empty) {
                    export.trim(offsetBytes, lengthBytes, fua);
                }
            }
            case NbdConstants.CMD_CACHE -> {
                if (!empty) {
                    export.cache(offsetBytes, lengthBytes);
                }
            }
            case NbdConstants.CMD_WRITE_ZEROES -> {
                if (!empty) {
                    int flags = request.commandFlags();
                    export.writeZeroes(offsetBytes, lengthBytes, fua,
                            (flags & NbdConstants.CMD_FLAG_NO_HOLE) == 0,
                            (flags & NbdConstants.CMD_FLAG_FAST_ZERO) != 0);
                }
            }
            case NbdConstants.CMD_BLOCK_STATUS -> {
                return blockStatus(request);
            }
            default -> throw new IllegalStateException("unvalidated command " + request.type());
        }
        return List.of(Replies.simpleReply(cookie, 0));
    }

    private List<ByteBuffer> read(long cookie, long offsetBytes, int lengthBytes) {
        if (lengthBytes == 0) {
            return List.of(structuredReplies ? Replies.noneChunk(cookie) : Replies.simpleReply(cookie, 0));
        }
        ByteBuffer data = allocator.apply(lengthBytes);
        try {
            export.read(offsetBytes, data);
        } catch (RuntimeException | Error failure) {
            allocator.release(data);
            throw failure;
        }
        data.clear().limit(lengthBytes);
        return List.of(readReplyHeader(cookie, offsetBytes, lengthBytes), data);
    }

    /** The header of a successful READ reply; structured, it is one OFFSET_DATA chunk that carries DONE. */
    private ByteBuffer readReplyHeader(long cookie, long offsetBytes, int lengthBytes) {
        if (!structuredReplies) {
            return Replies.simpleReply(cookie, 0);
        }
        // The data is complete before the header goes out, so this one chunk may carry DONE.
        ByteBuffer header = ByteBuffer.allocate(NbdConstants.STRUCTURED_REPLY_HEADER_BYTES + 8);
        header.put(Replies.chunkHeader(cookie, NbdConstants.REPLY_FLAG_DONE, NbdConstants.REPLY_TYPE_OFFSET_DATA,
                8 + lengthBytes));
        header.putLong(offsetBytes);
        return header.flip();
    }

    private List<ByteBuffer> blockStatus(Request request) {
        boolean onlyOne = (request.commandFlags() & NbdConstants.CMD_FLAG_REQ_ONE) != 0;
        List<ByteBuffer> chunks = new ArrayList<>(contexts.size());
        for (int i = 0; i < contexts.size(); i++) {
            SelectedContext selected = contexts.get(i);
            List<Extent> extents = selected.context().status(export, request.offsetBytes(), request.lengthBytes());
            ByteBuffer descriptors = encodeDescriptors(extents, request.lengthBytes(), onlyOne);
            int flags = i == contexts.size() - 1 ? NbdConstants.REPLY_FLAG_DONE : 0;
            ByteBuffer chunk = ByteBuffer.allocate(NbdConstants.STRUCTURED_REPLY_HEADER_BYTES + 4 + descriptors.remaining());
            chunk.put(Replies.chunkHeader(request.cookie(), flags, NbdConstants.REPLY_TYPE_BLOCK_STATUS,
                    4 + descriptors.remaining()));
            chunk.putInt(selected.id()).put(descriptors);
            chunks.add(chunk.flip());
        }
        return chunks;
    }

    /**
     * Encodes extents as (length, flags) descriptors, trimmed to the requested length: the spec lets
     * the last extent run past the request, but trimming is always valid and keeps REQ_ONE honest. An
     * empty answer becomes one extent with flags 0, which the spec says is always a safe status.
     */
    static ByteBuffer encodeDescriptors(List<Extent> extents, long requestedBytes, boolean onlyOne) {
        int maxDescriptors = onlyOne ? 1 : Math.min(extents.size(), NbdConstants.MAX_BLOCK_STATUS_DESCRIPTORS);
        ByteBuffer descriptors = ByteBuffer.allocate(8 * Math.max(1, maxDescriptors));
        long coveredBytes = 0;
        for (Extent extent : extents) {
            if (coveredBytes >= requestedBytes || descriptors.remaining() == 0) {
                break;
            }
            long lengthBytes = Math.min(extent.lengthBytes(), requestedBytes - coveredBytes);
            descriptors.putInt((int) lengthBytes).putInt(extent.flags());
            coveredBytes += lengthBytes;
        }
        if (coveredBytes == 0) {
            descriptors.putInt((int) requestedBytes).putInt(0);
        }
        return descriptors.flip();
    }
}
