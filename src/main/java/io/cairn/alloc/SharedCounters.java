package io.cairn.alloc;

import io.cairn.format.ExtentRecord;
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
 *   header     0  u32 magic "CLIV"   4 u32 version 2   8 u64 store UUID msb   16 u64 store UUID lsb
 *             24  u64 store blocks  32 u32 extent blocks  36 u32 state (0 building, 1 ready)
 *             40  u64 generation the counters were loaded at   48 u64 attachments so far
 *             56  u64 highest generation any commit has used (or any counter slot carried at build)
 *             64  u64 pid of the process holding the commit lock (0 = none)
 *   free       one u64 per extent: its blocks with counter 0 (kept only for held extents)
 *   holders    one u64 per extent: 0 unclaimed, else (holder node id &lt;&lt; 8) | (extent type ordinal)
 *   slots      one byte per counter block: its durable slot, 0 or 1, or 0xFF if neither is
 *   dirty      one bit per counter block (extent * counterBlocksPerExtent + i): changed since a commit took it
 *   in flight  the same bits: taken by the commit running now (or by one whose process died before it finished)
 *   counters   one u16 per block, four to a u64 word: block b is lane b % 4 of word b / 4
 * </pre>
 *
 * <p>Attachment. Every attached process holds a shared lock on one byte of the file (far beyond its
 * end) for as long as it is attached. An attacher that can take that byte exclusively is alone: the file
 * may then be stale (its last users exited, and the store may have been changed since by a process that
 * did not use it), so it is rebuilt from the store. Several attachments within one process share one
 * mapping and one lock, since POSIX record locks belong to processes.
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
public final class SharedCounters implements CounterStore, AutoCloseable {

    /** "CLIV" as a little-endian u32. */
    static final int MAGIC = 0x56494C43;
    static final int VERSION = 2;
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
    private static final long OFFSET_HIGHEST_GENERATION = 56;
    private static final long OFFSET_COMMIT_HOLDER = 64;
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(SharedCounters.class);
    /** Lock positions beyond any file's end: one shared lock per attached process, and the host commit lock. */
    private static final long LIVE_LOCK_POSITION = 1L << 60;
    private static final long COMMIT_LOCK_POSITION = LIVE_LOCK_POSITION + 1;
    private static final byte NO_SLOT = (byte) 0xFF;
    /** The attachments of this process, by real path of the file (POSIX locks are per process). */
    private static final java.util.Map<Path, Mapping> MAPPINGS = new java.util.HashMap<>();

    private static final VarHandle WORD = ValueLayout.JAVA_LONG.varHandle();
    private static final VarHandle BYTE = ValueLayout.JAVA_BYTE.varHandle();
    private static final long LANE_MASK = 0xFFFFL;
    /** Bit tricks for "does this word hold a 16-bit lane equal to zero". */
    private static final long LOW_BITS = 0x0001_0001_0001_0001L;
    private static final long HIGH_BITS = 0x8000_8000_8000_8000L;

    private final StoreGeometry geometry;
    private final int counterBlocksPerExtent;
    private final Mapping mapping;
    private final MemorySegment map;
    private final long freeOffset;
    private final long holdersOffset;
    private final long slotsOffset;
    private final long dirtyOffset;
    private final long inFlightOffset;
    private final long dirtyBytes;
    private final long countersOffset;
    private final boolean rebuilt;
    private boolean closed;

    /** One process's mapping of a counter file: the channel holding its locks, shared by its attachments. */
    private static final class Mapping {
        final Path key;
        final FileChannel channel;
        final Arena arena;
        final MemorySegment map;
        final java.util.concurrent.locks.ReentrantLock commits = new java.util.concurrent.locks.ReentrantLock();
        int users;

        Mapping(Path key, FileChannel channel, Arena arena, MemorySegment map) {
            this.key = key;
            this.channel = channel;
            this.arena = arena;
            this.map = map;
        }
    }

