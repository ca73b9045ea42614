package io.cairn.nbd;

import static io.cairn.nbd.NbdConstants.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The handshake phase, byte for byte, over in-memory channels. */
class HandshakeTest {

    private static final long DISK_BYTES = 1 << 20;
    private static final int WRITABLE_FLAGS = FLAG_HAS_FLAGS | FLAG_SEND_FLUSH | FLAG_SEND_FUA | FLAG_SEND_TRIM
            | FLAG_SEND_WRITE_ZEROES | FLAG_SEND_FAST_ZERO | FLAG_SEND_CACHE | FLAG_CAN_MULTI_CONN;
    private static final int READ_ONLY_FLAGS = FLAG_HAS_FLAGS | FLAG_READ_ONLY | FLAG_SEND_FLUSH | FLAG_SEND_FUA
            | FLAG_SEND_CACHE | FLAG_CAN_MULTI_CONN;

    private MemoryCatalog catalog;

    @BeforeEach
    void setUp() {
        catalog = new MemoryCatalog()
                .add("disk", "a writable disk", new MemoryExport(DISK_BYTES, false))
                .add("snap", "", MemoryExport.filled(8192, true, 1));
    }

    private Wire.Reader run(Wire.Builder client) {
        Wire.Reader server = Wire.run(catalog, client.bytes());
        assertEquals(0, catalog.openHandles(), "every opened export is closed when the connection ends");
        return server.greeting();
    }

    @Test
    void greetingIsFixedNewstyleWithNoZeroes() {
        Wire.Reader server = run(new Wire.Builder());
        assertEquals(0, server.remaining());
    }

    @Test
    void unknownClientFlagsCloseTheConnection() {
        Wire.Reader server = run(new Wire.Builder().clientFlags(1 << 5).option(OPT_LIST, new byte[0]));
        assertEquals(0, server.remaining(), "no reply after bad client flags");
    }

    @Test
    void exportNameWithoutNoZeroesSendsPadding() {
        Wire.Reader server = run(new Wire.Builder().clientFlags(FLAG_C_FIXED_NEWSTYLE).exportName("disk").disconnect());
        assertEquals(DISK_BYTES, server.u64());
        assertEquals(WRITABLE_FLAGS, server.u16());
        assertArrayEquals(new byte[124], server.take(124));
        assertEquals(0, server.remaining());
    }

    @Test
    void exportNameWithNoZeroesSendsNoPadding() {
        Wire.Reader server = run(new Wire.Builder().modernClient().exportName("snap").disconnect());
        assertEquals(8192, server.u64());
        assertEquals(READ_ONLY_FLAGS, server.u16());
        assertEquals(0, server.remaining());
    }

    @Test
    void exportNameForUnknownExportHangsUp() {
        Wire.Reader server = run(new Wire.Builder().modernClient().exportName("nope").option(OPT_LIST, new byte[0]));
        assertEquals(0, server.remaining(), "EXPORT_NAME has no error reply: the server must close");
    }

    @Test
    void emptyExportNameSelectsTheDefault() {
        catalog.withDefault("disk");
        Wire.Reader server = run(new Wire.Builder().modernClient().exportName("").disconnect());
        assertEquals(DISK_BYTES, server.u64());
    }

    @Test
    void abortIsAcknowledgedAndEndsTheSession() {
        Wire.Reader server = run(new Wire.Builder().modernClient().option(OPT_ABORT, new byte[0])
                .option(OPT_LIST, new byte[0]));
        Wire.OptionReply ack = server.optionReply();
        assertEquals(OPT_ABORT, ack.option());
        assertEquals(REP_ACK, ack.type());
        assertEquals(0, server.remaining(), "nothing is answered after ABORT");
    }

