package io.cairn.nbd;

import java.nio.ByteBuffer;
import java.util.function.Function;

/**
 * A READ whose data the thread writing replies takes from the export when it sends the reply, in place where
 * it can ({@link NbdExport#lend}), instead of a copy made when the request ran (Connection design note 9).
 *
 * @param header       the reply's header (simple reply, or structured OFFSET_DATA chunk header with DONE),
 *                     sent only if the data can be had
 * @param failureReply the whole error reply for a failure met before any byte of the reply was sent
 */
record LentRead(NbdExport export, long offsetBytes, int lengthBytes, ByteBuffer header,
                Function<Throwable, ByteBuffer[]> failureReply) {
}
