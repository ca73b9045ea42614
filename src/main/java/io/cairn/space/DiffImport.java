package io.cairn.space;

import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.Store;
import io.cairn.volume.Volume;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.LongConsumer;

/**
 * Applies a diff stream to a disk, in two passes over the file: the first checks every record, the
 * totals and the whole-stream checksum without writing anything; the second writes, checking each
 * record again before applying it. A stream that is corrupt or truncated is therefore refused before
 * anything is written. Only if the file changes or the store fails between the passes can an import
 * stop half-way: then the disk holds some of the new records, no snapshot is taken, and the error
 * says so (import a full stream, or go back to the disk's last snapshot by cloning it).
 */
public final class DiffImport {

    private static final int COMPARE_CHUNK_BYTES = 1 << 20;

    private DiffImport() {
    }

    /** Reads the whole stream and checks it; writes nothing. */
    public static DiffStream.Summary verify(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file);
             DiffStreamReader reader = new DiffStreamReader(in, file.toString())) {
            while (reader.next() != null) {
                // every record is checked as it is read
            }
            return reader.summary();
        }
    }

    /**
     * Why disk {@code name} is not the version the stream starts from, or null if it is. A full stream
     * only needs the size to match. An incremental stream needs the disk to hold exactly the stream's
     * "from" version: in the store the stream came from, the disk must equal that snapshot (the
     * snapshot itself still exists: e.g. the disk is a clone of it, or the disk it was taken of with
     * no writes since); in another store, the disk's newest snapshot must carry the "from" snapshot's
     * label and the disk must equal it (an earlier import-diff takes that snapshot).
     */
    public static String mismatch(Store store, String name, DiffStream.Header header) {
        long sizeBytes = store.vdi(name).sizeBytes();
        if (sizeBytes != header.sizeBytes()) {
            return "disk '" + name + "' has " + sizeBytes + " bytes but the stream is for a disk of " + header.sizeBytes()
                    + " bytes";
        }
        if (!header.incremental()) {
            return null;
        }
        DiffStream.Identity from = header.from();
        if (store.storeId().equals(header.storeId())) {
            for (SnapshotInfo snapshot : store.allSnapshots()) {
                if (snapshot.id() == from.snapshotId() && !snapshot.deleted()) {
                    return differs(store, snapshot.reference(), name, from);
                }
            }
        }
        List<SnapshotInfo> snapshots = store.snapshots(name);
        if (!from.label().isEmpty() && !snapshots.isEmpty() && snapshots.getLast().label().equals(from.label())) {
            return differs(store, snapshots.getLast().reference(), name, from);
        }
        return "disk '" + name + "' is not known to hold " + from.describe() + ", where the stream starts: its newest"
                + " snapshot is " + (snapshots.isEmpty() ? "none" : snapshots.getLast().reference()
                + (snapshots.getLast().label().isEmpty() ? " (no label)" : " (" + snapshots.getLast().label() + ")"))
                + (from.label().isEmpty() ? "; the source snapshot has no label to match it by" : "");
    }

    /**
     * Null if disk {@code name} reads exactly as snapshot {@code reference}. The walk finds where they may
     * differ (blocks mapped differently; a saturated counter makes a clone copy blocks it would have
     * shared), and only those ranges are compared byte by byte.
     */
    private static String differs(Store store, String reference, String name, DiffStream.Identity from) {
        Changes.ChangeSet changes = Changes.between(store, reference, name);
        try (Volume snapshot = store.openVolume(reference);
             Volume disk = store.openVolume(name)) {
            ByteBuffer expected = ByteBuffer.allocate(COMPARE_CHUNK_BYTES);
            ByteBuffer actual = ByteBuffer.allocate(COMPARE_CHUNK_BYTES);
            for (Changes.ChangedRange range : changes.ranges()) {
                long end = range.offsetBytes() + range.lengthBytes();
                for (long offset = range.offsetBytes(); offset < end; offset += COMPARE_CHUNK_BYTES) {
                    int length = (int) Math.min(COMPARE_CHUNK_BYTES, end - offset);
                    snapshot.read(offset, expected.clear().limit(length));
                    disk.read(offset, actual.clear().limit(length));
                    int at = expected.flip().mismatch(actual.flip());
                    if (at >= 0) {
                        return "disk '" + name + "' differs from " + reference + " (which stands for " + from.describe()
                                + ", where the stream starts) at byte " + (offset + at) + "; was it written since?";
                    }
                }
            }
            return null;
        }
    }

    /**
     * Writes the stream's records to {@code target} and commits. Call {@link #verify} first.
     *
     * @param progress told the disk offset reached
     */
    public static DiffStream.Summary apply(Path file, Volume target, LongConsumer progress) throws IOException {
        try (InputStream in = Files.newInputStream(file);
             DiffStreamReader reader = new DiffStreamReader(in, file.toString())) {
            if (reader.header().sizeBytes() > target.sizeBytes()) {
                throw new IllegalArgumentException("the stream is for a disk of " + reader.header().sizeBytes()
                        + " bytes; '" + target.name() + "' has " + target.sizeBytes());
            }
            try {
                for (DiffStreamReader.Record record = reader.next(); record != null; record = reader.next()) {
                    if (record.zero()) {
                        target.writeZeroes(record.offsetBytes(), record.lengthBytes(), true, false);
                    } else {
                        target.write(record.offsetBytes(), ByteBuffer.wrap(record.data()), false);
                    }
                    progress.accept(record.offsetBytes() + record.lengthBytes());
                }
            } catch (IOException | RuntimeException problem) {
                target.flush();
                throw new DiffStreamException("the import into '" + target.name() + "' stopped part-way, after "
                        + reader.summary().records() + " records; the disk now holds part of the changes: "
                        + problem.getMessage(), problem);
            }
            target.flush();
            return reader.summary();
        }
    }
}