    @Test
    void listNamesEveryExportWithItsDescription() {
        Wire.Reader server = run(new Wire.Builder().modernClient().option(OPT_LIST, new byte[0]));
        Wire.OptionReply first = server.optionReply();
        assertEquals(REP_SERVER, first.type());
        ByteBuffer data = first.buffer();
        byte[] name = new byte[data.getInt()];
        data.get(name);
        assertEquals("disk", new String(name, StandardCharsets.UTF_8));
        assertEquals("a writable disk", StandardCharsets.UTF_8.decode(data).toString());
        Wire.OptionReply second = server.optionReply();
        assertEquals(REP_SERVER, second.type());
        assertEquals(4 + 4, second.data().length, "snap has no description");
        assertEquals(REP_ACK, server.optionReply().type());
        assertEquals(0, server.remaining());
    }

    @Test
    void listWithDataIsInvalid() {
        Wire.Reader server = run(new Wire.Builder().modernClient().option(OPT_LIST, new byte[] {1}));
        assertEquals(REP_ERR_INVALID, server.optionReply().type());
    }

    @Test
    void startTlsIsUnsupportedAndInvalidWithData() {
        Wire.Reader server = run(new Wire.Builder().modernClient().option(OPT_STARTTLS, new byte[0])
                .option(OPT_STARTTLS, new byte[] {1, 2}));
        assertEquals(REP_ERR_UNSUP, server.optionReply().type());
        assertEquals(REP_ERR_INVALID, server.optionReply().type());
    }

    @Test
    void unknownOptionsAreUnsupportedAndTheirDataSkipped() {
        Wire.Reader server = run(new Wire.Builder().modernClient()
                .option(OPT_PEEK_EXPORT, new byte[10])
                .option(OPT_EXTENDED_HEADERS, new byte[0])
                .option(0x7fff_0000, new byte[300])
                .option(OPT_LIST, new byte[0]));
        assertEquals(OPT_PEEK_EXPORT, server.optionReply().option());
        assertEquals(REP_ERR_UNSUP, server.optionReply().type());
        Wire.OptionReply unknown = server.optionReply();
        assertEquals(0x7fff_0000, unknown.option());
        assertEquals(REP_ERR_UNSUP, unknown.type());
        assertEquals(REP_SERVER, server.optionReply().type(), "framing survives the skipped data");
    }

    @Test
    void infoDescribesTheExportAndStaysInHandshake() {
        Wire.Reader server = run(new Wire.Builder().modernClient()
                .infoOrGo(OPT_INFO, "disk", INFO_NAME, INFO_DESCRIPTION, INFO_BLOCK_SIZE)
                .option(OPT_LIST, new byte[0]));
        List<Wire.OptionReply> infos = infoReplies(server, OPT_INFO);
        ByteBuffer export = infos.get(0).buffer();
        assertEquals(INFO_EXPORT, export.getShort());
        assertEquals(DISK_BYTES, export.getLong());
        assertEquals(WRITABLE_FLAGS, export.getShort() & 0xffff);
        assertEquals("disk", infoString(infos.get(1), INFO_NAME));
        assertEquals("a writable disk", infoString(infos.get(2), INFO_DESCRIPTION));
        ByteBuffer blockSize = infos.get(3).buffer();
        assertEquals(INFO_BLOCK_SIZE, blockSize.getShort());
        assertEquals(1, blockSize.getInt());
        assertEquals(4096, blockSize.getInt());
        assertEquals(32 * 1024 * 1024, blockSize.getInt());
        assertEquals(REP_SERVER, server.optionReply().type(), "INFO does not enter transmission");
    }

    @Test
    void goEntersTransmission() {
        Wire.Reader server = run(new Wire.Builder().modernClient()
                .infoOrGo(OPT_GO, "snap")
                .request(0, CMD_READ, 7, 0, 16)
                .disconnect());
        List<Wire.OptionReply> infos = infoReplies(server, OPT_GO);
        ByteBuffer export = infos.get(0).buffer();
        export.getShort();
        assertEquals(8192, export.getLong());
        assertEquals(READ_ONLY_FLAGS, export.getShort() & 0xffff);
        Wire.Reply read = server.replies(java.util.Map.of(7L, 16)).get(7L);
        assertEquals(0, read.error());
        assertArrayEquals(java.util.Arrays.copyOf(MemoryExport.pattern(1, 8192), 16), read.data());
    }

