package io.cairn.alloc;

import io.cairn.cluster.Lease;
import io.cairn.format.BlockHeader;
import io.cairn.format.CounterEncoding;
import io.cairn.format.ExtentRecord;
import io.cairn.format.Layout;
import io.cairn.format.Pointer;
import io.cairn.format.RefcountBlockCodec;
import io.cairn.format.StoreGeometry;
import io.cairn.io.BlockDevice;
import io.cairn.io.CorruptionException;
import io.cairn.io.StorageException;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;

/**
 * Reference counters and allocation for every block of the store (seed 000: shared on-disk
 * counters, here 1 or 2 bytes wide as the store's {@link CounterEncoding} says and 16 bits in memory;
 * seed 003 §3.4.1: typed extents with their own allocation maps).
 *
 * <p>Design notes.
 * <ol>
 *   <li>A block's counter is the number of references to it: pointers in radix nodes, roots named by
 *       VDI and snapshot records, table pages named by table trees. 0 = free. The format's own blocks
 *       (superblock and counter slots) hold 1 forever.</li>
 *   <li>The counters are the allocation map: a block is free iff its counter is 0 and its extent is
 *       held for the block's kind (metadata or data). Free extents have no counters on disk; claiming
 *       one makes its counters dirty, and the next commit writes both of its slots.</li>
 *   <li>Counters in memory are never below the durable references: callers apply increments at once and
 *       decrements only after the commit that removed the pointer is durable (DESIGN §4). A reference that no
 *       pointer holds (a write's pin of a leaf, a block allocated and never linked) may be taken back at once,
 *       so a counter in memory may be below the count a commit wrote, which was then above the references
 *       (a leak if the power goes before the next commit writes the lower count).</li>
 *   <li>Each counter block has two slots; a commit writes the slot that is not durable. The slot
 *       that is durable is remembered per counter block. A slot found at open with a generation above
 *       the superblock's was written by a commit that never finished: its counter block is marked
 *       dirty so the next commit overwrites it before any later generation could make it look valid.</li>
 *   <li>A block that loses its last reference may still be read or written by volume I/O that looked its
 *       address up earlier. Such a block is <em>held</em> ({@link #decrementHolding}): its counter stays at
 *       1 with no reference behind it, so it is not free (not counted free, not allocatable) until the store
 *       knows that no such I/O is left and gives it back ({@link #freeHeld}). Every total and check here sees
 *       a held block as an allocated block with count 1; the store gives every held block back before any
 *       commit can capture the counters (io.cairn.volume.Store design note 3), so no counter written to the
 *       device is ever in that state.</li>
 *   <li>Not thread-safe: the store calls it under its metadata lock, except {@link #decrementHoldingPointers}, which
 *       the store's reclaimer calls without it (io.cairn.volume.Store design note 3): every counter change is atomic
 *       in both counter stores (LocalCounters note 3, SharedCounters), and that one never makes a counter reach or
 *       leave 0, so it touches neither the free totals nor allocation.</li>
 *   <li>Shared mode (several node processes serving one store on one host, docs/CLUSTER.md): the counters,
 *       free counts, dirty bits and durable slots live in {@link SharedCounters}, changed by CAS, and the
 *       extents' holders too. A node allocates only in extents it holds (claimed by CAS on the holder word),
 *       so the data path needs no coordination; increments and decrements may hit any block. A commit writes
 *       every dirty counter block of the host; the bits it took stay recorded as in flight until its
 *       superblock is durable, so a commit that dies half-way leaves them for the next one
 *       ({@link #beginCommit}).</li>
 *   <li>Cluster mode (shared mode with {@link #useExtentLeases}): an extent is allocated in only if this node
 *       claimed it under a lease on {@code extent/N} and the shared holder word still names this node (a volatile
 *       read per allocation). New extents come only from the leased spares ({@link ExtentLeases}), whose lease must
 *       be valid when claimed, by CAS on the holder word (from 0, or from a dead node's id for a takeover); the
 *       record carries the lease's fencing token from the next commit on. With no spare ready, the map waits a
 *       bounded time ({@link ExtentLeases#awaitSpare}) for one leased now or given back by another node. A lease
 *       that lapsed (ZooKeeper away past the validity window) does not stop allocation while the extent is
 *       unchallenged, as a lapsed VDI lease does not stop writes while the durable record still names the node (io.cairn.volume.Store design
 *       note 10): nobody can take the extent without first moving its holder word by CAS, which stops this node
 *       at its next allocation, and blocks are handed out by CAS on the one counter map of the host, so two nodes
 *       never get the same block. A takeover (the word moved, or a newer token on disk at a rebase) stops
 *       allocation there for good. With no extent left to allocate in and no valid spare, allocation fails with
 *       NO_SPACE naming the reason, and never claims an unleased extent.</li>
 *   <li>A counter never goes above the limit of the store's counter encoding (255 for 1-byte counters, 65535 for
 *       2-byte ones; a test may only lower it): {@link #increment} refuses at the limit, in local and shared mode
 *       alike, and the caller copies instead of sharing. So every counter in memory fits the encoding it is
 *       written in, which {@code RefcountBlockCodec} checks again on every write.</li>
 * </ol>
 */
