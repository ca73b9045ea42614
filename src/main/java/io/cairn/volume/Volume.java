package io.cairn.volume;

import io.cairn.format.Layout;
import io.cairn.format.SnapshotRecord;
import io.cairn.io.BlockDevice;
import io.cairn.io.StorageException;
import io.cairn.tree.TreeSpace;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;

/**
 * An open export: a writable VDI or a read-only snapshot. Byte-addressed reads, writes, trims and
 * zeroing at any offset and length inside the volume; partial blocks are read-modify-written.
 *
 * <p>Thread-safe: many threads may call it at once (NBD connections with requests in flight).
 * Writes that touch the same partial block are serialised by stripe locks so neither loses the
 * other's bytes; everything else runs in parallel. Closing it releases the handle that keeps the
 * VDI or snapshot from being deleted.
 */
public final class Volume implements AutoCloseable {

    private static final int BLOCK = Layout.BLOCK_BYTES;
    private static final int ZERO_CHUNK_BLOCKS = 256;
    private static final ByteBuffer ZERO_BLOCKS = ByteBuffer.allocate(ZERO_CHUNK_BLOCKS * BLOCK).asReadOnlyBuffer();
    /** Zeros that holes lend (direct, so a socket send takes them as they are). */
    private static final ByteBuffer ZERO_VIEW = ByteBuffer.allocateDirect(ZERO_CHUNK_BLOCKS * BLOCK).asReadOnlyBuffer();

    private final Store store;
    private final String name;
    final Store.VdiState vdi;
    final SnapshotRecord snapshot;
    private final long sizeBytes;
    private final boolean readOnly;
    private volatile boolean closed;

    Volume(Store store, String name, Store.VdiState vdi, SnapshotRecord snapshot, long sizeBytes, boolean readOnly) {
        this.store = store;
        this.name = name;
        this.vdi = vdi;
        this.snapshot = snapshot;
        this.sizeBytes = sizeBytes;
        this.readOnly = readOnly;
    }

    public String name() {
        return name;
    }

    public long sizeBytes() {
        return sizeBytes;
    }

    /** True for snapshots, read-only stores, and stores that stopped writing after corruption. */
    public boolean readOnly() {
        return readOnly || store.readOnly();
    }

    public boolean isSnapshot() {
        return snapshot != null;
    }

    // ---------------------------------------------------------------- reads

    /** Fills {@code destination} from {@code offsetBytes}; holes read as zeros. */
    public void read(long offsetBytes, ByteBuffer destination) {
        int length = destination.remaining();
        checkRange(offsetBytes, length);
        if (length == 0) {
            return;
        }
        long firstBlock = offsetBytes / BLOCK;
        int count = blockCount(offsetBytes, length);
        int io = store.beginIo();
        try {
            copyBlocks(offsetBytes, store.resolve(this, firstBlock, count), offsetBytes, destination);
            destination.position(destination.position() + length);
        } finally {
            store.endIo(io);
        }
    }

    /**
     * Copies {@code destination.remaining()} bytes from {@code fromBytes} into {@code destination} (its position
     * unchanged), given the physical blocks of the range that starts at {@code rangeOffsetBytes}: each run of
     * consecutive blocks (or of holes) is one device call.
     */
    private void copyBlocks(long rangeOffsetBytes, long[] physical, long fromBytes, ByteBuffer destination) {
        long firstBlock = rangeOffsetBytes / BLOCK;
        long endBytes = fromBytes + destination.remaining();
        int i = (int) (fromBytes / BLOCK - firstBlock);
        int last = (int) ((endBytes - 1) / BLOCK - firstBlock);
        while (i <= last) {
            int j = endOfRun(physical, i, last + 1);
            long runStart = Math.max(fromBytes, (firstBlock + i) * BLOCK);
            long runEnd = Math.min(endBytes, (firstBlock + j) * BLOCK);
            ByteBuffer slice = destination.slice(destination.position() + (int) (runStart - fromBytes), (int) (runEnd - runStart));
            if (physical[i] == 0) {
                zero(slice);
            } else {
                store.device().read(physical[i] * BLOCK + (runStart - (firstBlock + i) * BLOCK), slice);
            }
            i = j;
        }
    }

    /** The end (exclusive, at most {@code limit}) of the run of consecutive physical blocks, or of holes, from {@code i}. */
    private static int endOfRun(long[] physical, int i, int limit) {
        int j = i + 1;
        while (j < limit && (physical[i] == 0 ? physical[j] == 0 : physical[j] == physical[i] + (j - i))) {
            j++;
        }
        return j;
    }