    @Test
    void goWithStructuredRepliesAdvertisesDontFragment() {
        Wire.Reader server = run(new Wire.Builder().modernClient().structuredReply().infoOrGo(OPT_GO, "disk"));
        assertEquals(REP_ACK, server.optionReply().type());
        ByteBuffer export = infoReplies(server, OPT_GO).get(0).buffer();
        export.getShort();
        export.getLong();
        assertEquals(WRITABLE_FLAGS | FLAG_SEND_DF, export.getShort() & 0xffff);
    }

    @Test
    void goForUnknownExportFailsButTheSessionGoesOn() {
        Wire.Reader server = run(new Wire.Builder().modernClient()
                .infoOrGo(OPT_GO, "nope")
                .infoOrGo(OPT_GO, "disk")
                .disconnect());
        Wire.OptionReply unknown = server.optionReply();
        assertEquals(REP_ERR_UNKNOWN, unknown.type());
        assertEquals("no such export: nope", new String(unknown.data(), StandardCharsets.UTF_8));
        assertEquals(REP_INFO, server.optionReply().type());
    }

    @Test
    void goWithEmptyNameUsesDefaultAndReportsItsName() {
        catalog.withDefault("snap");
        Wire.Reader server = run(new Wire.Builder().modernClient().infoOrGo(OPT_GO, ""));
        List<Wire.OptionReply> infos = infoReplies(server, OPT_GO);
        assertEquals("snap", infoString(infos.get(1), INFO_NAME), "canonical name of the default export");
    }

    @Test
    void goWithEmptyNameAndNoDefaultIsUnknown() {
        Wire.Reader server = run(new Wire.Builder().modernClient().infoOrGo(OPT_GO, ""));
        assertEquals(REP_ERR_UNKNOWN, server.optionReply().type());
    }

    @Test
    void malformedGoIsInvalid() {
        byte[] nameTooLong = ByteBuffer.allocate(8).putInt(100).putShort((short) 0).array();
        byte[] trailingByte = java.util.Arrays.copyOf(Wire.Builder.infoData("disk"), Wire.Builder.infoData("disk").length + 1);
        byte[] countTooHigh = ByteBuffer.allocate(4 + 4 + 2).putInt(4).put(Wire.utf8("disk")).putShort((short) 3).array();
        byte[] tooShort = new byte[3];
        byte[] badUtf8 = ByteBuffer.allocate(4 + 2 + 2).putInt(2).put(new byte[] {(byte) 0xc3, 0x28}).putShort((short) 0).array();
        byte[] withNul = ByteBuffer.allocate(4 + 2 + 2).putInt(2).put(new byte[] {'a', 0}).putShort((short) 0).array();
        Wire.Builder client = new Wire.Builder().modernClient();
        for (byte[] data : List.of(nameTooLong, trailingByte, countTooHigh, tooShort, badUtf8, withNul)) {
            client.option(OPT_GO, data);
        }
        Wire.Reader server = run(client.option(OPT_LIST, new byte[0]));
        for (int i = 0; i < 6; i++) {
            assertEquals(REP_ERR_INVALID, server.optionReply().type(), "malformed GO #" + i);
        }
        assertEquals(REP_SERVER, server.optionReply().type());
    }

    @Test
    void structuredReplyTakesNoData() {
        Wire.Reader server = run(new Wire.Builder().modernClient().option(OPT_STRUCTURED_REPLY, new byte[] {0})
                .structuredReply());
        assertEquals(REP_ERR_INVALID, server.optionReply().type());
        assertEquals(REP_ACK, server.optionReply().type());
    }