public final class SpaceMap {

    /** What a block is allocated for; decides which extents it may come from. */
    public enum Purpose {
        METADATA, DATA
    }

    /**
     * A counter block for a commit to write: a copy of its counters, taken under the store's lock, encoded by
     * {@link #image()} afterwards without it; {@code counters} is null for the zeroed other slot of a counter
     * block never written before ({@code slot} -1).
     */
    public record CounterWrite(int extent, int counterBlock, int slot, long blockNumber, char[] counters, long generation,
                               CounterEncoding encoding) {

        /** The sealed block image to write at {@link #blockNumber}. */
        public ByteBuffer image() {
            return counters == null ? BlockHeader.newImage()
                    : RefcountBlockCodec.encode(encoding, counters, 0, blockNumber, generation, slot);
        }
    }

    private final StoreGeometry geometry;
    private final int maxRefcount;
    /** This process's view of the catalogue (in shared mode other nodes' entries are as of the last rebase). */
    private final ExtentRecord[] extents;
    private final CounterStore counters;
    /** Non-null in shared mode. */
    private final SharedCounters shared;
    /** The node id this map allocates for (shared mode). */
    private final int node;
    /** Cluster mode (design note 8): where new extents come from, and the lease of each extent this node allocates in. */
    private ExtentLeases leases;
    private Lease[] extentLeases;
    /** Free blocks per extent type (indexed by ordinal), and blocks that free extents could provide (local mode). */
    private final long[] freeByType = new long[ExtentRecord.Type.values().length];
    private long unclaimedBlocks;
    private final BitSet dirtyExtentRecords = new BitSet();
    private final int[] cursorExtent = new int[Purpose.values().length];
    private final int[] cursorOffset = new int[Purpose.values().length];
    private long highestGenerationSeen;
    /** Metadata blocks only a commit may use, so a store filled by writes can always commit. */
    private final long metadataReserveBlocks;
    private boolean commitAllocations;

    /**
     * A map for a store served by this process alone. {@code maxRefcount} may only lower the limit of the
     * store's counter encoding (tests do, to reach saturation quickly); the map uses the lower of the two.
     */
    public SpaceMap(StoreGeometry geometry, int maxRefcount) {
        this(geometry, maxRefcount, null, 0);
    }

    /**
     * A map over counters shared by the node processes of one host; {@code node} (above 0) is the id this
     * process allocates for. The shared counters must have been built ({@link #build}) or found ready.
     */
    public SpaceMap(StoreGeometry geometry, int maxRefcount, SharedCounters shared, int node) {
        if (maxRefcount < 2 || maxRefcount > Layout.MAX_REFCOUNT) {
            throw new IllegalArgumentException("maximum reference count must be in [2, " + Layout.MAX_REFCOUNT + "], got "
                    + maxRefcount);
        }
        if (shared != null && node <= 0) {
            throw new IllegalArgumentException("a node id is above 0, got " + node);
        }
        this.geometry = geometry;
        // The one place the limit is decided, for every increment in local and shared mode alike: a counter
        // above what the store's encoding holds could not be written (RefcountBlockCodec refuses it).
        this.maxRefcount = Math.min(maxRefcount, geometry.counterEncoding().maxCount());
        this.shared = shared;
        this.node = node;
        this.counters = shared != null ? shared : new LocalCounters(geometry);
        int extentCount = geometry.extentCount();
        this.extents = new ExtentRecord[extentCount];
        java.util.Arrays.fill(extents, ExtentRecord.FREE);
        for (int extent = 0; extent < extentCount; extent++) {
            unclaimedBlocks += geometry.extentBlocks() - geometry.reservedBlocks(extent);
        }
        this.metadataReserveBlocks = Math.clamp(geometry.storeBlocks() / 256, 32, Math.min(4096, geometry.extentBlocks() / 2));
    }

    /** True in shared mode. */
    public boolean isShared() {
        return shared != null;
    }

