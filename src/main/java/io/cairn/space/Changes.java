package io.cairn.space;

import io.cairn.format.Layout;
import io.cairn.format.Pointer;
import io.cairn.tree.TreeSpace;
import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.Store;

import java.util.ArrayList;
import java.util.List;

/**
 * The byte ranges in which one version of a disk differs from another: {@code cairn diff}, the
 * ranges {@code export-diff} writes, and the NBD context {@code cairn:changed-since:SNAP}.
 *
 * <p>Both versions must have the same size (every disk of one family has, since disks do not
 * resize). They need not be of one disk: a clone against the snapshot it came from works, and so
 * does any pair of disks, but only within a family do the trees share the subtrees that make the walk
 * cheap. A range is reported when its blocks map to different physical blocks, so it may differ; in
 * practice it nearly always does (a write that puts back the old bytes still counts).
 */
public final class Changes {

    private Changes() {
    }

    /**
     * A run of changed bytes.
     *
     * @param zero true if the newer version reads as zeros there (its blocks are holes): the change is a
     *             discard, and no data needs copying
     */
    public record ChangedRange(long offsetBytes, long lengthBytes, boolean zero) {
    }

    /**
     * The changes from {@code from} to {@code to}.
     *
     * @param from          null when compared with an empty disk (a full export)
     * @param changedBytes  bytes in all ranges
     * @param zeroBytes     bytes of ranges that became holes
     * @param nodesVisited  radix nodes the walk read (the cost; proportional to the change)
     * @param elapsedNanos  time the walk took
     */
    public record ChangeSet(DiskVersion from, DiskVersion to, List<ChangedRange> ranges, long changedBytes,
                            long zeroBytes, long nodesVisited, long elapsedNanos) {
    }

    /** The changes between two versions, {@code NAME}, {@code NAME@ID} or {@code NAME@LABEL}, of the whole disk. */
    public static ChangeSet between(Store store, String fromReference, String toReference) {
        return store.inspect(internals -> {
            DiskVersion from = DiskVersion.resolve(store, internals, fromReference);
            DiskVersion to = DiskVersion.resolve(store, internals, toReference);
            return walk(internals.trees(), from, to, 0, to.sizeBytes());
        });
    }

    /**
     * The changes from an empty disk to {@code toReference}: every mapped block, as in a full export.
     * Unmapped ranges are not reported (they are zeros on both sides).
     */
    public static ChangeSet fromEmpty(Store store, String toReference) {
        return store.inspect(internals -> {
            DiskVersion to = DiskVersion.resolve(store, internals, toReference);
            return walk(internals.trees(), null, to, 0, to.sizeBytes());
        });
    }

    /** The changes between two versions within bytes [offset, offset + length), block-aligned outward. */
    public static ChangeSet within(Store store, String fromReference, String toReference, long offsetBytes,
                                   long lengthBytes) {
        return store.inspect(internals -> {
            DiskVersion from = DiskVersion.resolve(store, internals, fromReference);
            DiskVersion to = DiskVersion.resolve(store, internals, toReference);
            return walk(internals.trees(), from, to, offsetBytes, lengthBytes);
        });
    }

    static ChangeSet walk(TreeSpace trees, DiskVersion from, DiskVersion to, long offsetBytes,
                          long lengthBytes) {
        if (from != null) {
            requireComparable(from, to);
        }
        long start = System.nanoTime();
        long sizeBytes = to.sizeBytes();
        long firstBlock = offsetBytes / Layout.BLOCK_BYTES;
        long endBlock = Math.min(Layout.blocksFor(sizeBytes),
                (Math.min(sizeBytes, offsetBytes + lengthBytes) + Layout.BLOCK_BYTES - 1) / Layout.BLOCK_BYTES);
        RangeMerger ranges = new RangeMerger(sizeBytes);
        ChangeWalk walk = new ChangeWalk(trees);
        walk.walk(from == null ? 0 : from.root(), to.root(), to.height(), firstBlock, endBlock,
                (index, olderPointer, newerPointer) -> ranges.add(index, Pointer.isHole(newerPointer)));
        List<ChangedRange> merged = ranges.finish();
        long changed = 0;
        long zero = 0;
        for (ChangedRange range : merged) {
            changed += range.lengthBytes();
            zero += range.zero() ? range.lengthBytes() : 0;
        }
        return new ChangeSet(from, to, merged, changed, zero, walk.nodesVisited(), System.nanoTime() - start);
    }

    static void requireComparable(DiskVersion from, DiskVersion to) {
        if (from.sizeBytes() != to.sizeBytes() || from.height() != to.height()) {
            throw new IllegalArgumentException(from.reference() + " (" + from.sizeBytes() + " bytes) and "
                    + to.reference() + " (" + to.sizeBytes() + " bytes) differ in size; only versions of one disk"
                    + " family can be compared");
        }
    }

    /**
     * Resolves the snapshot named by {@code since} for {@code exportReference} (a disk or a snapshot
     * being served): a snapshot id, a label of the export's own disk, or a full {@code NAME@SNAP}.
     * It must be of the same family as the export and of the same size.
     *
     * @return the snapshot's reference ({@code NAME@ID})
     * @throws java.util.NoSuchElementException if no such snapshot exists
     * @throws IllegalArgumentException         if it is not of the export's family
     */
    public static String resolveSince(Store store, String exportReference, String since) {
        return store.inspect(internals -> {
            DiskVersion export = DiskVersion.resolve(store, internals, exportReference);
            String reference;
            if (since.indexOf('@') >= 0) {
                reference = since;
            } else if (!since.isEmpty() && since.chars().allMatch(c -> c >= '0' && c <= '9')) {
                reference = store.allSnapshots().stream()
                        .filter(snapshot -> !snapshot.deleted() && Long.toString(snapshot.id()).equals(since))
                        .map(SnapshotInfo::reference).findFirst()
                        .orElseThrow(() -> new Store.NoSuchElementException("no snapshot with id " + since));
            } else {
                reference = export.vdiName() + "@" + since;
            }
            DiskVersion snapshot = DiskVersion.resolve(store, internals, reference);
            if (snapshot.isLive()) {
                throw new IllegalArgumentException("'" + since + "' is a disk, not a snapshot");
            }
            if (DiskVersion.familyOf(store, snapshot.vdiId()) != DiskVersion.familyOf(store, export.vdiId())) {
                throw new IllegalArgumentException("snapshot " + snapshot.reference() + " is not of the family of "
                        + export.reference());
            }
            requireComparable(snapshot, export);
            return snapshot.reference();
        });
    }

    /** Merges changed blocks, visited in index order, into byte ranges cut at the disk's end. */
    private static final class RangeMerger {
        private final long sizeBytes;
        private final List<ChangedRange> ranges = new ArrayList<>();
        private long runStart = -1;
        private long runEnd;
        private boolean runZero;

        RangeMerger(long sizeBytes) {
            this.sizeBytes = sizeBytes;
        }

        void add(long index, boolean zero) {
            if (runStart >= 0 && index == runEnd && zero == runZero) {
                runEnd++;
                return;
            }
            flush();
            runStart = index;
            runEnd = index + 1;
            runZero = zero;
        }

        private void flush() {
            if (runStart >= 0) {
                long start = runStart * Layout.BLOCK_BYTES;
                long end = Math.min(sizeBytes, runEnd * Layout.BLOCK_BYTES);
                ranges.add(new ChangedRange(start, end - start, runZero));
            }
        }

        List<ChangedRange> finish() {
            flush();
            runStart = -1;
            return ranges;
        }
    }
}
