package io.cairn.nbd;

import java.util.concurrent.atomic.LongAdder;

/**
 * Bytes of large READ replies (Connection design note 9) by how they reached the socket: sent in place from
 * the store, or copied first (the export did not lend them, or the client made no room in time).
 */
final class LentReadCounts {
    final LongAdder inPlaceBytes = new LongAdder();
    final LongAdder copiedBytes = new LongAdder();
}