    private SharedCounters(StoreGeometry geometry, Mapping mapping, boolean rebuilt) {
        this.geometry = geometry;
        this.counterBlocksPerExtent = geometry.counterBlocksPerExtent();
        this.mapping = mapping;
        this.map = mapping.map;
        this.rebuilt = rebuilt;
        Regions regions = Regions.of(geometry);
        this.freeOffset = regions.free;
        this.holdersOffset = regions.holders;
        this.slotsOffset = regions.slots;
        this.dirtyOffset = regions.dirty;
        this.inFlightOffset = regions.inFlight;
        this.dirtyBytes = regions.inFlight - regions.dirty;
        this.countersOffset = regions.counters;
    }

    /** Where each region of the file starts, and its whole size. */
    private record Regions(long free, long holders, long slots, long dirty, long inFlight, long counters, long fileBytes) {
        static Regions of(StoreGeometry geometry) {
            long free = HEADER_BYTES;
            long holders = free + roundUp(8L * geometry.extentCount());
            long counterBlocks = (long) geometry.extentCount() * geometry.counterBlocksPerExtent();
            long slots = holders + roundUp(8L * geometry.extentCount());
            long dirty = slots + roundUp(counterBlocks);
            long inFlight = dirty + roundUp(8L * ((counterBlocks + 63) / 64));
            long counters = inFlight + (inFlight - dirty);
            long fileBytes = counters + roundUp(8L * ((geometry.storeBlocks() + 3) / 4));
            return new Regions(free, holders, slots, dirty, inFlight, counters, fileBytes);
        }

        private static long roundUp(long bytes) {
            return (bytes + HEADER_BYTES - 1) / HEADER_BYTES * HEADER_BYTES;
        }
    }

    /**
     * Maps the counter file of a store, building it if this process is the only one attached (see the class
     * notes), or if it belongs to another store or geometry, or was left half-built. Building runs under an
     * exclusive lock on the header (so exactly one of several processes attaching at once builds it, and
     * the others wait and then map the result): {@code build} receives the zeroed counters and sets every
     * counter (reserved blocks included), every held extent's free count, holder and durable slots, and the
     * highest generation, e.g. from the durable counter blocks.
     *
     * @param generation the superblock generation {@code build} loads from, recorded in the header
     */
    public static SharedCounters attach(Path file, UUID storeId, StoreGeometry geometry, long generation,
                                        Consumer<SharedCounters> build) {
        Regions regions = Regions.of(geometry);
        Path key = file.toAbsolutePath().normalize();
        synchronized (MAPPINGS) {
            Mapping existing = MAPPINGS.get(key);
            if (existing != null) {
                if (existing.map.byteSize() != regions.fileBytes || !headerMatches(existing.map, storeId, geometry)) {
                    throw new IllegalStateException("the shared counter file " + file + " is in use by this process for "
                            + "another store or geometry");
                }
                existing.users++;
                WORD.getAndAdd(existing.map, OFFSET_ATTACHMENTS, 1L);
                return new SharedCounters(geometry, existing, false);
            }
            Arena arena = Arena.ofShared();
            FileChannel channel = null;
            try {
                channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
                try (FileLock ignored = channel.lock(0, HEADER_BYTES, false)) {
                    boolean alone;
                    try (FileLock exclusive = channel.tryLock(LIVE_LOCK_POSITION, 1, false)) {
                        alone = exclusive != null;
                    }
                    channel.lock(LIVE_LOCK_POSITION, 1, true); // held until the channel closes
                    boolean rebuild = alone || channel.size() != regions.fileBytes;
                    if (!rebuild) {
                        MemorySegment header = channel.map(FileChannel.MapMode.READ_ONLY, 0, HEADER_BYTES, arena);
                        rebuild = !headerMatches(header, storeId, geometry);
                    }
                    if (rebuild) {
                        channel.truncate(0);
                        // A sparse file of zeros: counters 0, no dirty bits, no holders, state "building".
                        channel.write(java.nio.ByteBuffer.allocate(1), regions.fileBytes - 1);
                    }
                    MemorySegment map = channel.map(FileChannel.MapMode.READ_WRITE, 0, regions.fileBytes, arena);
                    Mapping mapping = new Mapping(key, channel, arena, map);
                    SharedCounters counters = new SharedCounters(geometry, mapping, rebuild);
                    if (rebuild) {
                        map.set(ValueLayout.JAVA_INT_UNALIGNED, OFFSET_STATE, 0);
                        map.set(ValueLayout.JAVA_INT_UNALIGNED, OFFSET_MAGIC, MAGIC);
                        map.set(ValueLayout.JAVA_INT_UNALIGNED, OFFSET_VERSION, VERSION);
                        map.set(ValueLayout.JAVA_LONG_UNALIGNED, OFFSET_UUID_MSB, storeId.getMostSignificantBits());
                        map.set(ValueLayout.JAVA_LONG_UNALIGNED, OFFSET_UUID_LSB, storeId.getLeastSignificantBits());
                        map.set(ValueLayout.JAVA_LONG_UNALIGNED, OFFSET_STORE_BLOCKS, geometry.storeBlocks());
                        map.set(ValueLayout.JAVA_INT_UNALIGNED, OFFSET_EXTENT_BLOCKS, geometry.extentBlocks());
                        map.set(ValueLayout.JAVA_LONG_UNALIGNED, OFFSET_GENERATION, generation);
                        map.set(ValueLayout.JAVA_LONG_UNALIGNED, OFFSET_HIGHEST_GENERATION, generation);
                        map.asSlice(regions.slots, regions.dirty - regions.slots).fill(NO_SLOT);
                        build.accept(counters);
                        VarHandle.fullFence();
                        map.set(ValueLayout.JAVA_INT_UNALIGNED, OFFSET_STATE, STATE_READY);
                    }
                    mapping.users = 1;
                    WORD.getAndAdd(map, OFFSET_ATTACHMENTS, 1L);
                    MAPPINGS.put(key, mapping);
                    return counters;
                }
            } catch (IOException e) {
                closeQuietly(channel);
                arena.close();
                throw new StorageException(StorageException.Code.IO, "cannot map the shared counter file " + file + ": "
                        + e.getMessage());
            } catch (RuntimeException | Error e) {
                closeQuietly(channel);
                arena.close();
                throw e;
            }
        }
    }