    /**
     * Cluster mode (design note 8): from now on this node allocates only in extents it holds a valid lease on,
     * and claims new ones only from {@code pool}.
     */
    public void useExtentLeases(ExtentLeases pool) {
        if (shared == null) {
            throw new IllegalStateException("extent leases are for a store shared by cluster nodes");
        }
        this.leases = java.util.Objects.requireNonNull(pool, "pool");
        if (extentLeases == null) {
            this.extentLeases = new Lease[extents.length]; // a pool replacing another keeps the leases taken from it
        }
    }

    /** Cluster mode: the lease this node allocates in {@code extent} under (null if none, or not in cluster mode). */
    public Lease extentLease(int extent) {
        return extentLeases == null ? null : extentLeases[extent];
    }

    /**
     * While on, metadata allocations may use the reserve (the store turns it on while it prepares a
     * commit, whose table pages and nodes must always find room).
     */
    public void allowReserve(boolean on) {
        commitAllocations = on;
    }

    public long metadataReserveBlocks() {
        return metadataReserveBlocks;
    }

    public StoreGeometry geometry() {
        return geometry;
    }

    /** The count at which sharing copies instead: the encoding's maximum, or a test's lower limit. */
    public int maxRefcount() {
        return maxRefcount;
    }

    // ---------------------------------------------------------------- setup

    /** For a new store: makes extent 0 the system extent with fresh counters. */
    public void formatSystemExtent() {
        claim(0, ExtentRecord.Type.SYSTEM, 0);
    }

    /**
     * Loads the catalogue entry of {@code extent} and, if it is held, its counters from the slots
     * valid at {@code superblockGeneration}.
     */
    public void loadExtent(int extent, ExtentRecord record, BlockDevice device, long superblockGeneration) {
        extents[extent] = record;
        if (record.type() == ExtentRecord.Type.FREE) {
            return;
        }
        unclaimedBlocks -= geometry.extentBlocks() - geometry.reservedBlocks(extent);
        if (shared != null) {
            return; // the shared counters were built from the device (build) or are live already
        }
        ((LocalCounters) counters).open(extent);
        long free = readCounters(extent, device, superblockGeneration, counters);
        freeByType[record.type().ordinal()] += free;
    }

    /**
     * Builds freshly mapped shared counters from the device: the counters, free counts, durable slots and
     * holders of every held extent in {@code records}, and the highest generation any slot carries.
     */
    public static void build(SharedCounters target, ExtentRecord[] records, BlockDevice device, long superblockGeneration) {
        SpaceMap reader = new SpaceMap(target.geometry(), Layout.MAX_REFCOUNT);
        for (int extent = 0; extent < records.length; extent++) {
            ExtentRecord record = records[extent];
            if (record == null || record.type() == ExtentRecord.Type.FREE) {
                continue;
            }
            target.setExtentHolder(extent, Math.max(1, record.holder()), record.type());
            reader.readCounters(extent, device, superblockGeneration, target);
        }
        target.raiseHighestGeneration(reader.highestGenerationSeen);
    }

    /** Loads the counters of a held extent from its valid slots into {@code into}; returns its free blocks. */
    private long readCounters(int extent, BlockDevice device, long superblockGeneration, CounterStore into) {
        int counterBlocks = geometry.counterBlocksPerExtent();
        char[] extentCounters = new char[geometry.extentBlocks()];
        byte[] slots = new byte[counterBlocks];
        BitSet dirty = new BitSet(counterBlocks);
        ByteBuffer[] images = {BlockHeader.newImage(), BlockHeader.newImage()};
        for (int i = 0; i < counterBlocks; i++) {
            int best = -1;
            long bestGeneration = -1;
            long newestUnreadable = -1;
            long newestUnreadableBlock = -1;
            for (int slot = 0; slot < 2; slot++) {
                long block = geometry.counterSlotBlock(extent, i, slot);
                images[slot].clear();
                device.read(block * Layout.BLOCK_BYTES, images[slot]);
                if (!BlockHeader.isValid(images[slot], Layout.MAGIC_REFCOUNT, block)) {
                    long claimed = BlockHeader.generation(images[slot]);
                    if (claimed <= superblockGeneration && claimed > newestUnreadable) {
                        newestUnreadable = claimed;
                        newestUnreadableBlock = block;
                    }
                    continue;
                }
                long generation = BlockHeader.generation(images[slot]);
                highestGenerationSeen = Math.max(highestGenerationSeen, generation);
                if (generation > superblockGeneration) {
                    dirty.set(i); // left by an unfinished commit: overwrite it at the next commit
                } else if (generation > bestGeneration) {
                    best = slot;
                    bestGeneration = generation;
                }
            }
            if (best < 0) {
                throw new CorruptionException(geometry.counterSlotBlock(extent, i, 0),
                        "neither slot of counter block " + i + " of extent " + extent + " is valid");
            }
            if (newestUnreadable > bestGeneration) {
                // A commit only ever overwrites the slot that is not current, so a torn slot is older than
                // the current one (or newer than the superblock). One that claims to be the current
                // version but fails its check has decayed: falling back would silently lose counts.
                throw new CorruptionException(newestUnreadableBlock, "counter slot of generation " + newestUnreadable
                        + " (the current one) fails its check; the other slot is older");
            }
            RefcountBlockCodec.decodeInto(geometry.counterEncoding(), images[best], extentCounters,
                    geometry.firstCoveredOffset(i));
            slots[i] = (byte) best;
        }
        int free = into.load(extent, extentCounters);
        for (int i = 0; i < counterBlocks; i++) {
            into.setDurableSlot(extent, i, slots[i]);
            if (dirty.get(i)) {
                into.markDirty(extent, i);
            }
        }
        return free;
    }

