package io.cairn.volume;

import io.cairn.format.SketchBlobCodec;
import io.cairn.io.CorruptionException;
import io.cairn.tree.TreeSpace;

import java.lang.foreign.MemorySegment;
import org.apache.datasketches.common.SketchesException;
import org.apache.datasketches.theta.CompactThetaSketch;
import org.apache.datasketches.theta.UpdatableThetaSketch;

/**
 * Building sketch deltas from a tree comparison, and their stored form (the payload of a sketch blob,
 * {@link SketchBlobCodec}). Stateless; the store owns the deltas (see its design notes on sketches).
 */
final class SnapshotSketches {

    private SnapshotSketches() {
    }

    /** Collects the differences of a tree walk into the two sides of a delta. */
    static final class DeltaBuilder implements TreeSpace.DifferenceVisitor {
        private final UpdatableThetaSketch added = SketchDelta.newSketch();
        private final UpdatableThetaSketch removed = SketchDelta.newSketch();
        private long addedBlocks;
        private long removedBlocks;

        /**
         * A changed leaf entry: its old block leaves, its new block arrives. The engine maps a data block at
         * one index of a tree only and never moves one, so entry differences are set differences.
         */
        @Override
        public void visit(long index, long oldBlock, long newBlock) {
            if (oldBlock != 0) {
                removed.update(oldBlock);
                removedBlocks++;
            }
            if (newBlock != 0) {
                added.update(newBlock);
                addedBlocks++;
            }
        }

        SketchDelta finish(long snapshotId, long baseSnapshotId) {
            return new SketchDelta(snapshotId, baseSnapshotId, SketchDelta.finish(added), SketchDelta.finish(removed),
                    addedBlocks, removedBlocks);
        }
    }

    static byte[] payload(SketchDelta delta) {
        return new SketchBlobCodec.Blob(delta.snapshotId(), delta.baseSnapshotId(), delta.addedBlocks(),
                delta.removedBlocks(), delta.added().toByteArray(), delta.removed().toByteArray()).payload();
    }

    /** The delta a verified blob payload holds; sketch bytes that DataSketches refuses are corruption of the blob. */
    static SketchDelta fromBlob(SketchBlobCodec.Blob blob, long firstPage) {
        return new SketchDelta(blob.snapshotId(), blob.baseSnapshotId(), sketch(blob.addedSketch(), blob, firstPage),
                sketch(blob.removedSketch(), blob, firstPage), blob.addedBlocks(), blob.removedBlocks());
    }

    private static CompactThetaSketch sketch(byte[] bytes, SketchBlobCodec.Blob blob, long firstPage) {
        try {
            return CompactThetaSketch.heapify(MemorySegment.ofArray(bytes));
        } catch (SketchesException | IllegalArgumentException | IndexOutOfBoundsException problem) {
            throw new CorruptionException(firstPage, "sketch blob of snapshot " + blob.snapshotId()
                    + " holds a sketch that cannot be read: " + problem.getMessage());
        }
    }
}