    private static int blockCount(long offsetBytes, int length) {
        return (int) ((offsetBytes + length - 1) / BLOCK - offsetBytes / BLOCK + 1);
    }

    /**
     * The bytes of a range lent in place for the duration of one call ({@link #lend}): views of the store's
     * own memory, valid only while that call runs, since once it returns the blocks may be freed and reused.
     */
    public interface LentBytes {
        /** Read-only direct views of the bytes, in order: mapped blocks, and shared zeros for holes. */
        List<ByteBuffer> views();

        /**
         * Copies the bytes from {@code fromBytes} (counted from the start of the range) into {@code destination}
         * up to its limit, by reading the device: a disk error here is reported precisely, as by {@link #read}.
         */
        void copyTo(int fromBytes, ByteBuffer destination);
    }

    /** What uses lent bytes; {@code E} lets it throw its own checked exception through {@link #lend}. */
    public interface LentBytesUser<E extends Exception> {
        void use(LentBytes bytes) throws E;
    }

    /**
     * Lends the bytes of {@code [offsetBytes, offsetBytes + length)} in place to {@code user} for the duration of
     * the call (no copy; inside one volume I/O, so the blocks are not reused meanwhile, Store design note 3).
     * Returns false, without calling the user, when they cannot be lent: the device cannot map them, or the
     * range is in more than {@code maxViews} pieces; then {@link #read} them instead. The user must not wait
     * for anything unbounded (a reclamation waits for it).
     */
    public <E extends Exception> boolean lend(long offsetBytes, int length, int maxViews, LentBytesUser<E> user) throws E {
        checkRange(offsetBytes, length);
        if (length == 0) {
            return false;
        }
        long firstBlock = offsetBytes / BLOCK;
        int count = blockCount(offsetBytes, length);
        List<BlockDevice.Lent> lent = new ArrayList<>();
        int io = store.beginIo();
        try {
            long[] physical = store.resolve(this, firstBlock, count);
            List<ByteBuffer> views = new ArrayList<>();
            long endBytes = offsetBytes + length;
            int i = 0;
            while (i < count) {
                int j = endOfRun(physical, i, count);
                long runStart = Math.max(offsetBytes, (firstBlock + i) * BLOCK);
                long runEnd = Math.min(endBytes, (firstBlock + j) * BLOCK);
                if (physical[i] == 0) {
                    for (long at = runStart; at < runEnd; at += ZERO_VIEW.capacity()) {
                        views.add(ZERO_VIEW.slice(0, (int) Math.min(ZERO_VIEW.capacity(), runEnd - at)));
                    }
                } else {
                    BlockDevice.Lent run = store.device().lend(
                            physical[i] * BLOCK + (runStart - (firstBlock + i) * BLOCK), (int) (runEnd - runStart));
                    if (run == null) {
                        return false;
                    }
                    lent.add(run);
                    views.add(run.view());
                }
                if (views.size() > maxViews) {
                    return false;
                }
                i = j;
            }
            user.use(new LentBytes() {
                @Override
                public List<ByteBuffer> views() {
                    return views;
                }

                @Override
                public void copyTo(int fromBytes, ByteBuffer destination) {
                    if (fromBytes < 0 || fromBytes + (long) destination.remaining() > length) {
                        throw new IllegalArgumentException("copy of " + destination.remaining() + " bytes from " + fromBytes
                                + " outside the " + length + " lent");
                    }
                    copyBlocks(offsetBytes, physical, offsetBytes + fromBytes, destination);
                }
            });
            return true;
        } finally {
            for (BlockDevice.Lent run : lent) {
                run.close();
            }
            store.endIo(io);
        }
    }

    // ---------------------------------------------------------------- writes

    /** Writes {@code source} at {@code offsetBytes}; with {@code fua} it is durable on return. */
    public void write(long offsetBytes, ByteBuffer source, boolean fua) {
        int length = source.remaining();
        checkWritable();
        checkRange(offsetBytes, length);
        if (length > 0) {
            writeRange(offsetBytes, source.slice(), length);
            source.position(source.position() + length);
        }
        if (fua) {
            store.commit();
        }
    }

    private void writeRange(long offsetBytes, ByteBuffer source, int length) {
        while (!tryWriteRange(offsetBytes, source, length)) {
            // No free block, but a reclamation under way will free some: wait for it outside this I/O (it may
            // be waiting for this very I/O to end), then plan again (Store design note 8).
            store.awaitReclaim();
        }
    }