    /** Highest generation stamped on any counter slot read at open. */
    public long highestGenerationSeen() {
        return highestGenerationSeen;
    }

    // ---------------------------------------------------------------- counters

    public int count(long block) {
        return counters.count(block);
    }

    /**
     * Adds a reference to an allocated block.
     *
     * @throws RefcountSaturatedException if the counter is at its maximum (the caller copies instead)
     */
    public void increment(long block) {
        counters.increment(block, maxRefcount);
    }

    /** Removes a reference; returns the new count (0 = the block is free again). */
    public int decrement(long block) {
        int count = counters.decrement(block);
        if (count == 0 && shared == null) {
            freeByType[extents[geometry.extentOf(block)].type().ordinal()]++;
        }
        return count;
    }

    /**
     * Removes a reference like {@link #decrement}, but a block losing its last one stays allocated with
     * its counter at 1 (design note 6). Returns the references left; 0 means the caller now holds the
     * block and must give it back with {@link #freeHeld}.
     */
    public int decrementHolding(long block) {
        return counters.decrementHolding(block);
    }

    /**
     * Adds a reference to the block of every pointer in {@code pointers[from..]} that is not a hole, as
     * {@link #increment} would one by one (a node copied for copy-on-write shares all its children, up to 512),
     * in one pass. Stops at the first block whose counter is saturated, without changing it, and returns its
     * index (the caller copies that block instead and goes on after it); returns {@code pointers.length} when
     * all are done.
     *
     * @throws IllegalStateException at a free block (the blocks before it keep their new references)
     */
    public int incrementPointers(long[] pointers, int from) {
        return counters.incrementPointers(pointers, from, maxRefcount);
    }

    /**
     * Removes a reference from the block of every pointer in {@code pointers} that is not a hole, as
     * {@link #decrementHolding} would one by one (a freed node releases all its children). Blocks that lose
     * their last reference stay held (counter 1) and are written to {@code unreferenced}, which must have room
     * for {@code pointers.length}; returns how many were written there.
     *
     * @throws IllegalStateException at a free block (the blocks before it keep their new counts)
     */
    public int decrementHoldingPointers(long[] pointers, long[] unreferenced) {
        return counters.decrementHoldingPointers(pointers, unreferenced);
    }

    /** Frees a block held by {@link #decrementHolding}: its counter goes from 1 to 0. */
    public void freeHeld(long block) {
        if (count(block) != 1) {
            throw new IllegalStateException("block " + block + " is not held: its counter is " + count(block));
        }
        decrement(block); // nothing references a held block, so nobody can change its counter meanwhile
    }

    /**
     * A copy of the counters of {@code extent}, indexed by offset in the extent, or null if the extent
     * is free (the checkpoint of the allocation maps that the garbage collector scans against).
     */
    public char[] copyCounters(int extent) {
        if (!isHeld(extent)) {
            return null;
        }
        char[] copy = new char[geometry.extentBlocks()];
        counters.copyInto(geometry.extentStart(extent), copy.length, copy, 0);
        return copy;
    }

    /** Overwrites a counter (the checker's repair and the garbage collector use this). */
    public void repairCount(long block, int count) {
        int max = geometry.counterEncoding().maxCount();
        if (count < 0 || count > max) {
            throw new IllegalArgumentException("a counter of this store holds at most " + max + ", not " + count
                    + " (block " + block + ")");
        }
        int extent = geometry.extentOf(block);
        if (!isHeld(extent)) {
            throw new IllegalStateException("block " + block + " is in free extent " + extent);
        }
        int old = counters.set(block, count);
        if (shared == null && old != count) {
            int type = extents[extent].type().ordinal();
            if (old == 0) {
                freeByType[type]--;
            } else if (count == 0) {
                freeByType[type]++;
            }
        }
    }

