package io.cairn.space;

import java.nio.charset.StandardCharsets;
import java.util.UUID;

/**
 * Constants and header of the incremental backup stream written by {@code cairn export-diff} and read
 * by {@code cairn import-diff}. The byte layout is specified in docs/DIFF-FORMAT.md; the only codecs
 * are {@link DiffStreamWriter} and {@link DiffStreamReader}.
 */
public final class DiffStream {

    private DiffStream() {
    }

    /** "CAIRNDIF". */
    static final byte[] MAGIC = "CAIRNDIF".getBytes(StandardCharsets.US_ASCII);
    static final int VERSION = 1;
    /** Header flag: the stream holds the changes since a "from" version (else it is a full image). */
    static final int FLAG_INCREMENTAL = 1;
    static final int KNOWN_FLAGS = FLAG_INCREMENTAL;
    static final int BLOCK_BYTES = 4096;
    /** Offsets and lengths of records are multiples of this (disk sizes are). */
    static final int SECTOR_BYTES = 512;
    static final int MAX_DATA_BYTES = 4 << 20;
    static final int MAX_TEXT_BYTES = 255;

    static final byte TYPE_DATA = 'D';
    static final byte TYPE_ZERO = 'Z';
    static final byte TYPE_END = 'E';

    /** Fixed part of the header, before the identities: magic, version, flags, size, block size, store id, time. */
    static final int HEADER_FIXED_BYTES = 8 + 4 + 4 + 8 + 4 + 16 + 8;
    static final int DATA_RECORD_OVERHEAD_BYTES = 1 + 8 + 4 + 4;
    static final int ZERO_RECORD_BYTES = 1 + 8 + 8 + 4;
    static final int END_RECORD_BYTES = 1 + 8 + 8 + 4 + 4;

    /**
     * One end of a stream: a snapshot or the live disk of the source store.
     *
     * @param snapshotId 0 for the live disk
     * @param label      the snapshot's label, empty if none
     */
    public record Identity(long vdiId, long snapshotId, String label, String diskName) {

        static Identity of(DiskVersion version) {
            return new Identity(version.vdiId(), version.snapshotId(), version.label(), version.vdiName());
        }

        /** {@code NAME@ID (LABEL)}, or {@code NAME} for a live disk. */
        public String describe() {
            String reference = snapshotId == 0 ? diskName : diskName + "@" + snapshotId;
            return label.isEmpty() ? reference : reference + " (" + label + ")";
        }
    }

    /**
     * The stream's header.
     *
     * @param from null for a full stream
     */
    public record Header(long sizeBytes, UUID storeId, long createdMillis, Identity from, Identity to) {

        public boolean incremental() {
            return from != null;
        }
    }

    /** What a stream holds, as counted while writing or verifying it. */
    public record Summary(Header header, long records, long dataBytes, long zeroBytes, long streamBytes) {
    }
}