    @Test
    void metaContextOptionsNeedStructuredRepliesFirst() {
        Wire.Reader server = run(new Wire.Builder().modernClient()
                .metaContext(OPT_LIST_META_CONTEXT, "disk")
                .metaContext(OPT_SET_META_CONTEXT, "disk", "base:allocation"));
        assertEquals(REP_ERR_INVALID, server.optionReply().type());
        assertEquals(REP_ERR_INVALID, server.optionReply().type());
    }

    @Test
    void listMetaContextsMatchesQueries() {
        Wire.Reader server = run(new Wire.Builder().modernClient().structuredReply()
                .metaContext(OPT_LIST_META_CONTEXT, "disk")
                .metaContext(OPT_LIST_META_CONTEXT, "disk", "base:")
                .metaContext(OPT_LIST_META_CONTEXT, "disk", "x-unknown:thing", "base:nothing")
                .metaContext(OPT_LIST_META_CONTEXT, "disk", "no-colon")
                .metaContext(OPT_LIST_META_CONTEXT, "nope", "base:"));
        assertEquals(REP_ACK, server.optionReply().type());
        for (int i = 0; i < 2; i++) {
            Wire.OptionReply context = server.optionReply();
            assertEquals(REP_META_CONTEXT, context.type());
            ByteBuffer data = context.buffer();
            assertEquals(0, data.getInt(), "LIST replies carry context id 0");
            assertEquals("base:allocation", StandardCharsets.UTF_8.decode(data).toString());
            assertEquals(REP_ACK, server.optionReply().type());
        }
        assertEquals(REP_ACK, server.optionReply().type(), "unknown namespaces and leaves are ignored");
        assertEquals(REP_ERR_INVALID, server.optionReply().type());
        assertEquals(REP_ERR_UNKNOWN, server.optionReply().type());
    }

    @Test
    void setMetaContextSelectsExactNamesOnly() {
        Wire.Reader server = run(new Wire.Builder().modernClient().structuredReply()
                .metaContext(OPT_SET_META_CONTEXT, "disk", "base:")
                .metaContext(OPT_SET_META_CONTEXT, "disk", "base:allocation", "base:allocation"));
        assertEquals(REP_ACK, server.optionReply().type());
        assertEquals(REP_ACK, server.optionReply().type(), "'base:' selects nothing");
        Wire.OptionReply context = server.optionReply();
        assertEquals(REP_META_CONTEXT, context.type());
        ByteBuffer data = context.buffer();
        assertEquals(1, data.getInt());
        assertEquals("base:allocation", StandardCharsets.UTF_8.decode(data).toString());
        assertEquals(REP_ACK, server.optionReply().type(), "a context is selected once even if asked twice");
    }

    @Test
    void malformedMetaContextQueriesAreInvalid() {
        byte[] countTooHigh = ByteBuffer.allocate(4 + 4 + 4).putInt(4).put(Wire.utf8("disk")).putInt(0x7fffffff).array();
        byte[] queryTooLong = ByteBuffer.allocate(4 + 4 + 4 + 4).putInt(4).put(Wire.utf8("disk")).putInt(1).putInt(1000).array();
        byte[] trailing = java.util.Arrays.copyOf(Wire.Builder.metaContextData("disk"), Wire.Builder.metaContextData("disk").length + 2);
        Wire.Reader server = run(new Wire.Builder().modernClient().structuredReply()
                .option(OPT_SET_META_CONTEXT, countTooHigh)
                .option(OPT_SET_META_CONTEXT, queryTooLong)
                .option(OPT_LIST_META_CONTEXT, trailing));
        server.optionReply();
        for (int i = 0; i < 3; i++) {
            assertEquals(REP_ERR_INVALID, server.optionReply().type(), "malformed query #" + i);
        }
    }

    @Test
    void oversizedOptionIsSkippedAndRefused() {
        Wire.Reader server = run(new Wire.Builder().modernClient()
                .option(OPT_GO, new byte[MAX_OPTION_BYTES + 1])
                .option(OPT_LIST, new byte[0]));
        assertEquals(REP_ERR_TOO_BIG, server.optionReply().type());
        assertEquals(REP_SERVER, server.optionReply().type(), "framing survives the skipped data");
    }

