/**
 * The NBD server: serves {@link io.cairn.nbd.NbdExport}s from an {@link io.cairn.nbd.ExportCatalog}
 * over TCP, Unix domain sockets, or an inherited connection (inetd / socket activation).
 *
 * <p>Layout: {@link io.cairn.nbd.NbdConstants} holds every wire number; {@code Handshake} is the
 * option-haggling state machine; {@code Transmission} is the request gate ({@code validate}) and the
 * request handlers; {@code Connection} does the channel I/O, framing, bounds and backpressure, and runs
 * requests on platform threads that take turns reading; {@link io.cairn.nbd.NbdServer} accepts connections. Handshake
 * and Transmission do no I/O, so they are tested by feeding bytes and checking bytes.
 *
 * <p>Supported: fixed newstyle only; options EXPORT_NAME, ABORT, LIST, INFO, GO (INFO_EXPORT, NAME,
 * DESCRIPTION, BLOCK_SIZE), STRUCTURED_REPLY, LIST/SET_META_CONTEXT, STARTTLS (refused: no TLS);
 * commands READ, WRITE, DISC, FLUSH, TRIM, CACHE, WRITE_ZEROES (NO_HOLE, FAST_ZERO), BLOCK_STATUS
 * (REQ_ONE), FUA and DF. Not supported: TLS, extended headers, OFFSET_HOLE read chunks.
 *
 * <p>New metadata contexts (for example a Cairn-namespace one) implement {@link io.cairn.nbd.MetaContext}
 * and are registered with {@code MetaContexts.standard().with(context)} when building the server.
 *
 * <p>This package depends on no other Cairn package except {@code io.cairn.io.StorageException}, whose
 * codes map onto NBD errors; {@code NbdPackageTest} keeps it so.
 */
package io.cairn.nbd;