    private static void closeQuietly(FileChannel channel) {
        if (channel != null) {
            try {
                channel.close(); // releases this process's locks on the file
            } catch (IOException ignored) {
                // Nothing more to give back.
            }
        }
    }

    private static boolean headerMatches(MemorySegment map, UUID storeId, StoreGeometry geometry) {
        return map.get(ValueLayout.JAVA_INT_UNALIGNED, OFFSET_MAGIC) == MAGIC
                && map.get(ValueLayout.JAVA_INT_UNALIGNED, OFFSET_VERSION) == VERSION
                && map.get(ValueLayout.JAVA_LONG_UNALIGNED, OFFSET_UUID_MSB) == storeId.getMostSignificantBits()
                && map.get(ValueLayout.JAVA_LONG_UNALIGNED, OFFSET_UUID_LSB) == storeId.getLeastSignificantBits()
                && map.get(ValueLayout.JAVA_LONG_UNALIGNED, OFFSET_STORE_BLOCKS) == geometry.storeBlocks()
                && map.get(ValueLayout.JAVA_INT_UNALIGNED, OFFSET_EXTENT_BLOCKS) == geometry.extentBlocks()
                && map.get(ValueLayout.JAVA_INT_UNALIGNED, OFFSET_STATE) == STATE_READY;
    }