    /**
     * Lowers a counter by {@code excess} references that exist nowhere (a leak), in one atomic step from
     * whatever it is now: other node processes may add and remove references of the block meanwhile, and
     * their changes are kept (the garbage collector in shared mode). Returns the new count, or -1 without
     * changing anything if the counter is below {@code minimum + excess} (it would end below the references
     * the caller knows of).
     */
    public int lowerCount(long block, int excess, int minimum) {
        int extent = geometry.extentOf(block);
        if (!isHeld(extent)) {
            throw new IllegalStateException("block " + block + " is in free extent " + extent);
        }
        while (true) {
            int current = counters.count(block);
            int lowered = current - excess;
            if (lowered < minimum) {
                return -1;
            }
            if (counters.compareAndSet(block, current, lowered)) {
                if (shared == null && lowered == 0) {
                    freeByType[extents[extent].type().ordinal()]++;
                }
                return lowered;
            }
        }
    }

    /** Whether {@code extent} has counters: claimed by some node (shared mode) or held (local mode). */
    private boolean isHeld(int extent) {
        return shared != null ? shared.extentHolder(extent) != 0 : extents[extent].type() != ExtentRecord.Type.FREE;
    }

    // ---------------------------------------------------------------- allocation

    /**
     * Allocates a free block for {@code purpose}, with a count of 1. Next-fit from the last
     * allocation, so sequential writes land on sequential blocks. In shared mode only extents this node
     * holds are used, and a new one is claimed by CAS when they are full.
     *
     * @throws StorageException NO_SPACE if no extent of that purpose has a free block and none is left to claim
     */
    public long allocate(Purpose purpose) {
        if (purpose == Purpose.METADATA && !commitAllocations && metadataReserveReached()) {
            throw new StorageException(StorageException.Code.NO_SPACE, "the store is full: only the "
                    + metadataReserveBlocks + " metadata blocks kept for commits are left");
        }
        int p = purpose.ordinal();
        int extentCount = extents.length;
        for (int step = 0; step <= extentCount; step++) {
            int extent = (cursorExtent[p] + step) % extentCount;
            if (!serves(extent, purpose) || counters.freeBlocks(extent) <= 0) {
                continue;
            }
            long block = allocateIn(extent, step == 0 ? cursorOffset[p] : 0, p);
            if (block >= 0) {
                return block;
            }
        }
        while (true) {
            int claimed = claimFreeExtent(purpose);
            if (claimed < 0 && leases != null && !lastExtentsKeptForMetadata(purpose)) {
                throw new StorageException(StorageException.Code.NO_SPACE, "no free " + purpose.name().toLowerCase()
                        + " block left in the extents this node holds leases on, and no spare extent: "
                        + leases.shortage(purpose));
            }
            if (claimed < 0) {
                throw new StorageException(StorageException.Code.NO_SPACE, "no free " + purpose.name().toLowerCase()
                        + " block left in the store (" + geometry.storeBlocks() + " blocks)");
            }
            long block = allocateIn(claimed, 0, p);
            if (block >= 0) {
                return block;
            }
        }
    }

    private long allocateIn(int extent, int fromOffset, int purposeIndex) {
        long start = geometry.extentStart(extent);
        long end = start + geometry.extentBlocks();
        long from = start + Math.min(Math.max(fromOffset, geometry.reservedBlocks(extent)), geometry.extentBlocks() - 1);
        long block = counters.allocate(start, end, from);
        if (block < 0) {
            return -1;
        }
        if (shared == null) {
            freeByType[extents[extent].type().ordinal()]--;
        }
        cursorExtent[purposeIndex] = extent;
        cursorOffset[purposeIndex] = geometry.offsetInExtent(block) + 1;
        return block;
    }

    private boolean metadataReserveReached() {
        if (shared == null) {
            return allocatableBlocks(Purpose.METADATA) <= metadataReserveBlocks;
        }
        // Shared: the cheap sum over this node's own metadata extents first; the whole store only when low.
        long own = 0;
        for (int extent = 0; extent < extents.length && own <= metadataReserveBlocks; extent++) {
            if (serves(extent, Purpose.METADATA)) {
                own += counters.freeBlocks(extent);
            }
        }
        return own <= metadataReserveBlocks && allocatableBlocks(Purpose.METADATA) <= metadataReserveBlocks;
    }

    private boolean serves(int extent, Purpose purpose) {
        ExtentRecord.Type type;
        if (shared != null) {
            if (shared.extentHolder(extent) != node) {
                return false;
            }
            if (extentLeases != null && extentLeases[extent] == null) {
                return false; // design note 8: only in extents this node claimed under a lease
            }
            type = shared.extentType(extent);
        } else {
            type = extents[extent].type();
        }
        return switch (purpose) {
            case METADATA -> type.holdsMetadata();
            case DATA -> type == ExtentRecord.Type.DATA;
        };
    }

