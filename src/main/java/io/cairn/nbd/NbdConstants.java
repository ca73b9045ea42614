package io.cairn.nbd;

/**
 * Every number of the NBD wire protocol that this server uses, in one place.
 *
 * <p>Values and names follow the protocol document (shared/ref/nbd-protocol.md) so that a reader can
 * grep the spec for any of them. All multi-byte fields on the wire are big-endian.
 */
public final class NbdConstants {

    private NbdConstants() {
    }

    // ---- Handshake magics ----

    /** "NBDMAGIC": first 8 bytes the server sends. */
    public static final long NBDMAGIC = 0x4e42444d41474943L;
    /** "IHAVEOPT": newstyle magic, sent by the server after NBDMAGIC and by the client before each option. */
    public static final long IHAVEOPT = 0x49484156454F5054L;
    /** Magic of every fixed-newstyle option reply. */
    public static final long OPTION_REPLY_MAGIC = 0x3e889045565a9L;

    // ---- Handshake flags (server, 16 bits) ----

    public static final int FLAG_FIXED_NEWSTYLE = 1;
    public static final int FLAG_NO_ZEROES = 1 << 1;

    // ---- Client flags (32 bits) ----

    public static final int FLAG_C_FIXED_NEWSTYLE = 1;
    public static final int FLAG_C_NO_ZEROES = 1 << 1;
    /** The only client flags we know; any other bit means the client speaks something else. */
    public static final int KNOWN_CLIENT_FLAGS = FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES;

    // ---- Transmission flags (16 bits) ----

    public static final int FLAG_HAS_FLAGS = 1;
    public static final int FLAG_READ_ONLY = 1 << 1;
    public static final int FLAG_SEND_FLUSH = 1 << 2;
    public static final int FLAG_SEND_FUA = 1 << 3;
    public static final int FLAG_ROTATIONAL = 1 << 4;
    public static final int FLAG_SEND_TRIM = 1 << 5;
    public static final int FLAG_SEND_WRITE_ZEROES = 1 << 6;
    public static final int FLAG_SEND_DF = 1 << 7;
    public static final int FLAG_CAN_MULTI_CONN = 1 << 8;
    public static final int FLAG_SEND_RESIZE = 1 << 9;
    public static final int FLAG_SEND_CACHE = 1 << 10;
    public static final int FLAG_SEND_FAST_ZERO = 1 << 11;

    // ---- Options ----

    public static final int OPT_EXPORT_NAME = 1;
    public static final int OPT_ABORT = 2;
    public static final int OPT_LIST = 3;
    public static final int OPT_PEEK_EXPORT = 4;
    public static final int OPT_STARTTLS = 5;
    public static final int OPT_INFO = 6;
    public static final int OPT_GO = 7;
    public static final int OPT_STRUCTURED_REPLY = 8;
    public static final int OPT_LIST_META_CONTEXT = 9;
    public static final int OPT_SET_META_CONTEXT = 10;
    public static final int OPT_EXTENDED_HEADERS = 11;

    // ---- Option reply types ----

    public static final int REP_ACK = 1;
    public static final int REP_SERVER = 2;
    public static final int REP_INFO = 3;
    public static final int REP_META_CONTEXT = 4;
    /** Error replies have bit 31 set. */
    public static final int REP_FLAG_ERROR = 1 << 31;
    public static final int REP_ERR_UNSUP = REP_FLAG_ERROR | 1;
    public static final int REP_ERR_POLICY = REP_FLAG_ERROR | 2;
    public static final int REP_ERR_INVALID = REP_FLAG_ERROR | 3;
    public static final int REP_ERR_PLATFORM = REP_FLAG_ERROR | 4;
    public static final int REP_ERR_TLS_REQD = REP_FLAG_ERROR | 5;
    public static final int REP_ERR_UNKNOWN = REP_FLAG_ERROR | 6;
    public static final int REP_ERR_SHUTDOWN = REP_FLAG_ERROR | 7;
    public static final int REP_ERR_BLOCK_SIZE_REQD = REP_FLAG_ERROR | 8;
    public static final int REP_ERR_TOO_BIG = REP_FLAG_ERROR | 9;

    // ---- NBD_INFO types (in NBD_REP_INFO replies and NBD_OPT_INFO/GO requests) ----

