package io.cairn.format;

import java.nio.ByteBuffer;

/**
 * A page of a system table: {@link BlockHeader} (magic CTAB, aux = table kind) followed by
 * fixed-size records. Record {@code r} of page {@code p} is table entry {@code p * perPage + r}
 * at byte {@code 32 + r * recordBytes}. An all-zero record is an empty entry.
 */
public final class TablePageCodec {

    private TablePageCodec() {
    }

    /** The three system tables; the code is the aux value of their pages. */
    public enum Kind {
        EXTENTS(1, ExtentRecord.BYTES),
        VDIS(2, VdiRecord.BYTES),
        SNAPSHOTS(3, SnapshotRecord.BYTES);

        public final int code;
        public final int recordBytes;

        Kind(int code, int recordBytes) {
            this.code = code;
            this.recordBytes = recordBytes;
        }

        public int recordsPerPage() {
            return (Layout.BLOCK_BYTES - Layout.HEADER_BYTES) / recordBytes;
        }

        public int offsetOf(int recordInPage) {
            return Layout.HEADER_BYTES + recordInPage * recordBytes;
        }
    }

    public static ByteBuffer seal(ByteBuffer page, Kind kind, long blockNumber, long generation) {
        BlockHeader.seal(page, Layout.MAGIC_TABLE_PAGE, blockNumber, generation, kind.code);
        return page;
    }

    public static void verify(ByteBuffer page, Kind kind, long blockNumber) {
        BlockHeader.verify(page, Layout.MAGIC_TABLE_PAGE, blockNumber);
        int foundKind = BlockHeader.aux(page);
        if (foundKind != kind.code) {
            throw new io.cairn.io.CorruptionException(blockNumber,
                    "table page of kind " + foundKind + " where kind " + kind.code + " (" + kind + ") was expected");
        }
    }
}