    /** One attempt; false (nothing written) if only space that a reclamation under way will free is left. */
    private boolean tryWriteRange(long offsetBytes, ByteBuffer source, int length) {
        long firstBlock = offsetBytes / BLOCK;
        long lastBlock = (offsetBytes + length - 1) / BLOCK;
        int count = (int) (lastBlock - firstBlock + 1);
        boolean firstPartial = offsetBytes % BLOCK != 0 || length < BLOCK;
        boolean lastPartial = (offsetBytes + length) % BLOCK != 0;
        List<ReentrantLock> held = firstPartial || lastPartial ? new ArrayList<>(2) : List.of();
        int io = store.beginIo();
        try {
            if (firstPartial) {
                lockStripe(held, firstBlock);
            }
            if (lastPartial && lastBlock != firstBlock) {
                lockStripe(held, lastBlock);
            }
            long[] targets = new long[count];
            long[] oldBlocks = new long[count];
            boolean[] inPlace = new boolean[count];
            TreeSpace.LeafCopy[] leafCopy = new TreeSpace.LeafCopy[1];
            int fresh = store.planWrite(this, firstBlock, count, targets, oldBlocks, inPlace, leafCopy);
            if (fresh == Store.RETRY_AFTER_RECLAIM) {
                return false;
            }
            boolean linked = false;
            try {
                if (leafCopy[0] != null) {
                    store.prepareLeafCopy(leafCopy[0]); // the leaf copy's counter pass, outside the metadata lock
                }
                writeBlocks(offsetBytes, source, length, firstBlock, count, targets, oldBlocks, inPlace);
                if (fresh > 0) {
                    linked = true; // link gives the pinned leaf back whatever happens in it
                    store.link(this, firstBlock, count, targets, inPlace, leafCopy[0]);
                }
            } finally {
                if (!linked && leafCopy[0] != null) {
                    store.dropLeafCopy(leafCopy[0]);
                }
                if (fresh < count) {
                    store.inPlaceWriteDone(this); // a snapshot waiting for this write may go ahead
                }
            }
            return true;
        } finally {
            for (int i = held.size() - 1; i >= 0; i--) {
                held.get(i).unlock();
            }
            store.endIo(io);
        }
    }

    private void lockStripe(List<ReentrantLock> held, long block) {
        ReentrantLock lock = store.stripe(this, block);
        if (!held.contains(lock)) {
            // Two stripes are always taken in block order, so two writers cannot wait on each other.
            lock.lock();
            held.add(lock);
        }
    }

    private void writeBlocks(long offsetBytes, ByteBuffer source, int length, long firstBlock, int count,
                             long[] targets, long[] oldBlocks, boolean[] inPlace) {
        int i = 0;
        while (i < count) {
            long blockStart = (firstBlock + i) * BLOCK;
            long start = Math.max(offsetBytes, blockStart);
            boolean partial = start != blockStart || Math.min(offsetBytes + length, blockStart + BLOCK) != blockStart + BLOCK;
            if (!inPlace[i] && partial) {
                writeMerged(source, offsetBytes, length, firstBlock + i, targets[i], oldBlocks[i]);
                i++;
                continue;
            }
            // A run of blocks written straight from the source: in place, or whole fresh blocks.
            int j = i + 1;
            while (j < count && targets[j] == targets[i] + (j - i)) {
                long nextStart = (firstBlock + j) * BLOCK;
                boolean nextPartial = offsetBytes + length < nextStart + BLOCK;
                if (!inPlace[j] && nextPartial) {
                    break;
                }
                j++;
            }
            long runEnd = Math.min(offsetBytes + length, (firstBlock + j) * BLOCK);
            ByteBuffer slice = source.slice((int) (start - offsetBytes), (int) (runEnd - start));
            if (inPlace[i]) {
                store.checkStillHeld(this);
            }
            store.device().write(targets[i] * BLOCK + (start - blockStart), slice);
            i = j;
        }
    }