    /** True if a data allocation must not claim an extent: the last free extents stay available to metadata. */
    private boolean lastExtentsKeptForMetadata(Purpose purpose) {
        if (purpose != Purpose.DATA) {
            return false;
        }
        long metadata = allocatableBlocks(Purpose.METADATA);
        long unclaimed = unclaimedBlocks();
        return metadata - geometry.extentBlocks() < metadataReserveBlocks && metadata - unclaimed < metadataReserveBlocks;
    }

    private int claimFreeExtent(Purpose purpose) {
        if (lastExtentsKeptForMetadata(purpose)) {
            return -1;
        }
        ExtentRecord.Type type = purpose == Purpose.DATA ? ExtentRecord.Type.DATA : ExtentRecord.Type.METADATA;
        if (leases != null) {
            return claimLeased(purpose);
        }
        for (int extent = 0; extent < extents.length; extent++) {
            boolean free = shared != null ? shared.extentHolder(extent) == 0 && shared.claimExtent(extent, node, type)
                    : extents[extent].type() == ExtentRecord.Type.FREE;
            if (free) {
                claim(extent, type, 0);
                return extent;
            }
        }
        return -1;
    }

    /**
     * Cluster mode: claims the next leased spare for {@code purpose} (design note 8), by CAS on its holder word
     * from the holder it had when it was leased; a spare whose lease lapsed or whose word changed meanwhile is
     * given back and the next one tried. Returns the extent, or -1 when no spare is left.
     */
    private int claimLeased(Purpose purpose) {
        boolean waited = false;
        while (true) {
            ExtentLeases.Spare spare = leases.take(purpose);
            if (spare == null && !waited) {
                waited = true; // once per claim: the wait is bounded, and NO_SPACE follows a second empty pool
                if (leases.awaitSpare(purpose)) {
                    continue;
                }
            }
            if (spare == null) {
                return -1;
            }
            int extent = spare.extent();
            Lease lease = spare.lease();
            int former = spare.formerHolder();
            boolean won = lease.isValid() && (former == 0 ? shared.claimExtent(extent, node, spare.type())
                    : former == node ? shared.extentHolder(extent) == node && shared.extentType(extent) == spare.type()
                    : shared.takeOverExtent(extent, former, node, spare.type()));
            if (!won) {
                lease.release();
                continue;
            }
            extentLeases[extent] = lease;
            if (former == 0) {
                claim(extent, spare.type(), lease.fencingToken());
            } else {
                // Its counters stay: the blocks allocated in it are still referenced (or leaked, for the collector).
                extents[extent] = new ExtentRecord(spare.type(), node, lease.fencingToken());
                dirtyExtentRecords.set(extent);
            }
            return extent;
        }
    }

    private void claim(int extent, ExtentRecord.Type type, long fencingToken) {
        if (shared == null) {
            extents[extent] = new ExtentRecord(type, 0, 0);
            ((LocalCounters) counters).open(extent);
            unclaimedBlocks -= geometry.extentBlocks() - geometry.reservedBlocks(extent);
            freeByType[type.ordinal()] += geometry.extentBlocks() - geometry.reservedBlocks(extent);
        } else {
            extents[extent] = new ExtentRecord(type, node, fencingToken);
        }
        dirtyExtentRecords.set(extent);
        long start = geometry.extentStart(extent);
        for (int offset = 0; offset < geometry.extentBlocks(); offset++) {
            counters.set(start + offset, offset < geometry.reservedBlocks(extent) ? 1 : 0);
        }
        counters.setFreeBlocks(extent, geometry.extentBlocks() - geometry.reservedBlocks(extent));
        for (int i = 0; i < geometry.counterBlocksPerExtent(); i++) {
            counters.setDurableSlot(extent, i, -1);
            counters.markDirty(extent, i);
        }
    }

    /** Blocks in extents nobody holds. */
    private long unclaimedBlocks() {
        if (shared == null) {
            return unclaimedBlocks;
        }
        long unclaimed = 0;
        for (int extent = 0; extent < extents.length; extent++) {
            if (shared.extentHolder(extent) == 0) {
                unclaimed += geometry.extentBlocks() - geometry.reservedBlocks(extent);
            }
        }
        return unclaimed;
    }

    // ---------------------------------------------------------------- catalogue

    public int extentCount() {
        return extents.length;
    }

    public ExtentRecord extent(int extent) {
        return extents[extent];
    }

    public boolean hasDirtyExtentRecords() {
        return !dirtyExtentRecords.isEmpty();
    }

    public boolean hasDirtyCounters() {
        return counters.anyDirty();
    }

