package io.cairn.nbd;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The fixed-newstyle handshake of one connection as a state machine, without I/O: the connection
 * reads the client flags and each option (already bounded in length) and passes them here; replies
 * come back as buffers to send.
 *
 * <p>States: {@link State#AWAIT_CLIENT_FLAGS} → {@link State#OPTIONS} → {@link State#TRANSMISSION}
 * (after a successful GO or EXPORT_NAME), {@link State#RELAY} (an option named an export another server
 * serves) or {@link State#CLOSED}. Calls in the wrong state throw
 * IllegalStateException: that would be a bug in the connection, not in the client.
 *
 * <p>Design notes:
 * <ol>
 *   <li>Oldstyle negotiation is never offered: we always send the newstyle greeting with
 *       FIXED_NEWSTYLE set. A client that leaves NBD_FLAG_C_FIXED_NEWSTYLE clear still gets fixed
 *       newstyle behaviour, which the spec permits.</li>
 *   <li>Every option except EXPORT_NAME gets a reply; a malformed option gets an error reply and the
 *       session goes on, because the spec lets the server hang up only on DoS or mandatory-rule
 *       breaches it cannot answer (bad magic, bad client flags, EXPORT_NAME failures).</li>
 *   <li>At most one export is open at a time: INFO opens and closes; GO and EXPORT_NAME keep it and
 *       hand it to the transmission phase, which closes it. {@link #abandon()} closes it otherwise.</li>
 *   <li>An option naming an export that the catalog says another server serves
 *       ({@link ServedElsewhereException}) gets no reply here: the connection relays the rest of the session
 *       there, starting with that option ({@link Relay}). If the other server cannot be reached,
 *       {@link #relayFailed} answers the option with an error instead and the session goes on here.</li>
 * </ol>
 *
 * <p>Threading: confined to the connection's reader thread.
 */
final class Handshake {

    private static final Logger log = LoggerFactory.getLogger(Handshake.class);

    enum State { AWAIT_CLIENT_FLAGS, OPTIONS, TRANSMISSION, RELAY, CLOSED }

    /** What the connection does after a step. */
    enum Next { CONTINUE, TRANSMISSION, RELAY, CLOSE }

    private final ExportCatalog catalog;
    private final MetaContexts metaContexts;
    private final BooleanSupplier shuttingDown;
    private final String peer;
    private final PayloadBuffers allocator;

    private State state = State.AWAIT_CLIENT_FLAGS;
    private boolean noZeroes;
    private boolean structuredReplies;
    private int optionCount;
    /** Contexts from the last SET_META_CONTEXT, valid only if GO names the same export. */
    private List<Transmission.SelectedContext> selectedContexts = List.of();
    private String selectedContextsExport;

    private NbdExport export;
    private String exportName;
    /** Set by {@link #tryOpen} when the export is served elsewhere: where, and under which name. */
    private ServedElsewhereException servedElsewhere;
    /** Why the last {@link #tryOpen} failed, if the catalog said. */
    private String lastOpenFailure;

    Handshake(ExportCatalog catalog, MetaContexts metaContexts, BooleanSupplier shuttingDown, String peer,
              PayloadBuffers allocator) {
        this.allocator = allocator;
        this.catalog = catalog;
        this.metaContexts = metaContexts;
        this.shuttingDown = shuttingDown;
        this.peer = peer;
    }

    State state() {
        return state;
    }

    /** The greeting the server sends first. */
    ByteBuffer greeting() {
        return Replies.greeting();
    }

    Next onClientFlags(int clientFlags) {
        requireState(State.AWAIT_CLIENT_FLAGS);
        if ((clientFlags & ~NbdConstants.KNOWN_CLIENT_FLAGS) != 0) {
            // Spec, "Client flags": the server MUST drop the connection on unknown client flags.
            log.debug("{}: unknown client flags 0x{}, closing", peer, Integer.toHexString(clientFlags));
            state = State.CLOSED;
            return Next.CLOSE;
        }
        noZeroes = (clientFlags & NbdConstants.FLAG_C_NO_ZEROES) != 0;
        state = State.OPTIONS;
        return Next.CONTINUE;
    }

    /** An option whose data was too long to read; the connection has already skipped the data. */
    Next onOversizedOption(int option, long lengthBytes, List<ByteBuffer> replies) {
        requireState(State.OPTIONS);
        if (tooManyOptions()) {
            return Next.CLOSE;
        }
        log.debug("{}: option {} with {} bytes of data is too big", peer, option, lengthBytes);
        if (option == NbdConstants.OPT_EXPORT_NAME) {
            // EXPORT_NAME cannot carry an error reply; the only answer to a bad one is hanging up.
            state = State.CLOSED;
            return Next.CLOSE;
        }
        replies.add(Replies.optionError(option, NbdConstants.REP_ERR_TOO_BIG,
                "option data of " + lengthBytes + " bytes exceeds " + NbdConstants.MAX_OPTION_BYTES));
        return Next.CONTINUE;
    }

    /**
     * Handles one option.
     *
     * @param data the option data, at most {@link NbdConstants#MAX_OPTION_BYTES} long
     */
    Next onOption(int option, ByteBuffer data, List<ByteBuffer> replies) {
        requireState(State.OPTIONS);
        if (tooManyOptions()) {
            return Next.CLOSE;
        }
        log.debug("{}: option {} with {} bytes of data", peer, optionName(option), data.remaining());
        if (shuttingDown.getAsBoolean() && option != NbdConstants.OPT_ABORT) {
            if (option == NbdConstants.OPT_EXPORT_NAME) {
                state = State.CLOSED;
                return Next.CLOSE;
            }
            replies.add(Replies.optionError(option, NbdConstants.REP_ERR_SHUTDOWN, "server is shutting down"));
            return Next.CONTINUE;
        }
        try {
            return switch (option) {
                case NbdConstants.OPT_EXPORT_NAME -> exportName(data, replies);
                case NbdConstants.OPT_ABORT -> {
                    replies.add(Replies.optionAck(option));
                    state = State.CLOSED;
                    yield Next.CLOSE;
                }
                case NbdConstants.OPT_LIST -> list(data, replies);
                case NbdConstants.OPT_STARTTLS -> {
                    // This server has no TLS (NOTLS mode): the spec's answer is UNSUP or POLICY.
                    replies.add(data.hasRemaining()
                            ? Replies.optionError(option, NbdConstants.REP_ERR_INVALID, "STARTTLS takes no data")
                            : Replies.optionError(option, NbdConstants.REP_ERR_UNSUP, "TLS is not supported"));
                    yield Next.CONTINUE;
                }
                case NbdConstants.OPT_INFO, NbdConstants.OPT_GO -> infoOrGo(option, data, replies);
                case NbdConstants.OPT_STRUCTURED_REPLY -> {
                    if (data.hasRemaining()) {
                        replies.add(Replies.optionError(option, NbdConstants.REP_ERR_INVALID,
                                "STRUCTURED_REPLY takes no data"));
                    } else {
                        structuredReplies = true;
                        replies.add(Replies.optionAck(option));
                    }
                    yield Next.CONTINUE;
                }
                case NbdConstants.OPT_LIST_META_CONTEXT, NbdConstants.OPT_SET_META_CONTEXT ->
                        metaContext(option, data, replies);
                default -> {
                    replies.add(Replies.optionError(option, NbdConstants.REP_ERR_UNSUP,
                            "option " + option + " is not supported"));
                    yield Next.CONTINUE;
                }
            };
        } catch (MalformedOptionException malformed) {
            replies.add(Replies.optionError(option, NbdConstants.REP_ERR_INVALID, malformed.getMessage()));
            return Next.CONTINUE;
        }
    }

    private boolean tooManyOptions() {
        if (++optionCount > NbdConstants.MAX_OPTIONS_PER_CONNECTION) {
            log.warn("{}: more than {} options, closing", peer, NbdConstants.MAX_OPTIONS_PER_CONNECTION);
            state = State.CLOSED;
            return true;
        }
        return false;
    }

    private Next exportName(ByteBuffer data, List<ByteBuffer> replies) {
        String requested;
        try {
            requested = readString(data, data.remaining(), "export name");
        } catch (MalformedOptionException malformed) {
            state = State.CLOSED;
            return Next.CLOSE;
        }
        String name = resolve(requested);
        NbdExport opened = name == null ? null : tryOpen(name);
        if (servedElsewhere != null) {
            return relay();
        }
        if (opened == null) {
            // No error reply exists for EXPORT_NAME; the spec says to terminate the session.
            state = State.CLOSED;
            return Next.CLOSE;
        }
        keepContextsOnlyFor(requested);
        export = opened;
        exportName = name;
        replies.add(Replies.exportNameReply(opened.sizeBytes(), Transmission.flagsFor(opened, structuredReplies), noZeroes));
        state = State.TRANSMISSION;
        return Next.TRANSMISSION;
    }

    private Next list(ByteBuffer data, List<ByteBuffer> replies) {
        if (data.hasRemaining()) {
            throw new MalformedOptionException("LIST takes no data");
        }
        for (ExportDescription description : catalog.list()) {
            replies.add(Replies.server(NbdConstants.OPT_LIST, description.name(), description.description()));
        }
        replies.add(Replies.optionAck(NbdConstants.OPT_LIST));
        return Next.CONTINUE;
    }

    private Next infoOrGo(int option, ByteBuffer data, List<ByteBuffer> replies) {
        // Data: u32 name length, name, u16 count, count × u16 info requests; nothing else.
        String requested = readString(data, readLength(data, 4, "export name"), "export name");
        long requestCount = readLength(data, 2, "information request count");
        if (data.remaining() != 2 * requestCount) {
            throw new MalformedOptionException("information request list does not match option length");
        }
        Set<Integer> infoRequests = new LinkedHashSet<>();
        for (long i = 0; i < requestCount; i++) {
            infoRequests.add(Short.toUnsignedInt(data.getShort()));
        }
        String name = resolve(requested);
        NbdExport opened = name == null ? null : tryOpen(name);
        if (servedElsewhere != null) {
            return relay();
        }
        if (opened == null) {
            replies.add(Replies.optionError(option, NbdConstants.REP_ERR_UNKNOWN, unknownExport(name)));
            return Next.CONTINUE;
        }
        boolean go = option == NbdConstants.OPT_GO;
        if (go) {
            keepContextsOnlyFor(requested);
        }
        replies.add(Replies.infoExport(option, opened.sizeBytes(), Transmission.flagsFor(opened, structuredReplies)));
        if (infoRequests.contains(NbdConstants.INFO_NAME) || !name.equals(requested)) {
            replies.add(Replies.infoString(option, NbdConstants.INFO_NAME, name));
        }
        if (infoRequests.contains(NbdConstants.INFO_DESCRIPTION)) {
            String description = catalog.description(name);
            if (!description.isEmpty()) {
                replies.add(Replies.infoString(option, NbdConstants.INFO_DESCRIPTION, description));
            }
        }
        // Sent even unrequested: these are the default constraints, so clients may ignore them.
        replies.add(Replies.infoBlockSize(option));
        replies.add(Replies.optionAck(option));
        if (!go) {
            opened.close();
            return Next.CONTINUE;
        }
        export = opened;
        exportName = name;
        state = State.TRANSMISSION;
        return Next.TRANSMISSION;
    }

    private Next metaContext(int option, ByteBuffer data, List<ByteBuffer> replies) {
        boolean set = option == NbdConstants.OPT_SET_META_CONTEXT;
        if (set) {
            // Spec: SET replaces the previous selection even when it fails.
            selectedContexts = List.of();
            selectedContextsExport = null;
        }
        if (!structuredReplies) {
            replies.add(Replies.optionError(option, NbdConstants.REP_ERR_INVALID,
                    "negotiate structured replies before metadata contexts"));
            return Next.CONTINUE;
        }
        // Data: u32 name length, name, u32 query count, count × (u32 length, query).
        String requested = readString(data, readLength(data, 4, "export name"), "export name");
        long queryCount = readLength(data, 4, "query count");
        if (queryCount > data.remaining() / 4) {
            // Each query needs at least its 4-byte length; checked up front so the count cannot drive a loop.
            throw new MalformedOptionException(queryCount + " queries cannot fit in the option data");
        }
        List<String> queries = new ArrayList<>();
        for (long i = 0; i < queryCount; i++) {
            String query = readString(data, readLength(data, 4, "query"), "query");
            if (MetaContext.namespaceOf(query) == null) {
                throw new MalformedOptionException("query without a namespace: " + query);
            }
            queries.add(query);
        }
        if (data.hasRemaining()) {
            throw new MalformedOptionException(data.remaining() + " bytes after the last query");
        }
        String name = resolve(requested);
        NbdExport probe = name == null ? null : tryOpen(name);
        if (servedElsewhere != null) {
            return relay();
        }
        if (probe == null) {
            replies.add(Replies.optionError(option, NbdConstants.REP_ERR_UNKNOWN, unknownExport(name)));
            return Next.CONTINUE;
        }
        try {
            Set<MetaContext> matched = new LinkedHashSet<>();
            if (set) {
                for (String query : queries) {
                    MetaContext context = metaContexts.matchForSet(query, probe);
                    if (context != null) {
                        matched.add(context);
                    }
                }
            } else if (queries.isEmpty()) {
                matched.addAll(metaContexts.allFor(probe));
            } else {
                for (String query : queries) {
                    matched.addAll(metaContexts.matchForList(query, probe));
                }
            }
            List<Transmission.SelectedContext> selected = new ArrayList<>();
            int nextFamilyId = metaContexts.firstFamilyId();
            for (MetaContext context : matched) {
                // LIST replies carry the reserved id 0; SET replies the id BLOCK_STATUS will use.
                int id = 0;
                if (set) {
                    id = metaContexts.idOf(context);
                    if (id == 0) {
                        id = nextFamilyId++;
                    }
                }
                replies.add(Replies.metaContext(option, id, context.name()));
                selected.add(new Transmission.SelectedContext(id, context));
            }
            replies.add(Replies.optionAck(option));
            if (set) {
                selectedContexts = List.copyOf(selected);
                selectedContextsExport = requested;
            }
            return Next.CONTINUE;
        } finally {
            probe.close();
        }
    }

    /** Block status may use the selected contexts only if GO names the export they were set for. */
    private void keepContextsOnlyFor(String requestedName) {
        if (!requestedName.equals(selectedContextsExport)) {
            selectedContexts = List.of();
        }
    }

    /** The empty name means the default export; null if there is none. */
    private String resolve(String requested) {
        return requested.isEmpty() ? catalog.defaultExportName().orElse(null) : requested;
    }

    private Next relay() {
        state = State.RELAY;
        return Next.RELAY;
    }

    /** Why the last {@link #tryOpen} found nothing to open, for the error reply. */
    private String unknownExport(String name) {
        if (name == null) {
            return "no default export";
        }
        return lastOpenFailure != null ? lastOpenFailure : "no such export: " + name;
    }

    private NbdExport tryOpen(String name) {
        lastOpenFailure = null;
        try {
            return catalog.open(name);
        } catch (ServedElsewhereException elsewhere) {
            log.debug("{}: {}", peer, elsewhere.getMessage());
            servedElsewhere = elsewhere;
            return null;
        } catch (NoSuchExportException missing) {
            log.debug("{}: {}", peer, missing.getMessage());
            lastOpenFailure = missing.reason().orElse(null);
            return null;
        } catch (RuntimeException failure) {
            log.warn("{}: opening export '{}' failed", peer, name, failure);
            return null;
        }
    }

    // ---- results, valid in state TRANSMISSION ----

    /** The transmission phase for the export chosen by GO or EXPORT_NAME; ownership passes to it. */
    Transmission transmission() {
        requireState(State.TRANSMISSION);
        return new Transmission(export, structuredReplies, selectedContexts, allocator);
    }

    String exportName() {
        return exportName;
    }

    // ---- results, valid in state RELAY ----

    /** Where the export named by the last option is served, and its name there. */
    ServedElsewhereException servedElsewhere() {
        requireState(State.RELAY);
        return servedElsewhere;
    }

    boolean structuredReplies() {
        return structuredReplies;
    }

    /**
     * The server the last option was to be relayed to could not take it: the option gets an error reply
     * (EXPORT_NAME, which has none, ends the session) and the session goes on here.
     */
    Next relayFailed(int option, String why, List<ByteBuffer> replies) {
        requireState(State.RELAY);
        servedElsewhere = null;
        if (option == NbdConstants.OPT_EXPORT_NAME) {
            state = State.CLOSED;
            return Next.CLOSE;
        }
        state = State.OPTIONS;
        replies.add(Replies.optionError(option, NbdConstants.REP_ERR_UNKNOWN, why));
        return Next.CONTINUE;
    }

    /** The connection ended before transmission: close the export if one is open. */
    void abandon() {
        if (export != null && state != State.TRANSMISSION) {
            export.close();
            export = null;
        }
        state = State.CLOSED;
    }

    private void requireState(State expected) {
        if (state != expected) {
            throw new IllegalStateException("handshake is in state " + state + ", expected " + expected);
        }
    }

    // ---- option data parsing; every read is bounded by what the option actually contains ----

    /** Thrown while parsing option data; becomes NBD_REP_ERR_INVALID. */
    private static final class MalformedOptionException extends RuntimeException {
        MalformedOptionException(String message) {
            super(message, null, false, false);
        }
    }

    /** Reads an unsigned 16- or 32-bit length or count field. */
    private static long readLength(ByteBuffer data, int fieldBytes, String what) {
        if (data.remaining() < fieldBytes) {
            throw new MalformedOptionException("option data ends before the " + what);
        }
        return fieldBytes == 2 ? Short.toUnsignedInt(data.getShort()) : Integer.toUnsignedLong(data.getInt());
    }

    private static String readString(ByteBuffer data, long lengthBytes, String what) {
        if (lengthBytes > data.remaining()) {
            throw new MalformedOptionException(what + " runs past the option data");
        }
        if (lengthBytes > NbdConstants.MAX_STRING_BYTES) {
            throw new MalformedOptionException(what + " is longer than " + NbdConstants.MAX_STRING_BYTES + " bytes");
        }
        ByteBuffer bytes = data.slice(data.position(), (int) lengthBytes);
        data.position(data.position() + (int) lengthBytes);
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(bytes).toString();
        } catch (CharacterCodingException e) {
            throw new MalformedOptionException(what + " is not valid UTF-8");
        }
        if (text.indexOf('\0') >= 0) {
            throw new MalformedOptionException(what + " contains NUL");
        }
        return text;
    }

    static String optionName(int option) {
        return switch (option) {
            case NbdConstants.OPT_EXPORT_NAME -> "EXPORT_NAME";
            case NbdConstants.OPT_ABORT -> "ABORT";
            case NbdConstants.OPT_LIST -> "LIST";
            case NbdConstants.OPT_STARTTLS -> "STARTTLS";
            case NbdConstants.OPT_INFO -> "INFO";
            case NbdConstants.OPT_GO -> "GO";
            case NbdConstants.OPT_STRUCTURED_REPLY -> "STRUCTURED_REPLY";
            case NbdConstants.OPT_LIST_META_CONTEXT -> "LIST_META_CONTEXT";
            case NbdConstants.OPT_SET_META_CONTEXT -> "SET_META_CONTEXT";
            default -> "option " + Integer.toUnsignedString(option);
        };
    }
}
