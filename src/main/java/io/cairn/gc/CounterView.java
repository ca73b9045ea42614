package io.cairn.gc;

import io.cairn.alloc.SpaceMap;
import io.cairn.format.ExtentRecord;
import io.cairn.format.StoreGeometry;

/**
 * The reference counters and extent types a {@link ReferenceScan} compares its recount with: either
 * the store's own (the checker, which runs inside the store's exclusive hold) or a copy taken at a
 * checkpoint (the garbage collector, whose scan runs while the store keeps changing).
 */
interface CounterView {

    StoreGeometry geometry();

    /** The counter of {@code block}; 0 for a free block or a block of a free extent. */
    int count(long block);

    ExtentRecord.Type extentType(int extent);

    /** True if the format reserves {@code block} (superblock and counter slots). */
    default boolean isReserved(long block) {
        StoreGeometry geometry = geometry();
        return geometry.offsetInExtent(block) < geometry.reservedBlocks(geometry.extentOf(block));
    }

    /** The live counters of {@code space}: valid only while the caller holds the store's exclusive hold. */
    static CounterView live(SpaceMap space) {
        return new CounterView() {
            @Override
            public StoreGeometry geometry() {
                return space.geometry();
            }

            @Override
            public int count(long block) {
                return space.count(block);
            }

            @Override
            public ExtentRecord.Type extentType(int extent) {
                return space.extent(extent).type();
            }
        };
    }

    /**
     * A copy of every counter and extent type of {@code space} (Algorithm 1 step 1: the checkpoint of the
     * allocation maps). Two bytes per block of the held extents.
     */
    static CounterView copyOf(SpaceMap space) {
        return new Copy(space);
    }

    /** Counters frozen at the moment of the copy. */
    final class Copy implements CounterView {
        private final StoreGeometry geometry;
        private final char[][] counters;
        private final ExtentRecord.Type[] types;

        private Copy(SpaceMap space) {
            this.geometry = space.geometry();
            int extents = space.extentCount();
            this.counters = new char[extents][];
            this.types = new ExtentRecord.Type[extents];
            for (int extent = 0; extent < extents; extent++) {
                types[extent] = space.extent(extent).type();
                counters[extent] = space.copyCounters(extent);
            }
        }

        @Override
        public StoreGeometry geometry() {
            return geometry;
        }

        @Override
        public int count(long block) {
            char[] extentCounters = counters[geometry.extentOf(block)];
            return extentCounters == null ? 0 : extentCounters[geometry.offsetInExtent(block)];
        }

        @Override
        public ExtentRecord.Type extentType(int extent) {
            return types[extent];
        }
    }
}