    /** Extent catalogue entries changed since the last call; clears the set. */
    public BitSet takeDirtyExtentRecords() {
        BitSet dirty = (BitSet) dirtyExtentRecords.clone();
        dirtyExtentRecords.clear();
        return dirty;
    }

    public void setExtentHolder(int extent, int holder, long fencingToken) {
        ExtentRecord old = extents[extent];
        extents[extent] = new ExtentRecord(old.type(), holder, fencingToken);
        dirtyExtentRecords.set(extent);
    }

    /**
     * Shared mode: takes the catalogue entry of an extent this node does not hold from the durable
     * catalogue (a rebase). Entries of extents this node holds stay as this node keeps them, unless another
     * node wrote the durable one under a newer lease (cluster mode; the rule of VDI records): then this node
     * stops allocating there and never writes its own version again.
     */
    public void rebaseExtent(int extent, ExtentRecord durableRecord) {
        if (shared == null) {
            return;
        }
        if (shared.extentHolder(extent) == node) {
            boolean newerElsewhere = extentLeases != null && durableRecord.holder() != node
                    && durableRecord.fencingToken() > extents[extent].fencingToken();
            if (!newerElsewhere) {
                return;
            }
            extentLeases[extent] = null;
            dirtyExtentRecords.clear(extent);
        }
        extents[extent] = durableRecord;
    }

    /** Whether this node holds {@code extent} for allocation (shared mode; always false in local mode). */
    public boolean holds(int extent) {
        return shared != null && shared.extentHolder(extent) == node;
    }

    /** The node id this map allocates for (0 in local mode). */
    public int node() {
        return node;
    }

    // ---------------------------------------------------------------- commit

    /**
     * Shared mode, under the host-wide commit lock: counter blocks that a commit took but never made
     * durable (its process died) are dirty again, so this commit writes them.
     */
    public void beginCommit() {
        if (shared != null) {
            shared.recoverInterruptedCommit();
        }
    }

    /**
     * The highest generation a commit may have stamped on any counter slot so far (shared mode: by any
     * process on the host; local mode: found at open).
     */
    public long highestGenerationUsed() {
        return shared != null ? Math.max(shared.highestGeneration(), highestGenerationSeen) : highestGenerationSeen;
    }

    /**
     * Captures every dirty counter block (a copy of its counters, encoded later) stamped {@code generation},
     * for the slot that is not durable. A counter block never written before (fresh extent) also gets its
     * other slot zeroed so no stale image can ever be taken for it. Shared mode: every held extent of the host.
     */
    public List<CounterWrite> captureDirty(long generation) {
        return copyCounters(takeDirty(generation));
    }

    /** A counter block {@link #takeDirty} took for a commit, whose counters {@link #copyCounters} copies. */
    public record DirtyCounterBlock(int extent, int counterBlock, int slot, long blockNumber, long generation) {
    }

    /**
     * The first half of {@link #captureDirty}: takes the dirty bits (under the store's metadata lock, with the
     * transaction the commit captures) and chooses each block's slot, without copying any counter.
     */
    public List<DirtyCounterBlock> takeDirty(long generation) {
        if (shared != null) {
            shared.raiseHighestGeneration(generation);
        }
        List<DirtyCounterBlock> taken = new ArrayList<>();
        for (int extent = 0; extent < extents.length; extent++) {
            if (!isHeld(extent)) {
                continue;
            }
            BitSet dirty = counters.takeDirty(extent);
            for (int i = dirty.nextSetBit(0); i >= 0; i = dirty.nextSetBit(i + 1)) {
                int durable = counters.durableSlot(extent, i);
                int slot = durable == 0 ? 1 : 0;
                taken.add(new DirtyCounterBlock(extent, i, slot, geometry.counterSlotBlock(extent, i, slot), generation));
                if (durable < 0) {
                    taken.add(new DirtyCounterBlock(extent, i, -1, geometry.counterSlotBlock(extent, i, 1 - slot), generation));
                }
            }
        }
        return taken;
    }

    /**
     * The second half of {@link #captureDirty}: copies the counters of the blocks {@link #takeDirty} took (a slot
     * of -1 is the zeroed other slot of a block never written before). Needs no lock in local mode (counters are
     * read as they are; io.cairn.volume.Store design note 12 says why a copy taken after the lock is sound).
     */
    public List<CounterWrite> copyCounters(List<DirtyCounterBlock> taken) {
        List<CounterWrite> writes = new ArrayList<>(taken.size());
        CounterEncoding encoding = geometry.counterEncoding();
        for (DirtyCounterBlock block : taken) {
            char[] copy = null;
            if (block.slot() >= 0) {
                int first = geometry.firstCoveredOffset(block.counterBlock());
                int covered = Math.min(encoding.countersPerBlock(), geometry.extentBlocks() - first);
                copy = new char[covered];
                counters.copyInto(geometry.extentStart(block.extent()) + first, covered, copy, 0);
            }
            writes.add(new CounterWrite(block.extent(), block.counterBlock(), block.slot(), block.blockNumber(), copy,
                    block.generation(), encoding));
        }
        return writes;
    }