    /**
     * Takes the host-wide commit lock: one commit at a time among every process attached to this file
     * (an exclusive record lock, and a lock among this process's attachments). Close the result to release.
     *
     * <p>A process that is stopped (SIGSTOP, a debugger) while it holds the lock would stop every other
     * process's commits for as long as it stays stopped, and whatever it does when it resumes comes too late
     * to be fenced. So a waiter that has waited {@code stoppedHolderGrace} and finds the holder stopped kills
     * it (SIGKILL, which a stopped process cannot postpone): it dies as in a crash, its commit never
     * finishes, and the next commit takes over what it had in flight ({@link #recoverInterruptedCommit}).
     */
    public CommitLock lockCommits(java.time.Duration stoppedHolderGrace) {
        mapping.commits.lock();
        try {
            FileLock lock = awaitCommitLock(stoppedHolderGrace);
            map.set(ValueLayout.JAVA_LONG_UNALIGNED, OFFSET_COMMIT_HOLDER, ProcessHandle.current().pid());
            return () -> {
                try {
                    map.set(ValueLayout.JAVA_LONG_UNALIGNED, OFFSET_COMMIT_HOLDER, 0L);
                    lock.release();
                } catch (IOException e) {
                    throw new StorageException(StorageException.Code.IO, "cannot release the commit lock: " + e.getMessage());
                } finally {
                    mapping.commits.unlock();
                }
            };
        } catch (IOException | RuntimeException e) {
            mapping.commits.unlock();
            throw new StorageException(StorageException.Code.IO, "cannot take the commit lock of the shared counter file: "
                    + e.getMessage());
        }
    }

    private FileLock awaitCommitLock(java.time.Duration stoppedHolderGrace) throws IOException {
        long start = System.nanoTime();
        long pauseNanos = 20_000;
        while (true) {
            FileLock lock = mapping.channel.tryLock(COMMIT_LOCK_POSITION, 1, false);
            if (lock != null) {
                return lock;
            }
            if (System.nanoTime() - start > stoppedHolderGrace.toNanos()) {
                long holder = map.get(ValueLayout.JAVA_LONG_UNALIGNED, OFFSET_COMMIT_HOLDER);
                if (holder > 0 && holder != ProcessHandle.current().pid() && isStopped(holder)) {
                    LOG.warn("process {} holds the commit lock of {} and has been stopped for over {}: killing it so the"
                            + " other processes can commit (it can no longer be fenced otherwise)", holder, mapping.key,
                            stoppedHolderGrace);
                    ProcessHandle.of(holder).ifPresent(ProcessHandle::destroyForcibly);
                    start = System.nanoTime();
                }
            }
            java.util.concurrent.locks.LockSupport.parkNanos(pauseNanos);
            pauseNanos = Math.min(2_000_000, pauseNanos * 2);
        }
    }