    /** Copy-on-write of a partial block: old content (or zeros), overlaid with the new bytes, to a fresh block. */
    private void writeMerged(ByteBuffer source, long offsetBytes, int length, long block, long target, long oldBlock) {
        ByteBuffer merged = ByteBuffer.allocate(BLOCK);
        if (oldBlock != 0) {
            store.device().read(oldBlock * BLOCK, merged);
            merged.clear();
        }
        long blockStart = block * BLOCK;
        long start = Math.max(offsetBytes, blockStart);
        long end = Math.min(offsetBytes + length, blockStart + BLOCK);
        merged.put((int) (start - blockStart), source, (int) (start - offsetBytes), (int) (end - start));
        store.device().write(target * BLOCK, merged);
    }

    /** Makes every completed write durable. */
    public void flush() {
        store.commit();
    }

    /**
     * Discards a range: whole blocks become holes (their space is freed once no snapshot needs it),
     * partial blocks at the edges are zeroed. Reads of the range return zeros afterwards.
     */
    public void trim(long offsetBytes, long lengthBytes, boolean fua) {
        writeZeroes(offsetBytes, lengthBytes, true, fua);
    }

    /**
     * Makes a range read as zeros. With {@code punchHoles} whole blocks become holes (thin); without
     * it they are written with zeros and stay allocated.
     */
    public void writeZeroes(long offsetBytes, long lengthBytes, boolean punchHoles, boolean fua) {
        checkWritable();
        checkRange(offsetBytes, lengthBytes);
        if (lengthBytes > 0) {
            long end = offsetBytes + lengthBytes;
            long firstWhole = (offsetBytes + BLOCK - 1) / BLOCK;
            long endWhole = end / BLOCK;
            if (!punchHoles || firstWhole >= endWhole) {
                writeZeroBytes(offsetBytes, end);
            } else {
                writeZeroBytes(offsetBytes, firstWhole * BLOCK);
                int io = store.beginIo();
                try {
                    store.punch(this, firstWhole, endWhole - firstWhole);
                } finally {
                    store.endIo(io);
                }
                writeZeroBytes(endWhole * BLOCK, end);
            }
        }
        if (fua) {
            store.commit();
        }
    }

    private void writeZeroBytes(long start, long end) {
        for (long offset = start; offset < end; ) {
            int chunk = (int) Math.min(end - offset, ZERO_BLOCKS.capacity());
            writeRange(offset, ZERO_BLOCKS.duplicate().limit(chunk), chunk);
            offset += chunk;
        }
    }

    // ---------------------------------------------------------------- allocation status

    /**
     * Allocation runs covering [offset, offset + length), in bytes, block-aligned outward (the last run
     * ends at the volume's size). Only {@link MappedRange.State#OWNED} runs are guaranteed to take
     * writes without needing free space.
     */
    public List<MappedRange> mapping(long offsetBytes, long lengthBytes) {
        checkRange(offsetBytes, lengthBytes);
        if (lengthBytes == 0) {
            return List.of();
        }
        long firstBlock = offsetBytes / BLOCK;
        long endBlock = (offsetBytes + lengthBytes + BLOCK - 1) / BLOCK;
        List<MappedRange> blocks = store.mapping(this, firstBlock, endBlock - firstBlock);
        List<MappedRange> bytes = new ArrayList<>(blocks.size());
        for (MappedRange range : blocks) {
            long start = range.offsetBytes() * BLOCK;
            long end = Math.min(sizeBytes, (range.offsetBytes() + range.lengthBytes()) * BLOCK);
            bytes.add(new MappedRange(start, end - start, range.state()));
        }
        return bytes;
    }

    // ---------------------------------------------------------------- checks

    private void checkRange(long offsetBytes, long lengthBytes) {
        if (closed) {
            throw new StorageException(StorageException.Code.CLOSED, "volume '" + name + "' is closed");
        }
        if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes > sizeBytes || lengthBytes > sizeBytes - offsetBytes) {
            throw new IllegalArgumentException("range [" + offsetBytes + ", +" + lengthBytes + ") is outside volume '"
                    + name + "' of " + sizeBytes + " bytes");
        }
    }

    private void checkWritable() {
        if (readOnly) {
            throw new StorageException(StorageException.Code.READ_ONLY, snapshot != null
                    ? "'" + name + "' is a snapshot and cannot be written; clone it to get a writable disk"
                    : "'" + name + "' is read-only");
        }
    }

    private static void zero(ByteBuffer buffer) {
        int position = 0;
        while (position < buffer.remaining()) {
            int chunk = Math.min(buffer.remaining() - position, ZERO_BLOCKS.capacity());
            buffer.put(position, ZERO_BLOCKS, 0, chunk);
            position += chunk;
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            store.closeVolume(this);
        }
    }
}