    /** The superblock naming the generation of {@code writes} is durable: their slots are now the current ones. */
    public void markDurable(List<CounterWrite> writes) {
        for (CounterWrite write : writes) {
            if (write.slot() >= 0) {
                counters.setDurableSlot(write.extent(), write.counterBlock(), write.slot());
            }
        }
        if (shared != null) {
            shared.commitFinished();
        }
    }

    // ---------------------------------------------------------------- statistics

    public long freeBlocks(ExtentRecord.Type type) {
        long free = 0;
        for (int extent = 0; extent < extents.length; extent++) {
            if (typeOf(extent) == type) {
                free += counters.freeBlocks(extent);
            }
        }
        return free;
    }

    public long blocksInExtents(ExtentRecord.Type type) {
        long blocks = 0;
        for (int extent = 0; extent < extents.length; extent++) {
            if (typeOf(extent) == type) {
                blocks += geometry.extentBlocks();
            }
        }
        return blocks;
    }

    /** The type an extent is held as: by any node of the host in shared mode. */
    private ExtentRecord.Type typeOf(int extent) {
        return shared != null ? shared.extentType(extent) : extents[extent].type();
    }

    /** Blocks that could still be allocated for {@code purpose}: free blocks of its extents plus every free extent. */
    public long allocatableBlocks(Purpose purpose) {
        if (shared != null) {
            long free = 0;
            for (int extent = 0; extent < extents.length; extent++) {
                if (serves(extent, purpose)) {
                    free += counters.freeBlocks(extent);
                }
            }
            return free + unclaimedBlocks();
        }
        return unclaimedBlocks + switch (purpose) {
            case METADATA -> freeByType[ExtentRecord.Type.METADATA.ordinal()] + freeByType[ExtentRecord.Type.SYSTEM.ordinal()];
            case DATA -> freeByType[ExtentRecord.Type.DATA.ordinal()];
        };
    }

    /** Visits every block with a non-zero counter that is not reserved by the format. */
    public void forEachAllocated(BlockVisitor visitor) {
        for (int extent = 0; extent < extents.length; extent++) {
            char[] extentCounters = copyCounters(extent);
            if (extentCounters == null) {
                continue;
            }
            int reserved = geometry.reservedBlocks(extent);
            for (int offset = reserved; offset < extentCounters.length; offset++) {
                if (extentCounters[offset] != 0) {
                    visitor.visit(geometry.extentStart(extent) + offset, extentCounters[offset], typeOf(extent));
                }
            }
        }
    }

    @FunctionalInterface
    public interface BlockVisitor {
        void visit(long block, int count, ExtentRecord.Type extentType);
    }

    /**
     * Recomputes the running totals from the counters and compares (STYLE 5: the checker calls this,
     * so every storage test that ends with a check verifies them).
     *
     * @throws IllegalStateException naming the first total that disagrees
     */
    public void checkInvariants() {
        long[] byType = new long[freeByType.length];
        long unclaimed = 0;
        for (int extent = 0; extent < extents.length; extent++) {
            ExtentRecord.Type type = typeOf(extent);
            if (type == ExtentRecord.Type.FREE) {
                unclaimed += geometry.extentBlocks() - geometry.reservedBlocks(extent);
                continue;
            }
            char[] extentCounters = copyCounters(extent);
            int free = 0;
            for (char count : extentCounters) {
                if (count == 0) {
                    free++;
                }
            }
            if (free != counters.freeBlocks(extent)) {
                throw new IllegalStateException("extent " + extent + " has " + free + " free blocks, the total says "
                        + counters.freeBlocks(extent));
            }
            byType[type.ordinal()] += free;
        }
        if (shared != null) {
            return; // shared mode keeps no running totals by type: they are summed when asked for
        }
        if (unclaimed != unclaimedBlocks || !java.util.Arrays.equals(byType, freeByType)) {
            throw new IllegalStateException("free totals disagree: unclaimed " + unclaimed + " vs " + unclaimedBlocks
                    + ", by type " + java.util.Arrays.toString(byType) + " vs " + java.util.Arrays.toString(freeByType));
        }
    }

    public boolean isReserved(long block) {
        return geometry.offsetInExtent(block) < geometry.reservedBlocks(geometry.extentOf(block));
    }
}