    /** Whether process {@code pid} is stopped (state T or t in /proc/PID/stat). */
    public static boolean isStopped(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
            int afterName = stat.lastIndexOf(')');
            char state = afterName >= 0 && afterName + 2 < stat.length() ? stat.charAt(afterName + 2) : '?';
            return state == 'T' || state == 't';
        } catch (IOException | RuntimeException unreadable) {
            return false; // gone already, or no /proc: nothing to do here
        }
    }

    /** The host-wide commit lock, held until closed. */
    public interface CommitLock extends AutoCloseable {
        @Override
        void close();
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
        return decrement(block, false);
    }

    /** Removes a reference unless it is the last (a counter at 1 stays 1: the block is held); the references left. */
    @Override
    public int decrementHolding(long block) {
        return decrement(block, true);
    }

    private int decrement(long block, boolean keepLast) {
        checkBlock(block);
        long offset = wordOffset(block);
        int shift = shift(block);
        while (true) {
            long word = (long) WORD.getVolatile(map, offset);
            int count = (int) ((word >>> shift) & LANE_MASK);
            if (count == 0) {
                throw new IllegalStateException("decrement of free block " + block);
            }
            if (count == 1 && keepLast) {
                return 0;
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
        while (true) {
            int old = count(block);
            if (compareAndSet(block, old, count)) {
                return old;
            }
        }
    }

    /**
     * Sets a counter to {@code updated} by one CAS of its word if it is {@code expected}, keeping the free
     * count in step (the garbage collector lowers leaking counters while other processes change theirs).
     */
    @Override
    public boolean compareAndSet(long block, int expected, int updated) {
        if (updated < 0 || updated > geometry.counterEncoding().maxCount()) {
            throw new IllegalArgumentException("counter out of range: " + updated);
        }
        checkBlock(block);
        long offset = wordOffset(block);
        int shift = shift(block);
        while (true) {
            long word = (long) WORD.getVolatile(map, offset);
            if ((int) ((word >>> shift) & LANE_MASK) != expected) {
                return false;
            }
            long replaced = (word & ~(LANE_MASK << shift)) | ((long) updated << shift);
            if (WORD.compareAndSet(map, offset, word, replaced)) { // a lost CAS may be another lane: look again
                changed(block, expected, updated);
                return true;
            }
        }
    }

    /** After a CAS set a counter from {@code old} to {@code now}: the dirty bit, and the free count in step. */
    private void changed(long block, int old, int now) {
        if (old != now) {
            markDirty(block);
            if (old == 0) {
                addFree(geometry.extentOf(block), -1);
            } else if (now == 0) {
                addFree(geometry.extentOf(block), 1);
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

    // ---------------------------------------------------------------- generations, holders, slots

    /** The highest generation any commit of any attached process has used (or a counter slot carried at build). */
    public long highestGeneration() {
        return (long) WORD.getVolatile(map, OFFSET_HIGHEST_GENERATION);
    }

    /** Raises the highest generation to at least {@code generation} (a commit does this before it writes a slot). */
    public void raiseHighestGeneration(long generation) {
        while (true) {
            long current = highestGeneration();
            if (current >= generation || WORD.compareAndSet(map, OFFSET_HIGHEST_GENERATION, current, generation)) {
                return;
            }
        }
    }

    /** The node holding {@code extent} for allocation (0 = none). */
    public int extentHolder(int extent) {
        return (int) (holderWord(extent) >>> 8);
    }

    /** The type {@code extent} was claimed as ({@code FREE} if unclaimed). */
    public ExtentRecord.Type extentType(int extent) {
        return ExtentRecord.Type.values()[(int) (holderWord(extent) & 0xFF)];
    }

    private long holderWord(int extent) {
        return (long) WORD.getVolatile(map, holdersOffset + 8L * checkExtent(extent));
    }

    /**
     * Claims an unclaimed extent for {@code node} as {@code type}, by one CAS: of several processes claiming
     * one extent at once exactly one wins. False if the extent is held already.
     */
    public boolean claimExtent(int extent, int node, ExtentRecord.Type type) {
        if (node <= 0 || type == ExtentRecord.Type.FREE) {
            throw new IllegalArgumentException("an extent is claimed by a node id above 0 for a type; got node " + node
                    + " and " + type);
        }
        return WORD.compareAndSet(map, holdersOffset + 8L * checkExtent(extent), 0L, ((long) node << 8) | type.ordinal());
    }

    /**
     * Moves {@code extent}, held by node {@code from} as {@code type}, to node {@code to} by one CAS (a takeover
     * of a dead node's extent): of several processes taking it at once exactly one wins; false if the extent is
     * no longer held by {@code from} as {@code type}. Its counters stay as they are.
     */
    public boolean takeOverExtent(int extent, int from, int to, ExtentRecord.Type type) {
        if (from <= 0 || to <= 0 || type == ExtentRecord.Type.FREE) {
            throw new IllegalArgumentException("an extent moves between node ids above 0 and keeps its type; got " + from
                    + " -> " + to + " as " + type);
        }
        return WORD.compareAndSet(map, holdersOffset + 8L * checkExtent(extent), ((long) from << 8) | type.ordinal(),
                ((long) to << 8) | type.ordinal());
    }

    /** Records who holds {@code extent} outright (building the file from the catalogue). */
    public void setExtentHolder(int extent, int node, ExtentRecord.Type type) {
        long word = type == ExtentRecord.Type.FREE ? 0 : ((long) node << 8) | type.ordinal();
        WORD.setVolatile(map, holdersOffset + 8L * checkExtent(extent), word);
    }

    /** The durable slot (0 or 1) of a counter block, or -1 if neither slot is (a counter block never written). */
    public int durableSlot(int extent, int counterBlock) {
        byte slot = (byte) BYTE.getVolatile(map, slotsOffset + slotIndex(extent, counterBlock));
        return slot == NO_SLOT ? -1 : slot;
    }

    /** Records the durable slot of a counter block (under the commit lock, once the commit is durable). */
    public void setDurableSlot(int extent, int counterBlock, int slot) {
        if (slot < -1 || slot > 1) {
            throw new IllegalArgumentException("a counter slot is 0, 1 or -1 (none), got " + slot);
        }
        BYTE.setVolatile(map, slotsOffset + slotIndex(extent, counterBlock), slot < 0 ? NO_SLOT : (byte) slot);
    }

    private long slotIndex(int extent, int counterBlock) {
        checkExtent(extent);
        if (counterBlock < 0 || counterBlock >= counterBlocksPerExtent) {
            throw new IllegalArgumentException("counter block " + counterBlock + " outside 0.." + (counterBlocksPerExtent - 1));
        }
        return (long) extent * counterBlocksPerExtent + counterBlock;
    }

    private int checkExtent(int extent) {
        if (extent < 0 || extent >= geometry.extentCount()) {
            throw new IllegalArgumentException("extent " + extent + " is outside the store of " + geometry.extentCount()
                    + " extents");
        }
        return extent;
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
        markDirty(geometry.extentOf(block), geometry.counterBlockOf(block));
    }

    /**
     * Clears and returns the dirty counter blocks of {@code extent} (indexes 0 ..
     * counterBlocksPerExtent - 1), for a commit that then reads their counters with {@link #copyInto}.
     * The taken bits stay recorded as in flight until {@link #commitFinished}.
     */
    @Override
    public java.util.BitSet takeDirty(int extent) {
        java.util.BitSet taken = new java.util.BitSet(counterBlocksPerExtent);
        for (int i = 0; i < counterBlocksPerExtent; i++) {
            long index = (long) extent * counterBlocksPerExtent + i;
            long bit = 1L << (index & 63);
            long before = (long) WORD.getAndBitwiseAnd(map, dirtyOffset + 8L * (index >>> 6), ~bit);
            if ((before & bit) != 0) {
                WORD.getAndBitwiseOr(map, inFlightOffset + 8L * (index >>> 6), bit);
                taken.set(i);
            }
        }
        return taken;
    }

    /** Whether any counter block of the host is dirty. */
    @Override
    public boolean anyDirty() {
        for (long offset = 0; offset < dirtyBytes; offset += 8) {
            if ((long) WORD.getVolatile(map, dirtyOffset + offset) != 0) {
                return true;
            }
        }
        return false;
    }

    /**
     * Under the commit lock, before a commit takes dirty bits: bits still in flight were taken by a commit
     * whose process died before its superblock was durable; they are dirty again.
     */
    public void recoverInterruptedCommit() {
        for (long offset = 0; offset < dirtyBytes; offset += 8) {
            long left = (long) WORD.getAndSet(map, inFlightOffset + offset, 0L);
            if (left != 0) {
                WORD.getAndBitwiseOr(map, dirtyOffset + offset, left);
            }
        }
    }

    /** The commit holding the commit lock is durable: nothing it took is in flight any more. */
    public void commitFinished() {
        for (long offset = 0; offset < dirtyBytes; offset += 8) {
            WORD.setVolatile(map, inFlightOffset + offset, 0L);
        }
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

    /**
     * Ends this attachment; the last one of the process unmaps the file and drops the process's locks (the
     * file and its counters stay for the other processes). Idempotent.
     */
    @Override
    public void close() {
        synchronized (MAPPINGS) {
            if (closed) {
                return;
            }
            closed = true;
            if (--mapping.users > 0) {
                return;
            }
            MAPPINGS.remove(mapping.key);
            mapping.arena.close();
            closeQuietly(mapping.channel);
        }
    }
}