    public static final int INFO_EXPORT = 0;
    public static final int INFO_NAME = 1;
    public static final int INFO_DESCRIPTION = 2;
    public static final int INFO_BLOCK_SIZE = 3;

    // ---- Transmission magics ----

    public static final int REQUEST_MAGIC = 0x25609513;
    public static final int SIMPLE_REPLY_MAGIC = 0x67446698;
    public static final int STRUCTURED_REPLY_MAGIC = 0x668e33ef;

    // ---- Commands ----

    public static final int CMD_READ = 0;
    public static final int CMD_WRITE = 1;
    public static final int CMD_DISC = 2;
    public static final int CMD_FLUSH = 3;
    public static final int CMD_TRIM = 4;
    public static final int CMD_CACHE = 5;
    public static final int CMD_WRITE_ZEROES = 6;
    public static final int CMD_BLOCK_STATUS = 7;

    // ---- Command flags ----

    public static final int CMD_FLAG_FUA = 1;
    public static final int CMD_FLAG_NO_HOLE = 1 << 1;
    public static final int CMD_FLAG_DF = 1 << 2;
    public static final int CMD_FLAG_REQ_ONE = 1 << 3;
    public static final int CMD_FLAG_FAST_ZERO = 1 << 4;

    // ---- Structured replies ----

    public static final int REPLY_FLAG_DONE = 1;
    public static final int REPLY_TYPE_NONE = 0;
    public static final int REPLY_TYPE_OFFSET_DATA = 1;
    public static final int REPLY_TYPE_OFFSET_HOLE = 2;
    public static final int REPLY_TYPE_BLOCK_STATUS = 5;
    public static final int REPLY_TYPE_ERROR = (1 << 15) | 1;
    public static final int REPLY_TYPE_ERROR_OFFSET = (1 << 15) | 2;

    // ---- base:allocation status flags ----

    public static final int STATE_HOLE = 1;
    public static final int STATE_ZERO = 1 << 1;

    // ---- Error values ----

    public static final int EPERM = 1;
    public static final int EIO = 5;
    public static final int ENOMEM = 12;
    public static final int EINVAL = 22;
    public static final int ENOSPC = 28;
    public static final int EOVERFLOW = 75;
    public static final int ENOTSUP = 95;
    public static final int ESHUTDOWN = 108;

    // ---- Sizes and limits ----

    /** Bytes the server sends before the client flags: NBDMAGIC, IHAVEOPT, handshake flags. */
    public static final int GREETING_BYTES = 8 + 8 + 2;
    /** Option header: IHAVEOPT, option, length. */
    public static final int OPTION_HEADER_BYTES = 8 + 4 + 4;
    /** Request header: magic, flags, type, cookie, offset, length. */
    public static final int REQUEST_HEADER_BYTES = 4 + 2 + 2 + 8 + 8 + 4;
    public static final int SIMPLE_REPLY_HEADER_BYTES = 4 + 4 + 8;
    public static final int STRUCTURED_REPLY_HEADER_BYTES = 4 + 2 + 2 + 8 + 4;
    /** Zero padding after the NBD_OPT_EXPORT_NAME reply unless NO_ZEROES was negotiated. */
    public static final int EXPORT_NAME_PADDING_BYTES = 124;

    /** The spec's hard limit on any string (export names, queries, messages). */
    public static final int MAX_STRING_BYTES = 4096;
    /**
     * Largest option payload we read into memory. The biggest legitimate option is a GO or a meta
     * context query list: a few strings of at most 4 KiB each. Anything longer is skipped, not stored.
     */
    public static final int MAX_OPTION_BYTES = 64 * 1024;
    /** Options per connection before we call it a denial of service and hang up. */
    public static final int MAX_OPTIONS_PER_CONNECTION = 1024;

    /** Advertised minimum block size: any byte is addressable. */
    public static final int MIN_BLOCK_BYTES = 1;
    /** Advertised preferred block size: the storage engine's block. */
    public static final int PREFERRED_BLOCK_BYTES = 4096;
    /** Advertised and enforced maximum READ/WRITE payload: 32 MiB, the spec's interoperable limit. */
    public static final int MAX_PAYLOAD_BYTES = 32 * 1024 * 1024;
    /** The spec asks servers not to send more than 2^20 block status descriptors in one chunk. */
    public static final int MAX_BLOCK_STATUS_DESCRIPTORS = 1 << 20;
}