    @Test
    void absurdOptionLengthWithoutDataEndsQuietly() {
        Wire.Reader server = run(new Wire.Builder().modernClient()
                .u64(IHAVEOPT).u32(OPT_GO).u32(0xffff_fff0).raw(new byte[100]));
        assertEquals(0, server.remaining());
    }

    @Test
    void oversizedExportNameHangsUp() {
        Wire.Reader server = run(new Wire.Builder().modernClient()
                .option(OPT_EXPORT_NAME, new byte[MAX_OPTION_BYTES + 1])
                .option(OPT_LIST, new byte[0]));
        assertEquals(0, server.remaining());
    }

    @Test
    void badOptionMagicHangsUp() {
        Wire.Reader server = run(new Wire.Builder().modernClient().u64(0x1234).u32(OPT_LIST).u32(0));
        assertEquals(0, server.remaining());
    }

    @Test
    void tooManyOptionsHangUp() {
        Wire.Builder client = new Wire.Builder().modernClient();
        for (int i = 0; i < MAX_OPTIONS_PER_CONNECTION + 10; i++) {
            client.option(OPT_STRUCTURED_REPLY, new byte[0]);
        }
        Wire.Reader server = run(client);
        for (int i = 0; i < MAX_OPTIONS_PER_CONNECTION; i++) {
            assertEquals(REP_ACK, server.optionReply().type());
        }
        assertEquals(0, server.remaining());
    }

    @Test
    void optionsDuringShutdownAreRefused() {
        List<ByteBuffer> replies = new ArrayList<>();
        Handshake handshake = new Handshake(catalog, MetaContexts.standard(), () -> true, "test", ByteBuffer::allocate);
        handshake.onClientFlags(FLAG_C_FIXED_NEWSTYLE);
        assertEquals(Handshake.Next.CONTINUE, handshake.onOption(OPT_LIST, ByteBuffer.allocate(0), replies));
        assertEquals(Handshake.Next.CLOSE, handshake.onOption(OPT_ABORT, ByteBuffer.allocate(0), replies));
        Wire.Reader server = new Wire.Reader(concat(replies));
        assertEquals(REP_ERR_SHUTDOWN, server.optionReply().type());
        assertEquals(REP_ACK, server.optionReply().type());
    }

    @Test
    void stateMachineRefusesCallsInTheWrongState() {
        Handshake handshake = new Handshake(catalog, MetaContexts.standard(), () -> false, "test", ByteBuffer::allocate);
        org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
                () -> handshake.onOption(OPT_LIST, ByteBuffer.allocate(0), new ArrayList<>()));
        handshake.onClientFlags(0);
        org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class, () -> handshake.onClientFlags(0));
        org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class, handshake::transmission);
        assertEquals(Handshake.State.OPTIONS, handshake.state());
    }

    // ---- helpers ----

    /** Reads REP_INFO replies up to the final ACK. */
    private static List<Wire.OptionReply> infoReplies(Wire.Reader server, int option) {
        List<Wire.OptionReply> infos = new ArrayList<>();
        while (true) {
            Wire.OptionReply reply = server.optionReply();
            assertEquals(option, reply.option());
            if (reply.type() == REP_ACK) {
                return infos;
            }
            assertEquals(REP_INFO, reply.type());
            infos.add(reply);
        }
    }

    private static String infoString(Wire.OptionReply reply, int infoType) {
        ByteBuffer data = reply.buffer();
        assertEquals(infoType, data.getShort());
        return StandardCharsets.UTF_8.decode(data).toString();
    }

    static byte[] concat(List<ByteBuffer> buffers) {
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        for (ByteBuffer buffer : buffers) {
            byte[] data = new byte[buffer.remaining()];
            buffer.duplicate().get(data);
            bytes.writeBytes(data);
        }
        return bytes.toByteArray();
    }
}
