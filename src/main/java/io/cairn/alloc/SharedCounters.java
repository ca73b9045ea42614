package io.cairn.alloc;

import io.cairn.format.Layout;
import io.cairn.format.StoreGeometry;
import io.cairn.io.StorageException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.UUID;
import java.util.function.Consumer;

/**
 * The live reference counters of a store in a memory-mapped file that several processes on one host
 * map at once, updated without locks by compare-and-swap on 64-bit words (seed 004: lock-free
 * allocation by CAS on shared allocation maps; seed 000: 16-bit counters, 0 = free).
 *
 * <p>This is the in-memory authority that the processes serving one store share: every increment,
 * decrement and allocation of every process lands here at once, so each process decides "count 1,
 * overwrite in place" and "count 0, free" on the same numbers. The durable counters stay in the
 * store's counter blocks; a commit writes the counter blocks marked dirty here. The file holds no
 * state that the store cannot rebuild: it is rebuilt from the durable counters whenever it does not
 * belong to the store or was not completely built (see {@link #attach}).
 *
 * <p>File layout (little-endian; all regions start on a 4096-byte boundary):
 * <pre>
 *   header     0  u32 magic "CLIV"   4 u32 version 1   8 u64 store UUID msb   16 u64 store UUID lsb
 *             24  u64 store blocks  32 u32 extent blocks  36 u32 state (0 building, 1 ready)
 *             40  u64 generation the counters were loaded at   48 u64 attachments so far
 *   free       one u64 per extent: its blocks with counter 0 (kept only for held extents)
 *   dirty      one bit per counter block (extent * counterBlocksPerExtent + i): changed since a commit took it
 *   counters   one u16 per block, four to a u64 word: block b is lane b % 4 of word b / 4
 * </pre>
 *
 * <p>Invariants.
 * <ol>
 *   <li>Every change of a counter is one successful CAS of the word holding it, so concurrent updates
 *       of the four counters in a word, from any thread of any process, never lose one another.</li>
 *   <li>Allocation is the CAS of a lane from 0 to 1: two allocators can never both win one block.</li>
 *   <li>A change sets its counter block's dirty bit after the CAS; a commit clears the bit before it
 *       reads the counters ({@link #takeDirty}), so a change is either in what the commit reads or
 *       leaves the bit set for the next commit.</li>
 *   <li>An extent's free count changes after the CAS that freed or took a block; it is exact whenever
 *       no update is in flight, and never used for a decision that needs it exact at every instant.</li>
 * </ol>
 * Thread-safe; usable from several processes. Mapped memory is not durable storage: after a host
 * crash the file is rebuilt from the store.
 */
public final class SharedCounters implements AutoCloseable {

    /** "CLIV" as a little-endian u32. */
    static final int MAGIC = 0x56494C43;
    static final int VERSION = 1;
    private static final int STATE_READY = 1;
    private static final long HEADER_BYTES = Layout.BLOCK_BYTES;
    private static final long OFFSET_MAGIC = 0;
    private static final long OFFSET_VERSION = 4;
    private static final long OFFSET_UUID_MSB = 8;
    private static final long OFFSET_UUID_LSB = 16;
    private static final long OFFSET_STORE_BLOCKS = 24;
    private static final long OFFSET_EXTENT_BLOCKS = 32;
    private static final long OFFSET_STATE = 36;
    private static final long OFFSET_GENERATION = 40;
    private static final long OFFSET_ATTACHMENTS = 48;

    private static final VarHandle WORD = ValueLayout.JAVA_LONG.varHandle();
    private static final long LANE_MASK = 0xFFFFL;
    /** Bit tricks for "does this word hold a 16-bit lane equal to zero". */
    private static final long LOW_BITS = 0x0001_0001_0001_0001L;
    private static final long HIGH_BITS = 0x8000_8000_8000_8000L;

    private final StoreGeometry geometry;
    private final int counterBlocksPerExtent;
    private final Arena arena;
    private final MemorySegment map;
    private final long freeOffset;
    private final long dirtyOffset;
    private final long countersOffset;
    private final boolean rebuilt;

    private SharedCounters(StoreGeometry geometry, Arena arena, MemorySegment map, boolean rebuilt) {
        this.geometry = geometry;
        this.counterBlocksPerExtent = geometry.counterBlocksPerExtent();
        this.arena = arena;
        this.map = map;
        this.rebuilt = rebuilt;
        Regions regions = Regions.of(geometry);
        this.freeOffset = regions.free;
        this.dirtyOffset = regions.dirty;
        this.countersOffset = regions.counters;
    }

    /** Where each region of the file starts, and its whole size. */
    private record Regions(long free, long dirty, long counters, long fileBytes) {
        static Regions of(StoreGeometry geometry) {
            long free = HEADER_BYTES;
            long dirty = free + roundUp(8L * geometry.extentCount());
            long counterBlocks = (long) geometry.extentCount() * geometry.counterBlocksPerExtent();
            long counters = dirty + roundUp(8L * ((counterBlocks + 63) / 64));
            long fileBytes = counters + roundUp(8L * ((geometry.storeBlocks() + 3) / 4));
            return new Regions(free, dirty, counters, fileBytes);
        }

        private static long roundUp(long bytes) {
            return (bytes + HEADER_BYTES - 1) / HEADER_BYTES * HEADER_BYTES;
        }
    }

    /**
     * Maps the counter file of a store, building it if it is new, belongs to another store or geometry,
     * or was left half-built. Building runs under an exclusive lock on the file (so exactly one of
     * several processes attaching at once builds it, and the others wait and then map the result):
     * {@code build} receives the zeroed counters and sets every counter (reserved blocks included) and
     * every held extent's free count, e.g. from the durable counter blocks.
     *
     * @param generation the superblock generation {@code build} loads from, recorded in the header
     */
    public static SharedCounters attach(Path file, UUID storeId, StoreGeometry geometry, long generation,
                                        Consumer<SharedCounters> build) {
        Regions regions = Regions.of(geometry);
        Arena arena = Arena.ofShared();
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ,
                StandardOpenOption.WRITE)) {
            try (FileLock ignored = channel.lock(0, HEADER_BYTES, false)) {
                boolean matches = channel.size() == regions.fileBytes && headerMatches(channel, storeId, geometry);
                if (!matches) {
                    channel.truncate(0);
                    // A sparse file of zeros: counters 0, no dirty bits, state "building".
                    channel.write(java.nio.ByteBuffer.allocate(1), regions.fileBytes - 1);
                }
                MemorySegment map = channel.map(FileChannel.MapMode.READ_WRITE, 0, regions.fileBytes, arena);
                SharedCounters counters = new SharedCounters(geometry, arena, map, !matches);
                if (!matches) {
                    map.set(ValueLayout.JAVA_INT_UNALIGNED, OFFSET_STATE, 0);
                    map.set(ValueLayout.JAVA_INT_UNALIGNED, OFFSET_MAGIC, MAGIC);
                    map.set(ValueLayout.JAVA_INT_UNALIGNED, OFFSET_VERSION, VERSION);
                    map.set(ValueLayout.JAVA_LONG_UNALIGNED, OFFSET_UUID_MSB, storeId.getMostSignificantBits());
                    map.set(ValueLayout.JAVA_LONG_UNALIGNED, OFFSET_UUID_LSB, storeId.getLeastSignificantBits());
                    map.set(ValueLayout.JAVA_LONG_UNALIGNED, OFFSET_STORE_BLOCKS, geometry.storeBlocks());
                    map.set(ValueLayout.JAVA_INT_UNALIGNED, OFFSET_EXTENT_BLOCKS, geometry.extentBlocks());
                    map.set(ValueLayout.JAVA_LONG_UNALIGNED, OFFSET_GENERATION, generation);
                    build.accept(counters);
                    VarHandle.fullFence();
                    map.set(ValueLayout.JAVA_INT_UNALIGNED, OFFSET_STATE, STATE_READY);
                }
                WORD.getAndAdd(map, OFFSET_ATTACHMENTS, 1L);
                return counters;
            }
        } catch (IOException e) {
            arena.close();
            throw new StorageException(StorageException.Code.IO, "cannot map the shared counter file " + file + ": "
                    + e.getMessage());
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    private static boolean headerMatches(FileChannel channel, UUID storeId, StoreGeometry geometry) throws IOException {
        java.nio.ByteBuffer header = java.nio.ByteBuffer.allocate(56).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        while (header.hasRemaining() && channel.read(header, header.position()) > 0) {
            // read the whole header prefix
        }
        if (header.hasRemaining()) {
            return false;
        }
        return header.getInt((int) OFFSET_MAGIC) == MAGIC
                && header.getInt((int) OFFSET_VERSION) == VERSION
                && header.getLong((int) OFFSET_UUID_MSB) == storeId.getMostSignificantBits()
                && header.getLong((int) OFFSET_UUID_LSB) == storeId.getLeastSignificantBits()
                && header.getLong((int) OFFSET_STORE_BLOCKS) == geometry.storeBlocks()
                && header.getInt((int) OFFSET_EXTENT_BLOCKS) == geometry.extentBlocks()
                && header.getInt((int) OFFSET_STATE) == STATE_READY;
    }

    /** True if this attachment built the file (from the store) rather than finding it ready. */
    public boolean rebuilt() {
        return rebuilt;
    }

    /** The superblock generation the counters were first loaded at. */
    public long loadedAtGeneration() {
        return map.get(ValueLayout.JAVA_LONG_UNALIGNED, OFFSET_GENERATION);
    }

    /** How many attachments the file has seen since it was built (this one included). */
    public long attachments() {
        return (long) WORD.getVolatile(map, OFFSET_ATTACHMENTS);
    }

    public StoreGeometry geometry() {
        return geometry;
    }

    // ---------------------------------------------------------------- counters

    public int count(long block) {
        checkBlock(block);
        return lane((long) WORD.getVolatile(map, wordOffset(block)), block);
    }

    /**
     * Adds a reference to an allocated block; returns the new count.
     *
     * @throws RefcountSaturatedException at {@code maxRefcount} (the caller copies instead of sharing)
     */
    public int increment(long block, int maxRefcount) {
        checkBlock(block);
        long offset = wordOffset(block);
        int shift = shift(block);
        while (true) {
            long word = (long) WORD.getVolatile(map, offset);
            int count = (int) ((word >>> shift) & LANE_MASK);
            if (count == 0) {
                throw new IllegalStateException("increment of free block " + block);
            }
            if (count >= maxRefcount) {
                throw new RefcountSaturatedException(block, maxRefcount);
            }
            if (WORD.compareAndSet(map, offset, word, word + (1L << shift))) {
                markDirty(block);
                return count + 1;
            }
        }
    }

    /** Removes a reference; returns the new count (0: the block is free for every process). */
    public int decrement(long block) {
        checkBlock(block);
        long offset = wordOffset(block);
        int shift = shift(block);
        while (true) {
            long word = (long) WORD.getVolatile(map, offset);
            int count = (int) ((word >>> shift) & LANE_MASK);
            if (count == 0) {
                throw new IllegalStateException("decrement of free block " + block);
            }
            if (WORD.compareAndSet(map, offset, word, word - (1L << shift))) {
                markDirty(block);
                if (count == 1) {
                    addFree(geometry.extentOf(block), 1);
                }
                return count - 1;
            }
        }
    }

    /**
     * Sets a counter outright (building the file, the checker's repair, the garbage collector's sweep)
     * and keeps the extent's free count in step; returns the old value.
     */
    public int set(long block, int count) {
        if (count < 0 || count > Layout.MAX_REFCOUNT) {
            throw new IllegalArgumentException("counter out of range: " + count);
        }
        checkBlock(block);
        long offset = wordOffset(block);
        int shift = shift(block);
        while (true) {
            long word = (long) WORD.getVolatile(map, offset);
            int old = (int) ((word >>> shift) & LANE_MASK);
            long updated = (word & ~(LANE_MASK << shift)) | ((long) count << shift);
            if (WORD.compareAndSet(map, offset, word, updated)) {
                if (old != count) {
                    markDirty(block);
                    if (old == 0) {
                        addFree(geometry.extentOf(block), -1);
                    } else if (count == 0) {
                        addFree(geometry.extentOf(block), 1);
                    }
                }
                return old;
            }
        }
    }

    // ---------------------------------------------------------------- allocation

    /**
     * Takes a free block in {@code [fromBlock, toBlock)} (one extent or part of one), scanning from
     * {@code startBlock} and wrapping around: the first lane found at 0 is set to 1 by CAS. Returns the
     * block, or -1 if the range has none free. Lock-free: a lost CAS rereads the word and goes on.
     */
    public long allocate(long fromBlock, long toBlock, long startBlock) {
        if (fromBlock < 0 || toBlock > geometry.storeBlocks() || fromBlock >= toBlock
                || startBlock < fromBlock || startBlock >= toBlock) {
            throw new IllegalArgumentException("bad allocation range [" + fromBlock + ", " + toBlock + ") from "
                    + startBlock);
        }
        long found = scan(startBlock, toBlock, fromBlock, toBlock);
        return found >= 0 ? found : scan(fromBlock, startBlock, fromBlock, toBlock);
    }

    private long scan(long from, long to, long rangeStart, long rangeEnd) {
        long block = from;
        while (block < to) {
            long offset = wordOffset(block);
            long word = (long) WORD.getVolatile(map, offset);
            long zeroLanes = (word - LOW_BITS) & ~word & HIGH_BITS;
            if (zeroLanes == 0) {
                block = (block & ~3L) + 4; // no free lane in this word
                continue;
            }
            long first = block & ~3L;
            boolean retry = false;
            for (long candidate = Math.max(block, first); candidate < Math.min(first + 4, to); candidate++) {
                if (candidate < rangeStart || candidate >= rangeEnd) {
                    continue;
                }
                int shift = shift(candidate);
                if (((word >>> shift) & LANE_MASK) != 0) {
                    continue;
                }
                if (WORD.compareAndSet(map, offset, word, word | (1L << shift))) {
                    markDirty(candidate);
                    addFree(geometry.extentOf(candidate), -1);
                    return candidate;
                }
                retry = true; // the word changed under us: read it again
                break;
            }
            if (!retry) {
                block = first + 4;
            }
        }
        return -1;
    }

    // ---------------------------------------------------------------- free counts

    /** Blocks of {@code extent} with counter 0, as far as the builder and later updates have kept it. */
    public long freeBlocks(int extent) {
        return (long) WORD.getVolatile(map, freeOffset + 8L * extent);
    }

    private void addFree(int extent, long delta) {
        WORD.getAndAdd(map, freeOffset + 8L * extent, delta);
    }

    /** Sets an extent's free count (the builder counts it after loading the extent's counters). */
    public void setFreeBlocks(int extent, long free) {
        WORD.setVolatile(map, freeOffset + 8L * extent, free);
    }

    // ---------------------------------------------------------------- dirty counter blocks

    /** True if counter block {@code counterBlock} of {@code extent} changed since a commit last took it. */
    public boolean isDirty(int extent, int counterBlock) {
        long index = (long) extent * counterBlocksPerExtent + counterBlock;
        long word = (long) WORD.getVolatile(map, dirtyOffset + 8L * (index >>> 6));
        return (word & (1L << (index & 63))) != 0;
    }

    /** Marks a counter block for the next commit (e.g. one a crashed commit left newer than the store). */
    public void markDirty(int extent, int counterBlock) {
        long index = (long) extent * counterBlocksPerExtent + counterBlock;
        WORD.getAndBitwiseOr(map, dirtyOffset + 8L * (index >>> 6), 1L << (index & 63));
    }

    private void markDirty(long block) {
        markDirty(geometry.extentOf(block), geometry.offsetInExtent(block) / Layout.COUNTERS_PER_REFCOUNT_BLOCK);
    }

    /**
     * Clears and returns the dirty counter blocks of {@code extent} (indexes 0 ..
     * counterBlocksPerExtent - 1), for a commit that then reads their counters with {@link #copyInto}.
     */
    public java.util.BitSet takeDirty(int extent) {
        java.util.BitSet taken = new java.util.BitSet(counterBlocksPerExtent);
        for (int i = 0; i < counterBlocksPerExtent; i++) {
            long index = (long) extent * counterBlocksPerExtent + i;
            long bit = 1L << (index & 63);
            long offset = dirtyOffset + 8L * (index >>> 6);
            long before = (long) WORD.getAndBitwiseAnd(map, offset, ~bit);
            if ((before & bit) != 0) {
                taken.set(i);
            }
        }
        return taken;
    }

    /** Copies the counters of blocks [firstBlock, firstBlock + count) into {@code target} from {@code at}. */
    public void copyInto(long firstBlock, int count, char[] target, int at) {
        for (int i = 0; i < count; i++) {
            target[at + i] = (char) count(firstBlock + i);
        }
    }

    // ---------------------------------------------------------------- helpers

    private long wordOffset(long block) {
        return countersOffset + 8L * (block >>> 2);
    }

    private static int shift(long block) {
        return (int) (block & 3) * 16;
    }

    private static int lane(long word, long block) {
        return (int) ((word >>> shift(block)) & LANE_MASK);
    }

    private void checkBlock(long block) {
        if (block < 0 || block >= geometry.storeBlocks()) {
            throw new IllegalArgumentException("block " + block + " is outside the store of "
                    + geometry.storeBlocks() + " blocks");
        }
    }

    /** Unmaps the file (the file and its counters stay for the other processes). */
    @Override
    public void close() {
        arena.close();
    }
}
