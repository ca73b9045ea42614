package io.cairn.volume;

import io.cairn.alloc.SharedCounters;
import io.cairn.alloc.SpaceMap;
import io.cairn.format.BlockHeader;
import io.cairn.format.CounterEncoding;
import io.cairn.format.ExtentRecord;
import io.cairn.format.Layout;
import io.cairn.format.Pointer;
import io.cairn.format.SnapshotRecord;
import io.cairn.format.StoreGeometry;
import io.cairn.format.Superblock;
import io.cairn.format.TablePageCodec;
import io.cairn.format.VdiRecord;
import io.cairn.io.BlockDevice;
import io.cairn.io.CorruptionException;
import io.cairn.io.FileBlockDevice;
import io.cairn.io.StorageException;
import io.cairn.tree.LeafKind;
import io.cairn.tree.NodeCache;
import io.cairn.tree.Release;
import io.cairn.tree.RootRef;
import io.cairn.tree.TreeSpace;

import java.io.Closeable;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.BooleanSupplier;
import java.util.function.Function;

/**
 * A blockstore serving many virtual disks (VDIs) with snapshots and clones (seed 003 §3).
 *
 * <p>Design notes.
 * <ol>
 *   <li>A commit (NBD FLUSH, FUA, admin operations, close) makes the store's whole state durable in one
 *       step: it writes the changed table pages, the dirty radix nodes and the changed counter slots to
 *       blocks no durable pointer names, flushes, then writes the superblock slot of its generation and
 *       flushes again. A crash at any instant leaves the previous or the new commit, never a mix.</li>
 *   <li>Data is written before any pointer to it is installed (allocate, write, then link), and in
 *       place only where the whole path to it is exclusive to the VDI ({@link TreeSpace#forEachMappedWithOwnership}),
 *       so snapshots never change.</li>
 *   <li>Reference removals are applied after the commit that made them durable, in short batches under
 *       metaLock ({@link #reclaim}; the targets of the leaves a batch frees after it, without metaLock: note 11);
 *       volume I/O is not stopped for them. A block whose count reaches 0 is
 *       <em>held</em> (its counter stays 1, see SpaceMap design note 6) and handed out again only after
 *       every volume I/O that was in flight when it lost its last reference has finished: volume reads and
 *       in-place writes touch data blocks on the device outside metaLock, with addresses they looked up
 *       earlier. Every volume I/O registers in the current I/O epoch ({@link IoEpochs}) before it looks up
 *       or plans an address and leaves after its last device call; the reclaimer advances the epoch and
 *       waits until the old one is empty, then frees the held blocks (and only then discards data blocks,
 *       which a read in flight must still see). An I/O that registers later looks its addresses up after
 *       the blocks lost their last reference, so it cannot name them. Why the invariants of DESIGN §4 and
 *       FORMAT §11 hold: no durable pointer names a free block (a block is freed later than before, never
 *       earlier); a counter in memory is never below the durable references (held blocks count 1, above
 *       their 0 references); a freed block is not reused while any I/O can touch it (the epoch wait); the
 *       checker, the garbage collector and space inspections take reclaimLock and finish every reclamation
 *       first, so they never see a held block or a removal not yet applied; GC pins are references like any
 *       other and are released by the same path; the on-disk rules are untouched.</li>
 *   <li>Threads: any number of threads read and write volumes. {@code metaLock} guards every
 *       in-memory structure (counters are changed atomically, and two counter passes run without it: note 11)
 *       and is held only for in-memory work (and node-cache misses);
 *       every volume I/O registers in {@code ioEpochs}, whose gate inspections close, so they see no I/O in
 *       flight (snapshots do not close it, see note 9); {@code commitLock} orders commits; {@code reclaimLock} orders
 *       reclamations, which wait for the I/O epoch under it, never under metaLock or the closed gate, which the
 *       I/O they wait for may need (an inspection that closed the gate has no I/O in flight to wait for).
 *       Lock order: commitLock, reclaimLock, the I/O gate, stripe locks, metaLock.</li>
 *   <li>Commits are grouped. Every commit gets a sequence number when it captures the transaction (under
 *       metaLock); a caller of {@link #commit()} first reads how many commits have captured (its <em>ticket</em>)
 *       and is served by any commit numbered above it, since that one captured after the caller's changes and
 *       flushes after its completed writes. So callers that queue behind a running commit share the next one
 *       instead of running one each; {@link #commitSoon()} asks for such a commit without waiting for it.</li>
 *   <li>A corruption found while serving stops all writing: the store turns read-only and says why.</li>
 *   <li>A scan that runs without the store's locks (the garbage collector) first <em>pins</em> every live
 *       root: one extra reference each ({@link Internals#pinLiveRoots()}), taken right after a commit.
 *       The pinned trees are then on the device, can neither change (a node is changed in place only
 *       if its count is 1 and it was created in the open transaction; data only if the whole path has
 *       count 1) nor be freed (the pin keeps the root's count above 0, and each pinned node's parent
 *       keeps its child's). Pins count as references for the checker; if the store closes or crashes
 *       before they are released they are leaks, which the next collection gives back.</li>
 *   <li>Reclamation runs outside commitLock, under its own reclaimLock, so the next commit never waits for
 *       the previous one's reclamation: a commit only queues its durable removals ({@code reclaimQueue}).
 *       {@link #commit()} then reclaims before it returns (so space freed by a deletion is free when the
 *       caller's commit returns, as before); a background commit hands the work to the reclaim thread. A
 *       commit may therefore capture counters while removals are still queued or blocks held: those counters
 *       are above the durable references, so a crash then leaves leaks (DESIGN §4 allows them; {@code cairn
 *       check --repair} or {@code cairn gc} gives them back), never a counter below its references. A write
 *       that finds no free block while reclamation is under way does not fail: it leaves its I/O epoch, waits
 *       for the reclamation (which may be waiting for that very I/O) and tries again ({@link #awaitReclaim}).</li>
 *   <li>A snapshot must not share a VDI's root while a write that planned to overwrite a block in place (its
 *       whole path exclusive, note 2) may still write it: the data would change under the snapshot. Writes
 *       that copy do not matter: they link their fresh blocks under metaLock, so a snapshot taken before the
 *       link simply does not hold them (the write had not completed), and their old blocks stay as they are.
 *       So each VDI counts its in-place writes in flight ({@link #planWrite} to {@link #inPlaceWriteDone},
 *       linking included, so such a write is held whole or not at all); a snapshot is not made until the count
 *       is 0, and while it waits {@link #planWrite} plans every block of that VDI as a copy, so no new in-place
 *       write can start and the wait ends. Snapshots therefore no longer wait for reads or copying writes in
 *       flight, nor stop I/O. The price: writes during a wait take fresh blocks (the overwritten ones are freed
 *       after the next commit), as long as the in-place writes in flight take to finish.
 *       A snapshot or clone does not queue for metaLock either: it is <em>combined</em> ({@link CombiningLock},
 *       {@link SnapshotChange}): whichever thread lets go of metaLock next makes it, under the lock, so it is
 *       made within the current holder's hold instead of after every writer parked ahead of it was woken in
 *       turn. The last in-place write the snapshot waits for takes metaLock when it finishes, and its release
 *       makes the snapshot. (In shared mode, changes go through the host's commit lock and wait as before.)</li>
 *   <li>Shared mode (docs/CLUSTER.md part 2): several node processes on one host serve the store file
 *       together, each through its own Store. Counters live in {@link SharedCounters}; a node writes only the
 *       VDIs it <em>holds</em> ({@link #hold}: a lease's fencing token written into the VDI record) and allocates
 *       only in extents it holds. There is one sequence of commits for the host: a commit takes the host-wide
 *       commit lock, <em>rebases</em> (reads the superblock; if another node committed since, takes every record
 *       it does not own from the device), moves its open transaction to a generation above every one used, and
 *       writes as usual. A held VDI whose durable record carries a larger token than this node's was taken
 *       over: the node drops it and writes nothing more for it. Admin changes run under the same lock and
 *       commit at once, so record ids stay unique. Cached table-tree nodes are forgotten at every rebase
 *       (another node may have freed and reused their blocks); trees of VDIs a node does not hold are never
 *       read through its cache. A node that takes a disk over commits the record with its token before it
 *       writes anything, so the durable record is a fence of its own: once a lease has lapsed (ZooKeeper
 *       away past the validity window) the node goes on writing the disk while the newest durable record
 *       still names it with that lease's token ({@link #mayWrite}).</li>
 *   <li>The two counter passes of copy-on-write run without metaLock (measured: with a snapshot every 10 ms under
 *       4 KiB random writes they were most of the time metaLock was held, and a holder preempted on a loaded
 *       machine is what a combined snapshot waits for). Counter changes are atomic (LocalCounters note 3), so a pass
 *       needs no lock of its own. Reclamation: a batch under metaLock applies {@link #RELEASE_BATCH} releases and
 *       collects the leaves they free; the reclaimer then releases those leaves' targets (and reads a leaf the cache
 *       no longer holds) without metaLock, under reclaimLock ({@link TreeSpace#releaseTargets}): the decrements are
 *       of removals already durable, so a commit that captures some of them and not others writes counters above
 *       the references (a leak after a crash, as in note 8), never below; a target that a substitute names (a
 *       saturated block shared through its copy, or that copy) is released under metaLock after the pass instead
 *       (TreeSpace substitutes rule 7), so a share never hands out a copy the pass has just let go. Leaf copies: a
 *       write whose blocks are all fresh and lie in one shared leaf pins that leaf in {@link #planWrite}, references
 *       the leaf's targets for its copy while its data goes to the device ({@link #prepareLeafCopy}), and
 *       {@link #link} installs the copy with no counter pass; the references exist before any pointer needs them,
 *       an unused copy's are taken back, and so is the pin, at once unless it is the leaf's last reference
 *       (TreeSpace design note 6 has the argument). Inspections close the I/O
 *       gate, so they never see a write's pin or a copy's references without the copy. Shared mode copies leaves
 *       under metaLock as before.</li>
 *   <li>A commit takes the dirty bits of the counters under metaLock, with the transaction it captures, but copies
 *       the counters after letting go of it (alone; in shared mode under it as before): hundreds of 4 KiB copies
 *       were most of the capture's hold when writes copy leaves. The copy may include changes made after the
 *       capture, and none of them takes a counter below the references of the captured trees: a removal made after
 *       the capture is applied only after a later commit is durable, and this commit is not durable yet; the
 *       removals applied meanwhile (reclamation) were made durable by an earlier commit, so the captured trees no
 *       longer hold those references; a block freed meanwhile was held, so nothing captured names it; what
 *       increments add (copies, allocations, pins) is at most a leak if the power goes before the next commit, as
 *       with note 8. A change after the capture sets its counter block's dirty bit again (LocalCounters note 3), so
 *       the next commit writes it whether or not this copy holds it.</li>
 * </ol>
 *
 * <p>Snapshot sketches (seed 002): see {@link StoreSketches}; the notes there are the "sketch notes".
 */
public final class Store implements Closeable {

    /**
     * Releases applied per hold of the metadata lock when reclaiming (design note 3): a release is one counter
     * decrement and, for a node it frees, a removal from the node cache, so a hold is tens of microseconds. The
     * 512 decrements of each freed leaf's targets, most of the work, are made after the hold, without the lock.
     */
    private static final int RELEASE_BATCH = 128;
    /**
     * Queued removals above which a background commit applies them itself instead of leaving them to the
     * reclaim thread (design note 8): the queue stays bounded when reclamation falls behind.
     */
    private static final int RECLAIM_BACKLOG = 1 << 18;
    /** Held blocks at which a long reclamation waits for the I/O in flight and frees them before going on. */
    private static final int HELD_LIMIT = 1 << 16;
    private static final int STRIPES = 256;
    /**
     * Commits at close. A commit that writes only counters releases nothing, so two or three rounds
     * settle; the bound only keeps close from looping if that ever stops being true.
     */
    private static final int MAX_CLOSE_COMMITS = 8;
    private static final System.Logger LOG = System.getLogger(Store.class.getName());

    final BlockDevice device;
    private final Closeable ownerLock;
    /** Non-null in shared mode (design note 10). */
    private final SharedCounters shared;
    /** Shared mode: the host's collection barrier, in which this store takes part (design note 10). */
    private CollectionBarrier barrier;
    /** Shared mode: how long a stopped process may hold the host commit lock before a waiter kills it. */
    private java.time.Duration stoppedCommitHolderGrace = java.time.Duration.ofSeconds(10);
    /** VDIs this node holds in shared mode, by id (changed under metaLock; read without it before writes). */
    private final Map<Long, Holding> held = new java.util.concurrent.ConcurrentHashMap<>();
    final StoreOptions options;
    final StoreGeometry geometry;
    final SpaceMap space;
    private final NodeCache cache;
    final TreeSpace trees;
    Superblock durable;

    private final SystemTable extentTable;
    private final SystemTable vdiTable;
    final SystemTable snapshotTable;
    final TreeMap<Long, VdiState> vdis = new TreeMap<>();
    final TreeMap<Long, SnapshotRecord> snapshots = new TreeMap<>();
    private final Map<String, VdiState> liveByName = new HashMap<>();
    private final Map<Long, Integer> openSnapshotHandles = new HashMap<>();
    /**
     * VDIs whose tree was changed since the last commit ({@link #link} and {@link #punch} are the only paths
     * that change a VDI's tree): only their roots can differ from their records, so a commit looks at these
     * instead of at every VDI (a store may hold 100,000). Guarded by metaLock.
     */
    private final java.util.Set<VdiState> changedTrees = new java.util.HashSet<>();
    /** References held on live roots by a garbage collection in progress (guarded by metaLock). */
    private final List<PinnedRoot> pins = new ArrayList<>();
    private long nextVdiId;
    private long nextSnapshotId;

    final CombiningLock metaLock = new CombiningLock();
    /** Signalled when a VDI's last in-place write in flight finishes while a snapshot waits (design note 9). */
    private final java.util.concurrent.locks.Condition inPlaceWritesDone = metaLock.newCondition();
    private final IoEpochs ioEpochs = new IoEpochs();
    final ReentrantLock commitLock = new ReentrantLock();
    /** Held by whoever applies durable removals (design note 8); no two reclamations run at once. */
    private final ReentrantLock reclaimLock = new ReentrantLock();
    /** Durable removals not yet applied, queued by commits (design note 8); guarded by metaLock. */
    private final ArrayDeque<Release> reclaimQueue = new ArrayDeque<>();
    private final ReentrantLock[] stripes = new ReentrantLock[STRIPES];
    private volatile CorruptionException failure;
    private final List<String> damage = new java.util.concurrent.CopyOnWriteArrayList<>();
    volatile boolean closed;
    private final java.util.concurrent.atomic.AtomicInteger lent = new java.util.concurrent.atomic.AtomicInteger();
    /** Commits that have captured their transaction (design note 5); written under commitLock and metaLock. */
    private volatile long commitsCaptured;
    /** The sequence number of the last commit that finished; written under commitLock. */
    private volatile long commitsFinished;
    private final OperationLatencies latencies = new OperationLatencies();
    private final BackgroundCommitter backgroundCommits = new BackgroundCommitter(this::commitInBackground, "cairn-commits");
    private final BackgroundCommitter backgroundReclaim = new BackgroundCommitter(this::reclaim, "cairn-reclaim");
    private final StoreSketches sketches = new StoreSketches(this);

    /** A held VDI: the fencing token of the lease, and whether the lease is still valid (checked before writes). */
    private static final class Holding {
        final long token;
        final BooleanSupplier valid;
        /** The superblock generation at which the record last showed this holding, once the lease lapsed; -1 none. */
        volatile long fencedGeneration = -1;

        Holding(long token, BooleanSupplier valid) {
            this.token = token;
            this.valid = valid;
        }

        long token() {
            return token;
        }

        BooleanSupplier valid() {
            return valid;
        }
    }

    /** A VDI's record and the live root that writes move. */
    static final class VdiState {
        /** The record's id, readable without metaLock. */
        final long id;
        VdiRecord record;
        RootRef ref;
        int openHandles;
        /** Label → id of its live snapshot in this VDI's log, so label checks and lookups do not walk the log. */
        final Map<String, Long> liveLabels = new HashMap<>();
        /** Live snapshots in this VDI's log, so listing disks does not walk every log. */
        int liveSnapshots;
        /**
         * The oldest live snapshot in this VDI's log (0: none), so a deletion finds a clone's first live snapshot
         * without walking the clone's log (sketch note 4). Ids grow along a log: older snapshots have smaller ids.
         */
        long oldestLiveSnapshot;
        /**
         * The VDIs cloned from this VDI's snapshots, by snapshot id (null until one is cloned; deleted clones stay):
         * a deletion visits the clones of the snapshots it touches, not every clone of the store (sketch note 4).
         */
        TreeMap<Long, List<VdiState>> clonesBySnapshot;
        /** Whether this VDI, a clone, is in its source VDI's {@link #clonesBySnapshot}. */
        boolean indexedAsClone;
        /** The block this VDI holds pinned in the node cache (0: none); see {@link Store#repin}. */
        long pinnedRoot;
        /**
         * Writes planned with blocks overwritten in place and not yet finished (design note 9): counted up
         * under metaLock, down without it, so a finished write costs no second hold of the lock.
         */
        final java.util.concurrent.atomic.AtomicInteger inPlaceWritesInFlight = new java.util.concurrent.atomic.AtomicInteger();
        /**
         * Snapshots waiting for those writes; while any waits, writes copy instead (design note 9). Changed under
         * metaLock; volatile for the writer that finishes the last in-place write without it.
         */
        volatile int snapshotsWaiting;

        VdiState(VdiRecord record) {
            this.id = record.id();
            this.record = record;
            this.ref = new RootRef(record.rootBlock(), record.height());
        }
    }

    // ================================================================ creating and opening

    /**
     * Formats {@code device} as an empty store of {@code sizeBytes} (rounded down to whole extents).
     * Only extent 0 is written; the rest of a sparse file stays unallocated.
     */
    public static Store format(BlockDevice device, long sizeBytes, int extentBlocks, StoreOptions options) {
        return format(device, sizeBytes, extentBlocks, options, UUID.randomUUID());
    }

    /** Like {@link #format(BlockDevice, long, int, StoreOptions)} with a given store id (for reproducible images). */
    public static Store format(BlockDevice device, long sizeBytes, int extentBlocks, StoreOptions options, UUID storeId) {
        return format(device, sizeBytes, extentBlocks, options, storeId, CounterEncoding.FOR_NEW_STORES);
    }

    /**
     * Like {@link #format(BlockDevice, long, int, StoreOptions, UUID)} with the given counter encoding: tests make
     * stores as older code made them ({@link CounterEncoding#WIDE}, no incompatible feature) to show that this code
     * still reads and writes those.
     */
    public static Store format(BlockDevice device, long sizeBytes, int extentBlocks, StoreOptions options, UUID storeId,
                               CounterEncoding counterEncoding) {
        java.util.Objects.requireNonNull(storeId, "storeId");
        long storeBlocks = (sizeBytes / Layout.BLOCK_BYTES) / extentBlocks * extentBlocks;
        if (storeBlocks < 2L * extentBlocks) {
            throw new IllegalArgumentException("a store needs at least two extents of " + extentBlocks * (long) Layout.BLOCK_BYTES
                    + " bytes; " + sizeBytes + " bytes is too small");
        }
        if (storeBlocks > Pointer.BLOCK_MASK) {
            throw new IllegalArgumentException("a store may have at most 2^48 blocks");
        }
        StoreGeometry geometry = new StoreGeometry(storeBlocks, extentBlocks, counterEncoding);
        // An old superblock in slot A could outrank the new store: clear it. Write the last block so the
        // file has its full (sparse) size and a later truncation is detectable.
        device.write(Layout.SUPERBLOCK_SLOT_A * Layout.BLOCK_BYTES, BlockHeader.newImage());
        device.write((storeBlocks - 1) * Layout.BLOCK_BYTES, BlockHeader.newImage());
        Superblock initial = new Superblock(0, counterEncoding.incompatibleFeature(), 0, extentBlocks, storeBlocks, storeId, 1, 1,
                Superblock.TableRoot.EMPTY, Superblock.TableRoot.EMPTY, Superblock.TableRoot.EMPTY, 0);
        Store store = new Store(device, null, options, geometry, initial);
        store.space.formatSystemExtent();
        store.trees.openTransaction(1);
        for (int extent = 0; extent < geometry.extentCount(); extent++) {
            store.extentTable.markDirty(extent);
        }
        store.commit();
        store.sketches.start();
        return store;
    }

    /**
     * Creates a store in a new sparse file (or on an existing block device, whose size is used when
     * {@code sizeBytes} is 0) and opens it, holding the owner lock. {@code extentBlocks} 0 means the default
     * for the store's size ({@link Layout#defaultExtentBlocks}).
     */
    public static Store formatFile(java.nio.file.Path path, long sizeBytes, int extentBlocks, StoreOptions options) {
        boolean blockDevice = java.nio.file.Files.exists(path) && !java.nio.file.Files.isRegularFile(path);
        if (java.nio.file.Files.exists(path) && !blockDevice) {
            throw new IllegalArgumentException(path + " already exists; remove it first to make a new store there");
        }
        if (!blockDevice) {
            if (sizeBytes <= 0) {
                throw new IllegalArgumentException("give the size of the new store (for example --size 64G)");
            }
            FileBlockDevice.create(path, 0).close();
        }
        FileBlockDevice device = FileBlockDevice.openLocked(path, false);
        try {
            long size = sizeBytes > 0 ? sizeBytes : device.sizeBytes();
            return format(device, size, extentBlocks > 0 ? extentBlocks : Layout.defaultExtentBlocks(size), options);
        } catch (RuntimeException problem) {
            device.close();
            if (!blockDevice) {
                try {
                    java.nio.file.Files.deleteIfExists(path);
                } catch (java.io.IOException ignored) {
                    // The format error is the one worth reporting.
                }
            }
            throw problem;
        }
    }

    /** Opens the store in {@code path}, holding the owner lock (shared when read-only) until close. */
    public static Store openFile(java.nio.file.Path path, StoreOptions options) {
        if (!java.nio.file.Files.exists(path)) {
            throw new IllegalArgumentException("no store at " + path + " (create one with: cairn format " + path + " --size 64G)");
        }
        FileBlockDevice device = FileBlockDevice.openLocked(path, options.readOnly());
        try {
            return open(device, null, options);
        } catch (RuntimeException problem) {
            device.close();
            throw problem;
        }
    }

    /** Opens the store on {@code device}; {@code ownerLock} (may be null) is released on close. */
    public static Store open(BlockDevice device, Closeable ownerLock, StoreOptions options) {
        Superblock superblock = readSuperblock(device);
        long needBytes = superblock.storeBlocks() * Layout.BLOCK_BYTES;
        if (device.sizeBytes() < needBytes) {
            throw new StorageException(StorageException.Code.CORRUPT, "truncated store: the device has "
                    + device.sizeBytes() + " bytes but the store needs " + needBytes);
        }
        Store store = new Store(device, ownerLock, options, StoreGeometry.of(superblock), superblock);
        store.load();
        store.sketches.start();
        return store;
    }

    /**
     * Opens the store on {@code device} as node {@code node} (above 0) of the node processes of one host
     * that serve it together (design note 10), attaching to their shared counters in {@code countersFile}
     * (building it from the device if no other process is attached). The device must not be locked
     * exclusively; {@code ownerLock} (may be null) is released on close. A process found stopped while it
     * holds the host commit lock for longer than {@code stoppedCommitHolderGrace} is killed
     * ({@link SharedCounters#lockCommits}); the lease timeout is the natural choice.
     */
    public static Store openShared(BlockDevice device, Closeable ownerLock, StoreOptions options, int node,
                                   java.nio.file.Path countersFile, java.time.Duration stoppedCommitHolderGrace) {
        if (options.readOnly()) {
            throw new IllegalArgumentException("a node serving a shared store writes; open it read-only alone instead");
        }
        Superblock first = readSuperblock(device);
        long needBytes = first.storeBlocks() * Layout.BLOCK_BYTES;
        if (device.sizeBytes() < needBytes) {
            throw new StorageException(StorageException.Code.CORRUPT, "truncated store: the device has "
                    + device.sizeBytes() + " bytes but the store needs " + needBytes);
        }
        StoreGeometry geometry = StoreGeometry.of(first);
        SharedCounters counters = SharedCounters.attach(countersFile, first.storeId(), geometry, first.generation(),
                built -> buildSharedCounters(built, device));
        try {
            Store store = new Store(device, ownerLock, options, geometry, readSuperblock(device),
                    counters, node);
            store.stoppedCommitHolderGrace = java.util.Objects.requireNonNull(stoppedCommitHolderGrace);
            // Registered before anything is loaded: from here on no collection checkpoint goes without it.
            store.barrier = CollectionBarrier.register(countersFile, store, node, stoppedCommitHolderGrace);
            try {
                store.load();
                if (store.failure != null) {
                    throw store.failure;
                }
                store.barrier.start();
            } catch (RuntimeException problem) {
                store.barrier.close();
                throw problem;
            }
            store.sketches.start(); // with the worker option: the snapshots of the disks it holds (sketch note 7)
            return store;
        } catch (RuntimeException problem) {
            counters.close();
            throw problem;
        }
    }

    /** Builds the shared counters from the durable state (under the counter file's build lock). */
    private static void buildSharedCounters(SharedCounters built, BlockDevice device) {
        Superblock superblock = readSuperblock(device);
        StoreGeometry geometry = StoreGeometry.of(superblock);
        SpaceMap scratch = new SpaceMap(geometry, Layout.MAX_REFCOUNT);
        TreeSpace reader = new TreeSpace(device, scratch, new NodeCache(device, 1 << 20), superblock.generation() + 1);
        ExtentRecord[] records = new ExtentRecord[geometry.extentCount()];
        new SystemTable(TablePageCodec.Kind.EXTENTS, superblock.extentTable()).load(reader, device,
                (page, offset, pageBlock, entry) -> {
                    if (entry < records.length) {
                        records[(int) entry] = ExtentRecord.decode(page, offset, pageBlock);
                    }
                }, problem -> {
                    throw problem;
                });
        SpaceMap.build(built, records, device, superblock.generation());
    }

    /** Reads both superblock slots and returns the valid one with the highest generation. */
    static Superblock readSuperblock(BlockDevice device) {
        if (device.sizeBytes() < Layout.SUPERBLOCK_BLOCKS * (long) Layout.BLOCK_BYTES) {
            throw new StorageException(StorageException.Code.CORRUPT, "not a Cairn store: the device holds only "
                    + device.sizeBytes() + " bytes");
        }
        Superblock best = null;
        CorruptionException firstProblem = null;
        boolean anySignature = false;
        for (long slot = Layout.SUPERBLOCK_SLOT_A; slot <= Layout.SUPERBLOCK_SLOT_B; slot++) {
            ByteBuffer image = BlockHeader.newImage();
            device.read(slot * Layout.BLOCK_BYTES, image);
            anySignature |= Superblock.hasSignature(image);
            try {
                Superblock candidate = Superblock.decode(image, slot);
                if (best == null || candidate.generation() > best.generation()) {
                    best = candidate;
                }
            } catch (CorruptionException problem) {
                if (firstProblem == null) {
                    firstProblem = problem;
                }
            }
        }
        if (best != null) {
            return best;
        }
        if (!anySignature) {
            throw new StorageException(StorageException.Code.CORRUPT,
                    "not a Cairn store: no superblock signature in blocks 0 and 1 (wrong file, or never formatted)");
        }
        throw firstProblem;
    }

    private Store(BlockDevice device, Closeable ownerLock, StoreOptions options, StoreGeometry geometry, Superblock superblock) {
        this(device, ownerLock, options, geometry, superblock, null, 0);
    }

    private Store(BlockDevice device, Closeable ownerLock, StoreOptions options, StoreGeometry geometry, Superblock superblock,
                  SharedCounters shared, int node) {
        this.device = device;
        this.ownerLock = ownerLock;
        this.shared = shared;
        this.options = options;
        this.geometry = geometry;
        this.durable = superblock;
        this.space = shared == null ? new SpaceMap(geometry, options.maxRefcount())
                : new SpaceMap(geometry, options.maxRefcount(), shared, node);
        this.cache = new NodeCache(device, options.nodeCacheBytes());
        this.trees = new TreeSpace(device, space, cache, superblock.generation() + 1);
        this.extentTable = new SystemTable(TablePageCodec.Kind.EXTENTS, superblock.extentTable());
        this.vdiTable = new SystemTable(TablePageCodec.Kind.VDIS, superblock.vdiTable());
        this.snapshotTable = new SystemTable(TablePageCodec.Kind.SNAPSHOTS, superblock.snapshotTable());
        this.nextVdiId = superblock.nextVdiId();
        this.nextSnapshotId = superblock.nextSnapshotId();
        for (int i = 0; i < STRIPES; i++) {
            stripes[i] = new ReentrantLock();
        }
    }

    /**
     * Reads the catalogue, counters and tables. Damage does not stop the open: it is recorded, the
     * damaged part is left out, and the store turns read-only with a message naming the first damaged
     * block, so what is intact can still be read (and copied off).
     */
    private void load() {
        long generation = durable.generation();
        int extentCount = geometry.extentCount();
        ExtentRecord[] records = new ExtentRecord[extentCount];
        extentTable.load(trees, device, (page, offset, pageBlock, entry) -> {
            if (entry < extentCount) {
                records[(int) entry] = ExtentRecord.decode(page, offset, pageBlock);
            }
        }, this::damaged);
        for (int extent = 0; extent < extentCount; extent++) {
            ExtentRecord record = records[extent] == null ? ExtentRecord.FREE : records[extent];
            if (extent == 0 && record.type() != ExtentRecord.Type.SYSTEM) {
                damaged(new CorruptionException(durable.extentTable().rootBlock(), "extent 0 is not the system extent"));
                record = new ExtentRecord(ExtentRecord.Type.SYSTEM, 0, 0);
            }
            try {
                space.loadExtent(extent, record, device, generation);
            } catch (CorruptionException corruption) {
                damaged(corruption);
            }
        }
        vdiTable.load(trees, device, (page, offset, pageBlock, entry) -> {
            VdiRecord record = VdiRecord.decode(page, offset, pageBlock, entry);
            if (record != null) {
                vdis.put(record.id(), new VdiState(record));
            }
        }, this::damaged);
        snapshotTable.load(trees, device, (page, offset, pageBlock, entry) -> {
            SnapshotRecord record = SnapshotRecord.decode(page, offset, pageBlock, entry);
            if (record == null) {
                return;
            }
            if (!vdis.containsKey(record.vdiId())) {
                damaged(new CorruptionException(pageBlock, "snapshot " + record.id() + " belongs to disk id "
                        + record.vdiId() + ", whose record is missing"));
                return;
            }
            snapshots.put(record.id(), record);
        }, this::damaged);
        indexRecords(vdis.values());
        if (!durable.sketchesTrusted()) {
            dropUntrustedSketchBlobs();
        }
        trees.openTransaction(nextGeneration(generation, space.highestGenerationUsed()));
    }

    /**
     * Builds the name index, the clone index and each VDI's label index, snapshot count and oldest live snapshot
     * from the records (at open, and for the VDIs a rebase took from the device).
     */
    private void indexRecords(java.util.Collection<VdiState> states) {
        for (VdiState state : states) {
            if (!state.record.deleted()) {
                liveByName.put(state.record.name(), state);
            }
            indexClone(state);
            state.liveLabels.clear();
            state.liveSnapshots = 0;
            state.oldestLiveSnapshot = 0;
            // A snapshot log must end in records that exist; cut it where damage removed one.
            for (long id = state.record.snapshotLogHead(); id != 0; ) {
                SnapshotRecord record = snapshots.get(id);
                if (record == null) {
                    damaged(new CorruptionException(durable.snapshotTable().rootBlock(), "snapshot " + id
                            + " in the log of disk '" + state.record.name() + "' is missing"));
                    state.record = state.record.withSnapshotLogHead(0);
                    state.liveLabels.clear();
                    state.liveSnapshots = 0;
                    state.oldestLiveSnapshot = 0;
                    break;
                }
                if (!record.deleted()) {
                    state.liveSnapshots++;
                    state.oldestLiveSnapshot = id; // the log runs newest first: the last live one seen is the oldest
                    if (!record.label().isEmpty()) {
                        state.liveLabels.putIfAbsent(record.label(), id); // newest first, as lookups always found it
                    }
                }
                id = record.previousSnapshotId();
            }
        }
    }

    /** Puts a clone into its source VDI's {@link VdiState#clonesBySnapshot} (once; a clone's source never changes). */
    private void indexClone(VdiState clone) {
        long parent = clone.record.parentSnapshotId();
        SnapshotRecord source = parent == 0 || clone.indexedAsClone ? null : snapshots.get(parent);
        VdiState owner = source == null ? null : vdis.get(source.vdiId());
        if (owner == null) {
            return; // not a clone, already indexed, or damage removed its source (then nothing is based on that)
        }
        if (owner.clonesBySnapshot == null) {
            owner.clonesBySnapshot = new TreeMap<>();
        }
        owner.clonesBySnapshot.computeIfAbsent(parent, id -> new ArrayList<>(1)).add(clone);
        clone.indexedAsClone = true;
    }

    /**
     * A writer that does not maintain sketch blobs committed since they were written (design note on
     * sketches 5): their pointers may name blocks that were freed and reused. Forget them; a writable store
     * also clears them on disk at its next commit. Their pages, if still allocated, are leaks.
     */
    private void dropUntrustedSketchBlobs() {
        for (SnapshotRecord record : List.copyOf(snapshots.values())) {
            if (record.sketchBlock() != 0) {
                snapshots.put(record.id(), record.withSketchBlock(0));
                if (!options.readOnly()) {
                    snapshotTable.markDirty(record.id());
                }
            }
        }
    }

    private void damaged(CorruptionException corruption) {
        damage.add(corruption.getMessage());
        fail(corruption);
    }

    /** Damage found when the store was opened (empty for a healthy store); each message names a block. */
    public List<String> damage() {
        return List.copyOf(damage);
    }

    /**
     * The generation of the first commit after opening at {@code durableGeneration}. It must be above
     * every generation an unfinished commit left on a counter slot, and it must have the other parity
     * than the durable one: a commit writes superblock slot {@code generation % 2}, and that must never
     * be the slot holding the only valid superblock (after a torn superblock write the next generation
     * would otherwise land on it, and a second crash would leave no valid slot at all).
     */
    static long nextGeneration(long durableGeneration, long highestGenerationSeen) {
        long next = Math.max(durableGeneration, highestGenerationSeen) + 1;
        return (next - durableGeneration) % 2 == 0 ? next + 1 : next;
    }

    // ================================================================ commit

    /**
     * Makes every change so far durable (see design note 1). Cheap when nothing changed: then it only
     * flushes the device, which is what in-place data writes need. Shares a commit with the callers queued
     * with it (design note 5): commits only if no commit that captured after this call began has finished.
     * Then applies the removals made durable so far (design note 8), so that the space a deletion frees is
     * free when this returns. Must not be called inside a volume I/O (the reclamation waits for those).
     */
    public void commit() {
        commitUnlessServed();
        reclaim();
    }

    private void commitUnlessServed() {
        long ticket = commitsCaptured;
        commitLock.lock();
        try {
            if (commitsFinished <= ticket) {
                commitOnce();
            }
        } finally {
            commitLock.unlock();
        }
    }

    /**
     * A commit asked for by {@link #commitSoon()}: the reclamation goes to its own thread, so the next
     * background commit does not wait for it (design note 8), unless so many removals are queued that the
     * reclaim thread is behind; then this thread helps, which keeps the queue bounded.
     */
    private void commitInBackground() {
        commitUnlessServed();
        if (underMeta(reclaimQueue::size) > RECLAIM_BACKLOG) {
            reclaim();
        } else {
            backgroundReclaim.request();
        }
    }

    /**
     * Asks for a commit in the background and returns at once: every change so far becomes durable within
     * the next commit or two, without the caller waiting. A no-op once the store is closing.
     */
    public void commitSoon() {
        checkOpen();
        if (!readOnly()) {
            backgroundCommits.request();
        }
    }

    /** Latencies of snapshots, clones and commits as this store measured them since it opened (or a reset). */
    public OperationLatencies latencies() {
        return latencies;
    }

    /**
     * Copy-on-write shadows that writes to virtual disks made since the store opened (or the last reset):
     * leaves and inner nodes copied because a snapshot or clone shared them, nodes moved after a commit.
     */
    public TreeSpace.Shadows shadows(boolean reset) {
        return underMeta(() -> {
            TreeSpace.Shadows shadows = trees.shadows();
            if (reset) {
                trees.resetShadows();
            }
            return shadows;
        });
    }

    /**
     * A commit applies the removals it made durable only afterwards, in memory (design note 3); their
     * counters reach the device with the next commit. Commits until nothing is left, so the counters on
     * the device are exact (offline tools and the next open see no leak).
     */
    private void commitUntilSettled() {
        commitLock.lock();
        try {
            // First the removals an earlier commit queued and nobody applied yet: a background commit leaves
            // them to the reclaim thread, which close stops before it may have run. Applied after the loop's
            // first commit instead, they would change counters that no commit writes if that commit found
            // nothing else to write (a clean stop then left leaks behind).
            reclaim();
            boolean wrote = true;
            for (int round = 0; wrote && round < MAX_CLOSE_COMMITS; round++) {
                wrote = commitOnce(); // nothing written: nothing was pending, so the reclaim below has nothing to apply
                reclaim();
            }
            if (wrote) {
                LOG.log(System.Logger.Level.WARNING, "closing: still changing after " + MAX_CLOSE_COMMITS
                        + " commits; blocks the last removals freed stay allocated until cairn check --repair");
            }
        } finally {
            commitLock.unlock();
        }
    }

    /**
     * For tests: one commit whose removals stay queued, as a background commit leaves them when the reclaim
     * thread has not run yet.
     */
    void commitLeavingRemovalsQueued() {
        commitLock.lock();
        try {
            commitOnce();
        } finally {
            commitLock.unlock();
        }
    }

    /**
     * One commit; false if there was nothing to write (then it only flushed). Its durable removals are queued
     * for {@link #reclaim()} (design note 8).
     */
    private boolean commitOnce() {
        commitLock.lock();
        try {
            checkOpen();
            try (SharedCounters.CommitLock ignored = lockHost()) {
                if (shared != null) {
                    underMeta(() -> {
                        rebase();
                        return null;
                    });
                }
                return commitUnderLocks();
            }
        } finally {
            commitLock.unlock();
        }
    }

    /** The host-wide commit lock in shared mode (null alone); taken after commitLock. */
    private SharedCounters.CommitLock lockHost() {
        return shared == null ? null : shared.lockCommits(stoppedCommitHolderGrace);
    }

    /**
     * Under commitLock (and the host lock in shared mode, after a rebase): writes one commit and queues its
     * durable removals; false if there was nothing to write (then it only flushed).
     */
    private boolean commitUnderLocks() {
        long startNanos = System.nanoTime();
        long sequence;
        CommitPlan plan;
        metaLock.lock();
        try {
            sequence = ++commitsCaptured;
            space.beginCommit();
            space.allowReserve(true);
            plan = prepareCommit();
        } finally {
            space.allowReserve(false);
            metaLock.unlock();
        }
        if (plan == null) {
            device.flush();
            finished(sequence, startNanos);
            return false;
        }
        // Alone, the counters are copied here, after metaLock (design note 12); shared, prepareCommit copied them.
        List<SpaceMap.CounterWrite> counters = plan.counters != null ? plan.counters : space.copyCounters(plan.dirtyCounters);
        for (SystemTable.PageWrite page : plan.pages) {
            device.write(page.block() * Layout.BLOCK_BYTES, page.image().clear());
        }
        plan.capture.writeNodes(device); // outside metaLock: a closed transaction's nodes never change
        for (SpaceMap.CounterWrite counter : counters) {
            device.write(counter.blockNumber() * Layout.BLOCK_BYTES, counter.image().clear());
        }
        device.flush();
        device.write(Superblock.slotFor(plan.superblock.generation()) * Layout.BLOCK_BYTES, plan.superblock.encode());
        device.flush();
        // The same commit into the other slot too, without waiting for it: once the next flush makes it
        // durable, decay of either slot loses nothing. If it never lands, the other slot holds the
        // previous commit, which is what a torn write of the next commit's slot falls back to anyway.
        device.write(Superblock.otherSlot(plan.superblock.generation()) * Layout.BLOCK_BYTES,
                plan.superblock.encodeFor(Superblock.otherSlot(plan.superblock.generation())));
        metaLock.lock();
        try {
            durable = plan.superblock;
            space.markDurable(counters);
            TreeSpace.markWritten(plan.capture);
            reclaimQueue.addAll(plan.capture.releases()); // applied by the caller or the reclaim thread (note 8)
        } finally {
            metaLock.unlock();
        }
        finished(sequence, startNanos);
        return true;
    }

    /**
     * Shared mode, under the host commit lock and metaLock: brings every record this node does not own up
     * to the durable state another node committed since this node last committed or rebased (design note 10).
     */
    private void rebase() {
        Superblock disk = readSuperblock(device);
        if (disk.generation() == durable.generation()) {
            return;
        }
        if (disk.generation() < durable.generation()) {
            throw fail(new CorruptionException(Superblock.slotFor(disk.generation()), "the store's superblock went back from "
                    + "generation " + durable.generation() + " to " + disk.generation()));
        }
        trees.forgetCachedTree(extentTable.rootRef());
        trees.forgetCachedTree(vdiTable.rootRef());
        trees.forgetCachedTree(snapshotTable.rootRef());
        extentTable.rebase(disk.extentTable());
        vdiTable.rebase(disk.vdiTable());
        snapshotTable.rebase(disk.snapshotTable());
        extentTable.load(trees, device, (page, offset, pageBlock, entry) -> {
            if (entry < geometry.extentCount()) {
                space.rebaseExtent((int) entry, ExtentRecord.decode(page, offset, pageBlock));
            }
        }, this::damaged);
        List<VdiState> taken = new ArrayList<>();
        vdiTable.load(trees, device, (page, offset, pageBlock, entry) -> {
            VdiRecord record = VdiRecord.decode(page, offset, pageBlock, entry);
            if (record == null) {
                return;
            }
            VdiState state = vdis.get(record.id());
            Holding holding = held.get(record.id());
            if (holding != null && record.lockToken() <= holding.token()) {
                return; // ours: this node's version is the newer one
            }
            if (holding != null) {
                // Taken over: a node with a newer lease wrote the record. Write nothing more for it.
                held.remove(record.id());
                changedTrees.remove(state);
            }
            if (state == null) {
                state = new VdiState(record);
                vdis.put(record.id(), state);
            } else {
                if (!state.record.deleted()) {
                    liveByName.remove(state.record.name(), state);
                }
                state.record = record;
                state.ref = new RootRef(record.rootBlock(), record.height());
                repin(state); // not held (any more): its root is not this node's to keep
            }
            taken.add(state);
        }, this::damaged);
        snapshotTable.load(trees, device, (page, offset, pageBlock, entry) -> {
            SnapshotRecord record = SnapshotRecord.decode(page, offset, pageBlock, entry);
            if (record != null && !held.containsKey(record.vdiId())) {
                snapshots.put(record.id(), record);
            }
        }, this::damaged);
        indexRecords(taken);
        nextVdiId = Math.max(nextVdiId, disk.nextVdiId());
        nextSnapshotId = Math.max(nextSnapshotId, disk.nextSnapshotId());
        durable = disk;
    }

    /** Under commitLock: commit {@code sequence} is durable. */
    private void finished(long sequence, long startNanos) {
        commitsFinished = sequence;
        latencies.committed(sequence, startNanos, System.nanoTime());
    }

    /** What a commit writes; {@code counters} is null when they are still to be copied from {@code dirtyCounters}. */
    private record CommitPlan(List<SystemTable.PageWrite> pages, TreeSpace.Capture capture,
                              List<SpaceMap.DirtyCounterBlock> dirtyCounters, List<SpaceMap.CounterWrite> counters,
                              Superblock superblock) {
    }

    private CommitPlan prepareCommit() {
        if (shared != null) {
            // Above every generation any node used: another node's nodes of the open generation must not look
            // like this transaction's (they would be changed in place), nor may a slot of a dead commit.
            trees.retarget(nextGeneration(durable.generation(), space.highestGenerationUsed()));
        }
        for (VdiState state : changedTrees) {
            if (!state.record.deleted() && state.record.rootBlock() != state.ref.root()) {
                state.record = state.record.withRoot(state.ref.root());
                vdiTable.markDirty(state.record.id());
                repin(state); // an open disk's pin moves to its new root
            }
        }
        changedTrees.clear();
        boolean changed = trees.dirtyNodeCount() > 0 || trees.pendingReleaseCount() > 0 || space.hasDirtyCounters()
                || space.hasDirtyExtentRecords() || vdiTable.isDirty() || snapshotTable.isDirty() || extentTable.isDirty()
                || nextVdiId != durable.nextVdiId() || nextSnapshotId != durable.nextSnapshotId();
        if (!changed) {
            return null;
        }
        List<SystemTable.PageWrite> pages = new ArrayList<>();
        pages.addAll(vdiTable.persist(trees, this::encodeVdi));
        pages.addAll(snapshotTable.persist(trees, this::encodeSnapshot));
        // Writing pages allocates blocks, which may claim extents; the extent table goes last, and again
        // if writing its own pages claimed one.
        while (space.hasDirtyExtentRecords() || extentTable.isDirty()) {
            BitSet dirtyExtents = space.takeDirtyExtentRecords();
            for (int extent = dirtyExtents.nextSetBit(0); extent >= 0; extent = dirtyExtents.nextSetBit(extent + 1)) {
                extentTable.markDirty(extent);
            }
            pages.addAll(extentTable.persist(trees, this::encodeExtent));
        }
        TreeSpace.Capture capture = trees.closeTransaction();
        List<SpaceMap.DirtyCounterBlock> dirtyCounters = space.takeDirty(capture.generation());
        // Shared mode copies now: other processes change counters by their own rules (design note 10).
        List<SpaceMap.CounterWrite> counters = shared != null ? space.copyCounters(dirtyCounters) : null;
        Superblock next = durable.withCommit(capture.generation(), nextVdiId, nextSnapshotId, extentTable.root(),
                vdiTable.root(), snapshotTable.root(), System.currentTimeMillis()).withSketchesMaintained();
        return new CommitPlan(pages, capture, dirtyCounters, counters, next);
    }

    private void encodeVdi(ByteBuffer page, int offset, long entry) {
        VdiState state = vdis.get(entry);
        if (state != null) {
            state.record.encode(page, offset);
        }
    }

    private void encodeSnapshot(ByteBuffer page, int offset, long entry) {
        SnapshotRecord record = snapshots.get(entry);
        if (record != null) {
            record.encode(page, offset);
        }
    }

    private void encodeExtent(ByteBuffer page, int offset, long entry) {
        if (entry < geometry.extentCount()) {
            space.extent((int) entry).encode(page, offset);
        }
    }

    /**
     * Applies every queued durable removal (design notes 3 and 8) in short batches under the metadata lock
     * only, then frees the blocks that lost their last reference once every volume I/O in flight when they
     * lost it has finished. Volume I/O is never stopped: new I/O cannot find these blocks (no pointer names
     * them), and the wait covers the I/O that looked them up before. Commits go on meanwhile.
     */
    private void reclaim() {
        reclaimLock.lock();
        try {
            drainReclaimQueue();
        } finally {
            reclaimLock.unlock();
        }
    }

    /** Under reclaimLock: applies the queued removals and frees what they leave held. */
    private void drainReclaimQueue() {
        if (!reclaimLock.isHeldByCurrentThread()) {
            throw new IllegalStateException("reclamation outside the reclaim lock");
        }
        List<TreeSpace.FreedLeaf> freedLeaves = new ArrayList<>();
        try {
            while (true) {
                boolean more;
                metaLock.lock();
                try {
                    trees.applyReleases(reclaimQueue, RELEASE_BATCH, freedLeaves);
                    more = !reclaimQueue.isEmpty();
                } catch (CorruptionException corruption) {
                    throw fail(corruption);
                } finally {
                    metaLock.unlock();
                }
                // Without metaLock (design note 3): the freed leaves' targets, up to 512 atomic decrements each.
                // Their leaves are held until the held blocks are freed below, so a write short of space that
                // sees held blocks waits for these too (reclaimUnderWay).
                try {
                    for (TreeSpace.FreedLeaf leaf : freedLeaves) {
                        trees.releaseTargets(leaf);
                    }
                } catch (CorruptionException corruption) {
                    throw fail(corruption);
                }
                freedLeaves.clear();
                if (trees.deferredTargetCount() > 0) {
                    // Targets a substitute names (TreeSpace substitutes rule 7): rare, only past the counter limit.
                    metaLock.lock();
                    try {
                        trees.releaseDeferredTargets();
                    } finally {
                        metaLock.unlock();
                    }
                }
                if (!more) {
                    break;
                }
                if (trees.heldCount() >= HELD_LIMIT) {
                    freeHeldBlocks(); // a long reclamation gives space back as it goes
                }
                if (metaLock.hasQueuedThreads()) {
                    Thread.yield(); // let a writer waiting for the lock in before the next batch
                }
            }
        } finally {
            freeHeldBlocks();
        }
    }

    /** Under reclaimLock: frees the held blocks once no volume I/O that may touch them is in flight. */
    private void freeHeldBlocks() {
        if (trees.heldCount() == 0) {
            return;
        }
        if (ioEpochs.insideIo()) {
            throw new IllegalStateException("a reclamation inside a volume I/O would wait for that I/O to finish");
        }
        if (!ioEpochs.closedByCurrentThread()) {
            ioEpochs.awaitInFlight(); // with the gate closed no volume I/O is in flight at all
        }
        trees.discardHeldData(); // nothing can touch them now; not under metaLock (a device call per block)
        metaLock.lock();
        try {
            trees.freeHeld();
        } finally {
            metaLock.unlock();
        }
    }

    /** Under metaLock: removals are queued or blocks held, so space may come free soon (design note 8). */
    private boolean reclaimUnderWay() {
        return !reclaimQueue.isEmpty() || trees.heldCount() > 0;
    }

    /**
     * Waits for the reclamation under way (and helps it) so that the space it frees is free on return. Called
     * by a write that found no free block, after it left its I/O epoch (design note 8).
     */
    void awaitReclaim() {
        reclaim();
    }

    // ================================================================ administration

    public List<VdiInfo> listVdis(boolean includeDeleted) {
        refresh();
        return underMeta(() -> {
            List<VdiInfo> result = new ArrayList<>();
            for (VdiState state : vdis.values()) {
                if (includeDeleted || !state.record.deleted()) {
                    result.add(info(state));
                }
            }
            return result;
        });
    }

    /** Whether a live disk is named {@code name}: one lookup, however many disks the store has. */
    public boolean hasDisk(String name) {
        refresh();
        return underMeta(() -> liveByName.containsKey(name));
    }

    /**
     * The live snapshot of disk {@code name} labelled {@code label}, if there is one: one lookup in the disk's label
     * index, however long its snapshot log.
     */
    public java.util.Optional<SnapshotInfo> labelled(String name, String label) {
        refresh();
        return underMeta(() -> {
            Long id = live(name).liveLabels.get(label);
            return id == null ? java.util.Optional.<SnapshotInfo>empty() : java.util.Optional.of(snapshotInfo(snapshots.get(id)));
        });
    }

    public VdiInfo vdi(String name) {
        refresh();
        return underMeta(() -> info(live(name)));
    }

    private VdiInfo info(VdiState state) {
        VdiRecord record = state.record;
        String parentName = null;
        if (record.parentSnapshotId() != 0) {
            SnapshotRecord parent = snapshots.get(record.parentSnapshotId());
            if (parent != null) {
                parentName = vdis.get(parent.vdiId()).record.name() + "@" + parent.id();
            }
        }
        return new VdiInfo(record.id(), record.name(), record.sizeBytes(), record.parentSnapshotId(), parentName,
                record.createdMillis(), state.liveSnapshots, record.deleted(), record.lockHolder());
    }

    /** Creates an empty thin VDI: one zeroed root, nothing else. */
    public VdiInfo create(String name, long sizeBytes) {
        Names.checkVdiName(name);
        checkVdiSize(sizeBytes);
        int height = Layout.treeHeightFor(Layout.blocksFor(sizeBytes));
        return mutate(() -> {
            requireFreeName(name);
            long root = trees.newNode(height);
            return info(register(name, sizeBytes, root, height, 0));
        });
    }

    /** Creates a writable clone of a snapshot ({@code NAME@ID} or {@code NAME@LABEL}): O(1), shares every block. */
    public VdiInfo clone(String name, String snapshotReference) {
        long startNanos = System.nanoTime();
        Names.checkVdiName(name);
        java.util.function.Supplier<VdiInfo> change = () -> {
            long lockedNanos = System.nanoTime();
            requireFreeName(name);
            SnapshotRecord source = resolveSnapshot(snapshotReference);
            if (shared != null) {
                checkHeld(vdis.get(source.vdiId())); // its holder alone knows the snapshot stays while it is shared
            }
            long root = trees.share(source.rootBlock(), source.height(), LeafKind.DATA);
            VdiInfo clone = info(register(name, source.sizeBytes(), root, source.height(), source.id()));
            latencies.taken(OperationLatencies.Kind.CLONE, startNanos, lockedNanos, System.nanoTime(), commitsCaptured);
            return clone;
        };
        return shared != null ? mutate(change) : combined(change::get);
    }

    private VdiState register(String name, long sizeBytes, long root, int height, long parentSnapshotId) {
        long id = nextVdiId++;
        VdiRecord record = new VdiRecord(id, sizeBytes, root, height, false, name, parentSnapshotId, 0,
                System.currentTimeMillis(), space.node(), 0);
        VdiState state = new VdiState(record);
        vdis.put(id, state);
        liveByName.put(name, state);
        indexClone(state);
        vdiTable.markDirty(id);
        return state; // its root is not pinned (see repin): a created root is dirty until the commit, which keeps it cached
    }

    /**
     * Under metaLock: pins the root of {@code state} in the node cache while the disk is open (in shared mode, open and
     * held by this node), and only then. Every I/O of an open disk starts at its root, so it stays in memory (seed 003
     * §3.4.4); the root of any other disk is cached like any other node, so a process that creates or writes 100,000
     * disks does not keep 100,000 roots (400 MiB). Nothing else needs the pin: a root created or changed in the open
     * transaction is dirty, and the cache never evicts a dirty node before the commit has written it (NodeCache
     * invariant 2); once written, a root read again from the device is the same node. Called wherever one of the
     * conditions or the root may have changed: open, close, commit (a write moved the root), delete, hold, release.
     */
    private void repin(VdiState state) {
        long wanted = state.openHandles > 0 && !state.record.deleted() && holds(state.id) ? state.ref.root() : 0;
        if (wanted != state.pinnedRoot) {
            if (state.pinnedRoot != 0) {
                cache.unpin(state.pinnedRoot);
            }
            if (wanted != 0) {
                cache.pin(wanted);
            }
            state.pinnedRoot = wanted;
        }
    }

    /**
     * Takes a snapshot of VDI {@code name}: the current root is shared with a new, immutable entry in
     * the VDI's snapshot log (O(1) whatever the disk size or history). Holds every write completed before
     * it and none that starts after it. Waits only for the writes to this VDI that overwrite blocks in place
     * and are in flight at this instant (design note 9); other I/O goes on. Durable at the next commit.
     */
    public SnapshotInfo snapshot(String name, String label) {
        long startNanos = System.nanoTime();
        if (label != null && !label.isEmpty()) {
            Names.checkLabel(label);
        }
        checkWritable();
        try {
            if (shared != null) {
                return mutate(() -> takeSnapshot(name, label, startNanos));
            }
            return metaLock.combine(new SnapshotChange(name, label, startNanos));
        } finally {
            sketches.signal();
        }
    }

    /**
     * A snapshot made by whichever thread next lets go of metaLock ({@link CombiningLock}): not ready while
     * its disk has in-place writes in flight (design note 9). The first attempt raises the disk's count of
     * waiting snapshots, so writes planned from then on copy, and the writer that finishes the last in-place
     * write takes metaLock, whose release tries this again.
     */
    private final class SnapshotChange implements java.util.function.Supplier<Object> {
        private final String name;
        private final String label;
        private final long startNanos;
        private long lockedNanos;
        /** The disk whose waiting count this change raised, or null. */
        private VdiState waitingOn;

        SnapshotChange(String name, String label, long startNanos) {
            this.name = name;
            this.label = label;
            this.startNanos = startNanos;
        }

        @Override
        public Object get() {
            if (lockedNanos == 0) {
                lockedNanos = System.nanoTime();
            }
            try {
                checkOpen();
                checkWritable();
                VdiState state = writable(name);
                if (waitingOn != state) {
                    stopWaiting();
                    // Raised before the in-flight count is read; a finishing writer lowers that count before
                    // it reads this one (both volatile): one of the two sees the other (design note 9).
                    state.snapshotsWaiting++;
                    waitingOn = state;
                }
                if (state.inPlaceWritesInFlight.get() > 0) {
                    return CombiningLock.NOT_READY;
                }
                stopWaiting();
                return makeSnapshot(state, label, startNanos, lockedNanos);
            } catch (RuntimeException problem) {
                stopWaiting(); // whatever ends the change, the disk's writes stop copying for it
                throw problem instanceof CorruptionException corruption ? fail(corruption) : problem;
            }
        }

        private void stopWaiting() {
            if (waitingOn != null) {
                waitingOn.snapshotsWaiting--;
                waitingOn = null;
            }
        }
    }

    /**
     * An admin change made under metaLock by whichever thread lets go of it next ({@link CombiningLock}),
     * with the checks {@link #mutate} makes. Not for shared mode, whose changes take the host's commit lock first.
     */
    private <T> T combined(java.util.function.Supplier<Object> change) {
        return metaLock.combine(() -> {
            try {
                checkOpen();
                checkWritable();
                return change.get();
            } catch (CorruptionException corruption) {
                throw fail(corruption);
            }
        });
    }

    /**
     * Under metaLock, in shared mode (through {@link #mutate}, or {@link #hold} for a takeover snapshot): waits on
     * metaLock's condition for the disk's in-place writes in flight, then makes the snapshot.
     */
    private SnapshotInfo takeSnapshot(String name, String label, long startNanos) {
        long lockedNanos = System.nanoTime();
        VdiState state = writable(name);
        while (true) {
            // Writes planned from now on copy instead of overwriting (design note 9), so this ends. The waiting
            // count is raised before the in-flight count is read, and a finishing writer lowers the in-flight
            // count before it reads the waiting count (both volatile): if this sees a write in flight, its
            // writer sees this waiting and signals under metaLock, which is released only by the await.
            state.snapshotsWaiting++;
            boolean writesInFlight;
            try {
                writesInFlight = state.inPlaceWritesInFlight.get() > 0;
                if (writesInFlight) {
                    inPlaceWritesDone.awaitUninterruptibly();
                }
            } finally {
                state.snapshotsWaiting--;
            }
            if (!writesInFlight) {
                break;
            }
            checkOpen();
            checkWritable();
            state = writable(name);
        }
        return makeSnapshot(state, label, startNanos, lockedNanos);
    }

    /** Under metaLock, with no in-place write of the disk in flight (design note 9): makes the snapshot. */
    private SnapshotInfo makeSnapshot(VdiState state, String label, long startNanos, long lockedNanos) {
        String text = label == null ? "" : label;
        if (!text.isEmpty()) {
            requireFreeLabel(state, text);
        }
        long root = trees.share(state.ref.root(), state.ref.height(), LeafKind.DATA);
        long id = nextSnapshotId++;
        SnapshotRecord record = new SnapshotRecord(id, state.record.id(), root, state.record.snapshotLogHead(),
                System.currentTimeMillis(), state.record.sizeBytes(), state.ref.height(), false, text);
        snapshots.put(id, record);
        snapshotTable.markDirty(id);
        if (!text.isEmpty()) {
            state.liveLabels.put(text, id);
        }
        state.liveSnapshots++;
        if (state.oldestLiveSnapshot == 0) {
            state.oldestLiveSnapshot = id;
        }
        state.record = state.record.withSnapshotLogHead(id);
        vdiTable.markDirty(state.record.id());
        latencies.taken(OperationLatencies.Kind.SNAPSHOT, startNanos, lockedNanos, System.nanoTime(), commitsCaptured);
        return snapshotInfo(record);
    }

    /** The snapshot log of VDI {@code name}, oldest first. */
    public List<SnapshotInfo> snapshots(String name) {
        refresh();
        return underMeta(() -> {
            VdiState state = live(name);
            List<SnapshotInfo> result = new ArrayList<>();
            for (long id = state.record.snapshotLogHead(); id != 0; id = snapshots.get(id).previousSnapshotId()) {
                SnapshotRecord record = snapshots.get(id);
                if (!record.deleted()) {
                    result.add(snapshotInfo(record));
                }
            }
            java.util.Collections.reverse(result);
            return result;
        });
    }

    /** Every snapshot of every VDI, deleted ones included, by id (for the forest view). */
    public List<SnapshotInfo> allSnapshots() {
        refresh();
        return underMeta(() -> snapshots.values().stream().map(this::snapshotInfo).toList());
    }

    public SnapshotInfo snapshotInfo(String reference) {
        refresh();
        return underMeta(() -> snapshotInfo(resolveSnapshot(reference)));
    }

    private SnapshotInfo snapshotInfo(SnapshotRecord record) {
        return new SnapshotInfo(record.id(), record.vdiId(), vdis.get(record.vdiId()).record.name(), record.label(),
                record.takenMillis(), record.sizeBytes(), record.deleted());
    }

    public SnapshotInfo label(String snapshotReference, String label) {
        Names.checkLabel(label);
        return mutate(() -> {
            SnapshotRecord record = resolveSnapshot(snapshotReference);
            VdiState state = vdis.get(record.vdiId());
            // An empty label means none (as in snapshot()), and any number of snapshots may have none.
            if (!label.isEmpty() && !label.equals(record.label())) {
                requireFreeLabel(state, label);
            }
            SnapshotRecord relabeled = record.withLabel(label);
            state.liveLabels.remove(record.label(), record.id());
            if (!label.isEmpty()) {
                state.liveLabels.put(label, record.id());
            }
            snapshots.put(record.id(), relabeled);
            snapshotTable.markDirty(record.id());
            return snapshotInfo(relabeled);
        });
    }

    /**
     * Deletes VDI {@code name}. A VDI with live snapshots is refused unless {@code withSnapshots}.
     * Blocks shared with clones or snapshots stay; the rest are freed after the next commit.
     */
    public void deleteVdi(String name, boolean withSnapshots) {
        mutate(() -> {
            VdiState state = writable(name);
            if (state.openHandles > 0) {
                throw new IllegalStateException("disk '" + name + "' is in use by " + state.openHandles
                        + " open connection(s); disconnect them first");
            }
            List<SnapshotRecord> live = new ArrayList<>();
            for (long id = state.record.snapshotLogHead(); id != 0; id = snapshots.get(id).previousSnapshotId()) {
                if (!snapshots.get(id).deleted()) {
                    live.add(snapshots.get(id));
                }
            }
            if (!live.isEmpty() && !withSnapshots) {
                throw new IllegalStateException("disk '" + name + "' has " + live.size()
                        + " snapshot(s); delete them first or delete with snapshots");
            }
            live.forEach(this::requireNoConnections); // refused whole, before any snapshot is deleted
            long oldestLive = state.oldestLiveSnapshot;
            for (SnapshotRecord record : live) {
                deleteSnapshotRecord(record, false);
            }
            sketches.disksSnapshotsDeleted(state, oldestLive);
            trees.release(state.ref.root(), state.ref.height(), LeafKind.DATA);
            held.remove(state.record.id());
            state.record = state.record.asDeleted();
            state.ref = new RootRef(0, state.record.height());
            repin(state);
            liveByName.remove(name);
            vdiTable.markDirty(state.record.id());
            return null;
        });
    }

    /**
     * Deletes a snapshot. Clones made from it keep working: they hold their own references to every
     * block they share with it, so only the blocks nothing else references are freed. The entry stays
     * in the log, marked deleted, so the forest still shows where clones came from.
     */
    public void deleteSnapshot(String snapshotReference) {
        mutate(() -> {
            SnapshotRecord record = resolveSnapshot(snapshotReference);
            if (shared != null) {
                checkHeld(vdis.get(record.vdiId()));
            }
            deleteSnapshotRecord(record, true);
            return null;
        });
    }

    /**
     * Deletes one snapshot record. {@code markSuccessors}: note the snapshots whose sketch base this was
     * (a caller deleting a whole disk's log does that once at the end instead).
     */
    private void deleteSnapshotRecord(SnapshotRecord record, boolean markSuccessors) {
        requireNoConnections(record);
        VdiState owner = vdis.get(record.vdiId());
        boolean oldest = owner.oldestLiveSnapshot == record.id();
        // The next live snapshot in the log: its base changes, and if this was the oldest live one, it is now.
        long newer = markSuccessors || oldest ? sketches.newerLiveSnapshot(record) : 0;
        sketches.releaseBlob(record);
        trees.release(record.rootBlock(), record.height(), LeafKind.DATA);
        snapshots.put(record.id(), record.asDeleted());
        owner.liveLabels.remove(record.label(), record.id());
        owner.liveSnapshots--;
        if (oldest) {
            owner.oldestLiveSnapshot = newer;
        }
        snapshotTable.markDirty(record.id());
        if (markSuccessors) {
            // The snapshots whose base this was now have another (sketch note 4): the next one in the log, and
            // the first live snapshots of the clones made from it or from the deleted ones up to that next one.
            sketches.snapshotDeleted(owner, record.id(), newer);
        }
    }

    private void requireNoConnections(SnapshotRecord record) {
        Integer handles = openSnapshotHandles.get(record.id());
        if (handles != null && handles > 0) {
            throw new IllegalStateException("snapshot " + snapshotInfo(record).reference() + " is in use by "
                    + handles + " open connection(s)");
        }
    }

    private VdiState live(String name) {
        VdiState state = liveByName.get(name);
        if (state == null) {
            throw new NoSuchElementException("no disk named '" + name + "'");
        }
        return state;
    }

    /**
     * A live VDI this store may change: in shared mode one this node holds (its lease valid); alone, any.
     */
    private VdiState writable(String name) {
        VdiState state = live(name);
        if (shared != null) {
            checkHeld(state);
        }
        return state;
    }

    /**
     * Shared mode, right before an in-place device write (the last moment a process can look): this node
     * still holds the disk under a valid lease. Narrows the window in which a node stopped after its check
     * could still write when it resumes to the system call itself (docs/CLUSTER.md, fencing).
     */
    void checkStillHeld(Volume volume) {
        if (shared != null) {
            Holding holding = held.get(volume.vdi.id);
            if (holding == null) {
                throw new NotHeldException("this node no longer holds disk '" + volume.name() + "'");
            }
            if (!mayWrite(volume.vdi.id, holding)) {
                throw new NotHeldException(lapsed(volume.name()));
            }
        }
    }

    private void checkHeld(VdiState state) {
        Holding holding = held.get(state.record.id());
        if (holding == null) {
            throw new NotHeldException("disk '" + state.record.name() + "' is not held by this node"
                    + (state.record.lockHolder() != 0 ? " (node id " + state.record.lockHolder() + " holds it)" : "")
                    + "; changes go to its holder");
        }
        if (!mayWrite(state.id, holding)) {
            throw new NotHeldException(lapsed(state.record.name()));
        }
    }

    private static String lapsed(String disk) {
        return "this node's lease on disk '" + disk + "' has lapsed, and the store does not show that the node still "
                + "holds it (another node took it over, or its record could not be read)";
    }

    /**
     * Whether this node may write VDI {@code vdiId} now: while its lease is valid; once the lease has lapsed
     * (ZooKeeper unreachable past the validity window, or the node paused), for as long as the newest durable
     * record still names this node with this lease's token (design note 10: whoever takes a disk over commits
     * its record before it writes anything, so the record is a fence the store itself keeps). The record is
     * read again whenever the superblock's generation has moved since it was last confirmed: a superblock read
     * per write while the lease has lapsed, a few reads more after each commit by any node.
     */
    private boolean mayWrite(long vdiId, Holding holding) {
        if (holding.valid().getAsBoolean()) {
            return true;
        }
        try {
            Superblock superblock = readSuperblock(device);
            if (superblock.generation() == holding.fencedGeneration) {
                return true;
            }
            DurableHolder holder = DurableHolder.read(device, superblock, vdiId);
            if (holder.node() != space.node() || holder.token() != holding.token()) {
                return false;
            }
            holding.fencedGeneration = holder.generation();
            return true;
        } catch (StorageException unreadable) {
            return false; // a page freed and reused under the read, or damage: unknown counts as taken
        }
    }

    private void requireFreeName(String name) {
        if (liveByName.containsKey(name)) {
            throw new IllegalArgumentException("a disk named '" + name + "' already exists");
        }
    }

    private void requireFreeLabel(VdiState state, String label) {
        Long id = state.liveLabels.get(label);
        if (id != null) {
            throw new IllegalArgumentException("disk '" + state.record.name() + "' already has a snapshot labelled '"
                    + label + "' (id " + id + ")");
        }
    }

    /** Resolves {@code NAME@ID} or {@code NAME@LABEL} to a live snapshot. */
    private SnapshotRecord resolveSnapshot(String reference) {
        int at = reference.indexOf('@');
        if (at <= 0 || at == reference.length() - 1) {
            throw new IllegalArgumentException("'" + reference + "' is not a snapshot reference; write NAME@ID or NAME@LABEL");
        }
        VdiState state = live(reference.substring(0, at));
        String which = reference.substring(at + 1);
        boolean byId = Names.isSnapshotId(which);
        // By id or label directly, not by walking the log: a VDI may have 100,000 snapshots. A live snapshot
        // whose record names this VDI is in its log (the log is every snapshot taken of it).
        Long id = byId ? parseSnapshotId(which) : state.liveLabels.get(which);
        SnapshotRecord record = id == null ? null : snapshots.get(id);
        if (record != null && record.vdiId() == state.record.id() && !record.deleted()
                && (byId ? Long.toString(record.id()).equals(which) : record.label().equals(which))) {
            return record;
        }
        throw new NoSuchElementException("disk '" + state.record.name() + "' has no snapshot "
                + (byId ? "with id " : "labelled ") + which);
    }

    /** The id written in a reference, or null if it is beyond any id (or written with leading zeros). */
    private static Long parseSnapshotId(String digits) {
        try {
            return Long.parseLong(digits);
        } catch (NumberFormatException tooLarge) {
            return null;
        }
    }

    private static void checkVdiSize(long sizeBytes) {
        if (sizeBytes <= 0) {
            throw new IllegalArgumentException("disk size must be positive, got " + sizeBytes);
        }
        if (sizeBytes % 512 != 0) {
            throw new IllegalArgumentException("disk size must be a multiple of 512 bytes, got " + sizeBytes);
        }
        if (sizeBytes > Layout.MAX_VDI_BYTES) {
            throw new IllegalArgumentException("disk size " + sizeBytes + " exceeds the maximum of 256 TiB");
        }
    }

    // ================================================================ snapshot sketches (StoreSketches)

    /** See {@link StoreSketches#catalog}. */
    public SketchCatalog sketchCatalog(boolean store) {
        return sketches.catalog(store);
    }

    /** The snapshots whose stored sketch may have lost its base, which the next pass checks (sketch note 4; for tests). */
    java.util.Set<Long> suspectSketches() {
        return underMeta(sketches::suspects);
    }

    /** Computes and stores the deltas of live snapshots that have no blob, and checks the suspect ones. */
    public int storeMissingSketches() {
        return sketches.storeMissing();
    }

    // ================================================================ volumes

    /**
     * Opens an export: {@code NAME} is the writable VDI, {@code NAME@SNAP} a read-only snapshot.
     * While open, the VDI or snapshot cannot be deleted.
     */
    public Volume openVolume(String exportName) {
        refresh();
        return underMeta(() -> {
            checkOpen();
            if (exportName.indexOf('@') >= 0) {
                SnapshotRecord record = resolveSnapshot(exportName);
                if (shared != null) {
                    checkHeld(vdis.get(record.vdiId())); // only the holder knows the snapshot stays while it is read
                }
                openSnapshotHandles.merge(record.id(), 1, Integer::sum);
                return new Volume(this, exportName, null, record, record.sizeBytes(), true);
            }
            VdiState state = shared != null ? writable(exportName) : live(exportName);
            state.openHandles++;
            repin(state);
            return new Volume(this, exportName, state, null, state.record.sizeBytes(), options.readOnly());
        });
    }

    void closeVolume(Volume volume) {
        underMeta(() -> {
            if (volume.vdi != null) {
                volume.vdi.openHandles--;
                repin(volume.vdi);
            } else {
                openSnapshotHandles.computeIfPresent(volume.snapshot.id(), (id, count) -> count == 1 ? null : count - 1);
            }
            return null;
        });
    }

    /** Physical pointers (0 = hole) of volume blocks [first, first + count). */
    long[] resolve(Volume volume, long firstBlock, int count) {
        long[] physical = new long[count];
        metaLock.lock();
        try {
            long root = volume.vdi != null ? volume.vdi.ref.root() : volume.snapshot.rootBlock();
            int height = volume.vdi != null ? volume.vdi.ref.height() : volume.snapshot.height();
            if (count == 1) {
                physical[0] = Pointer.blockOf(trees.lookup(root, height, firstBlock));
            } else {
                trees.forEachMapped(root, height, firstBlock, firstBlock + count,
                        (index, pointer) -> physical[(int) (index - firstBlock)] = Pointer.blockOf(pointer));
            }
            return physical;
        } catch (CorruptionException corruption) {
            throw fail(corruption);
        } finally {
            metaLock.unlock();
        }
    }

    /**
     * Runs of volume blocks [first, first + count) by state, merged. For a snapshot every mapped block
     * is reported OWNED: nothing can write it, so nothing can need space for it.
     */
    List<MappedRange> mapping(Volume volume, long firstBlock, long count) {
        return underMeta(() -> {
            long root = volume.vdi != null ? volume.vdi.ref.root() : volume.snapshot.rootBlock();
            int height = volume.vdi != null ? volume.vdi.ref.height() : volume.snapshot.height();
            RangeBuilder ranges = new RangeBuilder(firstBlock);
            trees.forEachMappedWithOwnership(root, height, firstBlock, firstBlock + count, (index, pointer, exclusive) ->
                    ranges.add(index, exclusive || volume.vdi == null ? MappedRange.State.OWNED : MappedRange.State.SHARED));
            return ranges.finish(firstBlock + count);
        });
    }

    /** Merges per-block states, visited in index order with holes skipped, into runs. */
    private static final class RangeBuilder {
        private final List<MappedRange> ranges = new ArrayList<>();
        private long runStart;
        private long runEnd;
        private MappedRange.State runState = MappedRange.State.HOLE;

        RangeBuilder(long first) {
            runStart = first;
            runEnd = first;
        }

        void add(long index, MappedRange.State state) {
            if (index > runEnd) {
                extend(index, MappedRange.State.HOLE);
            }
            extend(index + 1, state);
        }

        private void extend(long end, MappedRange.State state) {
            if (state != runState && runEnd > runStart) {
                ranges.add(new MappedRange(runStart, runEnd - runStart, runState));
                runStart = runEnd;
            }
            runState = state;
            runEnd = end;
        }

        List<MappedRange> finish(long end) {
            if (end > runEnd) {
                extend(end, MappedRange.State.HOLE);
            }
            if (runEnd > runStart) {
                ranges.add(new MappedRange(runStart, runEnd - runStart, runState));
            }
            return ranges;
        }
    }

    /** What the write path decided for one block. */
    static final long IN_PLACE = -1;

    /** What {@link #planWrite} returns when only space that a reclamation under way will free is left. */
    static final int RETRY_AFTER_RECLAIM = -1;

    /**
     * Plans a write of volume blocks [first, first + count): for each block either the physical block
     * to overwrite in place, or a freshly allocated block (to be linked by {@link #link}) together
     * with the old pointer to copy partial content from. Returns how many blocks are fresh (0: all in place,
     * and there is nothing to link). If every block is fresh and they lie in one leaf that is shared, so the link
     * will copy it, pins that leaf and puts it in {@code leafCopy[0]} (else null) for {@link #prepareLeafCopy}
     * (design note 11); the caller then passes it to {@link #link}, or to {@link #dropLeafCopy} if it does not link.
     */
    int planWrite(Volume volume, long firstBlock, int count, long[] targets, long[] oldBlocks, boolean[] inPlace,
                  TreeSpace.LeafCopy[] leafCopy) {
        metaLock.lock();
        int allocated = 0;
        int fresh = 0;
        try {
            checkWritable();
            VdiState state = volume.vdi;
            if (shared != null) {
                checkHeld(state);
            }
            boolean snapshotWaiting = state.snapshotsWaiting > 0;
            // What each block maps to now, and whether only this VDI can see it: one walk of the tree for the whole
            // range, not one from the root per block (a 1 MiB write is 256 blocks, all under this lock).
            trees.mapForWrite(state.ref.root(), state.ref.height(), firstBlock, count, oldBlocks, inPlace);
            for (int i = 0; i < count; i++) {
                if (inPlace[i] && !snapshotWaiting) {
                    targets[i] = oldBlocks[i];
                } else {
                    // Copy-on-write, from what the block maps now (oldBlocks[i], 0 for a hole); also of a block only
                    // this VDI holds while a snapshot waits (design note 9).
                    inPlace[i] = false;
                    targets[i] = space.allocate(SpaceMap.Purpose.DATA);
                    allocated = i + 1;
                    fresh++;
                }
            }
            if (fresh < count) {
                state.inPlaceWritesInFlight.incrementAndGet(); // until inPlaceWriteDone (design note 9)
            } else if (shared == null && firstBlock >>> Layout.POINTER_INDEX_BITS == (firstBlock + count - 1) >>> Layout.POINTER_INDEX_BITS) {
                leafCopy[0] = trees.pinSharedLeaf(state.ref.root(), state.ref.height(), firstBlock, LeafKind.DATA);
            }
            return fresh;
        } catch (RuntimeException problem) {
            for (int i = 0; i < allocated; i++) {
                if (!inPlace[i] && targets[i] != 0) {
                    space.decrement(targets[i]); // never linked: free at once
                }
            }
            if (problem instanceof CorruptionException corruption) {
                throw fail(corruption);
            }
            if (problem instanceof StorageException full && full.code() == StorageException.Code.NO_SPACE
                    && reclaimUnderWay()) {
                return RETRY_AFTER_RECLAIM;
            }
            throw problem;
        } finally {
            metaLock.unlock();
        }
    }

    /**
     * A write whose plan overwrote blocks in place ({@link #planWrite} returned fewer fresh blocks than it
     * planned) has finished, linking included: a snapshot of the VDI may go ahead (design note 9).
     */
    void inPlaceWriteDone(Volume volume) {
        VdiState state = volume.vdi;
        if (state.inPlaceWritesInFlight.decrementAndGet() == 0 && state.snapshotsWaiting > 0) {
            metaLock.lock();
            try {
                inPlaceWritesDone.signalAll();
            } finally {
                metaLock.unlock();
            }
        }
    }

    /**
     * Without metaLock (design note 11): references the targets of the shared leaf {@link #planWrite} pinned, for
     * the copy {@link #link} will make of it. Run while the write's data goes to the device.
     */
    void prepareLeafCopy(TreeSpace.LeafCopy leafCopy) {
        try {
            trees.shareTargets(leafCopy);
        } catch (CorruptionException corruption) {
            throw fail(corruption);
        }
    }

    /** A write that {@link #planWrite} gave a pinned leaf did not link: its references are given back (note 11). */
    void dropLeafCopy(TreeSpace.LeafCopy leafCopy) {
        metaLock.lock();
        try {
            trees.finishLeafCopy(leafCopy);
        } finally {
            metaLock.unlock();
        }
    }

    /**
     * Links the freshly written blocks of a planned write into the VDI's tree; {@code leafCopy} (may be null) is
     * the pinned leaf of its plan (design note 11), copied with the references {@link #prepareLeafCopy} took.
     */
    void link(Volume volume, long firstBlock, int count, long[] targets, boolean[] inPlace, TreeSpace.LeafCopy leafCopy) {
        metaLock.lock();
        try {
            VdiState state = volume.vdi;
            changedTrees.add(state);
            for (int i = 0; i < count; i++) {
                if (inPlace[i]) {
                    continue;
                }
                long old = trees.exchange(state.ref, firstBlock + i, Pointer.writable(targets[i]), LeafKind.DATA, leafCopy);
                if (!Pointer.isHole(old)) {
                    trees.release(Pointer.blockOf(old), 0, LeafKind.DATA);
                }
            }
        } catch (CorruptionException corruption) {
            throw fail(corruption);
        } finally {
            try {
                if (leafCopy != null) {
                    trees.finishLeafCopy(leafCopy); // whatever happened above: the pin goes, unused references too
                }
            } finally {
                metaLock.unlock();
            }
        }
    }

    /** Punches holes at every mapped block in [first, first + count). */
    void punch(Volume volume, long firstBlock, long count) {
        metaLock.lock();
        try {
            checkWritable();
            VdiState state = volume.vdi;
            if (shared != null) {
                checkHeld(state);
            }
            changedTrees.add(state);
            List<Long> mapped = new ArrayList<>();
            trees.forEachMapped(state.ref.root(), state.ref.height(), firstBlock, firstBlock + count,
                    (index, pointer) -> mapped.add(index));
            for (long index : mapped) {
                trees.punch(state.ref, index, LeafKind.DATA);
            }
        } catch (CorruptionException corruption) {
            throw fail(corruption);
        } finally {
            metaLock.unlock();
        }
    }

    /** Blocks that lost their last reference and wait for the volume I/O in flight to finish (design note 3). */
    int heldBlocks() {
        return underMeta(trees::heldCount);
    }

    /**
     * Starts a volume I/O: registers in the current I/O epoch (reclamation waits for it, design note 3), once
     * the I/O gate is open (inspections close it). Call before looking up or planning any block
     * address; pass the token to {@link #endIo} after the last device call.
     */
    int beginIo() {
        return ioEpochs.enter();
    }

    void endIo(int token) {
        ioEpochs.exit(token);
    }

    ReentrantLock stripe(Volume volume, long block) {
        long hash = (volume.vdi.record.id() * 0x9E3779B97F4A7C15L) ^ block;
        return stripes[(int) ((hash ^ (hash >>> 29)) & (STRIPES - 1))];
    }

    BlockDevice device() {
        return device;
    }

    // ================================================================ state and helpers

    public StoreGeometry geometry() {
        return geometry;
    }

    public UUID storeId() {
        return durable.storeId();
    }

    public long durableGeneration() {
        return underMeta(() -> durable.generation());
    }

    public boolean readOnly() {
        return options.readOnly() || failure != null;
    }

    /** Space in bytes: the store's size and what its extents hold. */
    public StoreSpace spaceReport() {
        return underMeta(() -> {
            long block = Layout.BLOCK_BYTES;
            long dataBlocks = space.blocksInExtents(ExtentRecord.Type.DATA);
            long dataFree = space.freeBlocks(ExtentRecord.Type.DATA);
            long metaBlocks = space.blocksInExtents(ExtentRecord.Type.METADATA) + space.blocksInExtents(ExtentRecord.Type.SYSTEM);
            long metaFree = space.freeBlocks(ExtentRecord.Type.METADATA) + space.freeBlocks(ExtentRecord.Type.SYSTEM);
            long freeExtentBlocks = space.blocksInExtents(ExtentRecord.Type.FREE);
            // The counter slots at the start of a data extent are the format's own blocks, not data.
            long dataFormatBlocks = 0;
            for (int extent = 0; extent < space.extentCount(); extent++) {
                if (space.extent(extent).type() == ExtentRecord.Type.DATA) {
                    dataFormatBlocks += geometry.reservedBlocks(extent);
                }
            }
            return new StoreSpace(geometry.storeBlocks() * block, (dataBlocks - dataFree - dataFormatBlocks) * block,
                    (metaBlocks - metaFree + dataFormatBlocks) * block, (dataFree + metaFree + freeExtentBlocks) * block);
        });
    }

    /** Store-wide space in bytes; metadata includes the format's own blocks. */
    public record StoreSpace(long totalBytes, long dataBytes, long metadataBytes, long freeBytes) {
    }

    /**
     * Runs {@code inspector} with exclusive access to the store's internals (the checker, the garbage
     * collector and space reports use this; they read the store through the same codecs). No volume
     * I/O, administrative change or commit is in flight meanwhile: a commit between its capture and
     * its reclamation would show nodes not yet on the device and removals not yet applied.
     */
    public <T> T inspect(Function<Internals, T> inspector) {
        commitLock.lock();
        reclaimLock.lock();
        try {
            ioEpochs.close();
            try {
                return underMeta(() -> {
                    drainReclaimQueue(); // removals already durable are applied first (design note 8)
                    return inspector.apply(new Internals());
                });
            } finally {
                ioEpochs.open();
            }
        } finally {
            reclaimLock.unlock();
            commitLock.unlock();
        }
    }

    /**
     * Like {@link #inspect}, after committing under the same exclusive hold, so the inspector sees a
     * settled store (no dirty node, no pending removal) even while clients keep writing: they wait for
     * the inspection, they are not refused. The metadata lock is held from before the commit to the end
     * of the inspection, so no administrative change (which takes only that lock) can slip in between.
     * Read-only stores are inspected as they are.
     */
    public <T> T inspectCommitted(Function<Internals, T> inspector) {
        commitLock.lock();
        reclaimLock.lock();
        try {
            ioEpochs.close();
            try {
                return underMeta(() -> {
                    if (!readOnly()) {
                        commitOnce();
                    }
                    drainReclaimQueue();
                    return inspector.apply(new Internals());
                });
            } finally {
                ioEpochs.open();
            }
        } finally {
            reclaimLock.unlock();
            commitLock.unlock();
        }
    }

    /** A view of the internals, valid only inside {@link #inspect}. */
    public final class Internals {
        public TreeSpace trees() {
            return trees;
        }

        public SpaceMap space() {
            return space;
        }

        public BlockDevice device() {
            return device;
        }

        public Superblock durableSuperblock() {
            return durable;
        }

        /** Live VDIs' current roots and heights, by VDI id. */
        public Map<Long, RootRef> vdiRoots() {
            Map<Long, RootRef> roots = new TreeMap<>();
            for (VdiState state : vdis.values()) {
                if (!state.record.deleted()) {
                    roots.put(state.record.id(), new RootRef(state.ref.root(), state.ref.height()));
                }
            }
            return roots;
        }

        /** Live snapshots' roots and heights, by snapshot id. */
        public Map<Long, RootRef> snapshotRoots() {
            Map<Long, RootRef> roots = new TreeMap<>();
            for (SnapshotRecord record : snapshots.values()) {
                if (!record.deleted()) {
                    roots.put(record.id(), new RootRef(record.rootBlock(), record.height()));
                }
            }
            return roots;
        }

        /** Roots of the three system table trees (leaves are table pages), as they are now (copies). */
        public List<RootRef> tableRoots() {
            List<RootRef> roots = new ArrayList<>();
            for (SystemTable table : List.of(extentTable, vdiTable, snapshotTable)) {
                roots.add(new RootRef(table.rootRef().root(), table.rootRef().height()));
            }
            return List.copyOf(roots);
        }

        /** Live snapshots' sketch blobs: snapshot id → first page (the record's reference). */
        public Map<Long, Long> sketchBlobs() {
            Map<Long, Long> blobs = new TreeMap<>();
            for (SnapshotRecord record : snapshots.values()) {
                if (!record.deleted() && record.sketchBlock() != 0) {
                    blobs.put(record.id(), record.sketchBlock());
                }
            }
            return blobs;
        }

        /**
         * Removals not yet applied (they still count in the counters), and blocks that lost their last
         * reference but are not yet free (they still count 1; inspections apply them first, design note 8).
         */
        public int pendingReleases() {
            return trees.pendingReleaseCount() + reclaimQueue.size() + trees.heldCount();
        }

        /** The roots pinned by a scan in progress (empty when none runs); they count as references. */
        public List<PinnedRoot> pinnedRoots() {
            return List.copyOf(pins);
        }

        /**
         * Takes one extra reference on the root of every live tree — each live VDI, each live snapshot
         * and the three system tables — and returns the pins. Until {@link #releasePins()} the pinned
         * trees are immutable and stay allocated, so a scan may read them from the device without any
         * lock (see {@link PinnedRoot}). A root whose counter is saturated is pinned through a copy, which
         * is committed at once so that the device holds it too. Only inside {@link #inspectCommitted}
         * (nodes not yet on the device would otherwise be pinned), one set of pins at a time.
         */
        public List<PinnedRoot> pinLiveRoots() {
            if (!pins.isEmpty()) {
                throw new IllegalStateException("a garbage collection, check or space report already holds pins on this store");
            }
            if (trees.dirtyNodeCount() != 0 || trees.pendingReleaseCount() != 0) {
                throw new IllegalStateException("roots are pinned right after a commit; the store has "
                        + trees.dirtyNodeCount() + " dirty nodes and " + trees.pendingReleaseCount() + " pending removals");
            }
            checkWritable();
            forgetNodesOthersMayHaveReused();
            trees.forgetSubstitutes(); // no share after the checkpoint names a block the scan may find unreachable
            for (VdiState state : vdis.values()) {
                if (!state.record.deleted()) {
                    pin(state.ref, null, "VDI " + state.record.id());
                }
            }
            for (SnapshotRecord record : snapshots.values()) {
                if (!record.deleted()) {
                    pin(new RootRef(record.rootBlock(), record.height()), null, "snapshot " + record.id());
                }
            }
            List<RootRef> tables = tableRoots();
            for (int i = 0; i < tables.size(); i++) {
                if (tables.get(i).root() != 0) {
                    TablePageCodec.Kind kind = TablePageCodec.Kind.values()[i];
                    pin(tables.get(i), kind, "the " + kind + " table");
                }
            }
            if (trees.dirtyNodeCount() != 0) {
                commitOnce(); // a saturated root was copied: the copy must be on the device before it is scanned
                drainReclaimQueue();
            }
            return List.copyOf(pins);
        }

        private void pin(RootRef root, TablePageCodec.Kind table, String description) {
            PinnedRoot pinned = new PinnedRoot(new RootRef(root.root(), root.height()), table, description);
            long block = trees.share(root.root(), root.height(), pinned.leafKind());
            pins.add(block == root.root() ? pinned : new PinnedRoot(new RootRef(block, root.height()), table, description));
        }

        /** Gives back every pin; like any removal, each takes effect after the next commit. */
        public void releasePins() {
            forgetNodesOthersMayHaveReused();
            for (PinnedRoot pinned : pins) {
                trees.release(pinned.root().root(), pinned.root().height(), pinned.leafKind());
            }
            pins.clear();
        }
    }

    /**
     * Shared mode: pins and their release read trees this node may not hold through its cache, which can still
     * hold images of blocks other nodes have freed and reused since; every clean cached node is dropped first.
     */
    private void forgetNodesOthersMayHaveReused() {
        if (shared != null) {
            cache.forgetClean();
        }
    }

    /**
     * Shared mode: the host's collection barrier (the garbage collector and the checker hold every other node
     * at a commit point through it for their checkpoint); null for a store served alone.
     */
    public CollectionBarrier collectionBarrier() {
        return barrier;
    }

    <T> T underMeta(java.util.function.Supplier<T> action) {
        metaLock.lock();
        try {
            return action.get();
        } catch (CorruptionException corruption) {
            throw fail(corruption);
        } finally {
            metaLock.unlock();
        }
    }

    private <T> T mutate(java.util.function.Supplier<T> action) {
        if (shared != null) {
            return sharedChange(false, action);
        }
        return underMeta(() -> {
            checkOpen();
            checkWritable();
            return action.get();
        });
    }

    /**
     * An admin change in shared mode (design note 10): under the host commit lock, after a rebase, committed
     * at once so the ids it took are on the device before any other node takes more. {@code quiesceIo}: with
     * no volume I/O in flight while it runs (snapshots).
     */
    private <T> T sharedChange(boolean quiesceIo, java.util.function.Supplier<T> action) {
        T result;
        commitLock.lock();
        try {
            checkOpen();
            checkWritable();
            try (SharedCounters.CommitLock ignored = lockHost()) {
                if (quiesceIo) {
                    ioEpochs.close();
                }
                try {
                    result = underMeta(() -> {
                        rebase();
                        return action.get();
                    });
                } finally {
                    if (quiesceIo) {
                        ioEpochs.open();
                    }
                }
                commitUnderLocks();
            }
        } finally {
            commitLock.unlock();
        }
        reclaim(); // as commit() does: what the change freed is free when it returns (design note 8)
        return result;
    }

    /** Shared mode: brings the records other nodes own up to date before a read of them (no-op alone). */
    private void refresh() {
        if (shared == null) {
            return;
        }
        commitLock.lock();
        try (SharedCounters.CommitLock ignored = lockHost()) {
            checkOpen();
            underMeta(() -> {
                rebase();
                return null;
            });
        } finally {
            commitLock.unlock();
        }
    }

    // ================================================================ shared mode: holding VDIs

    /**
     * Shared mode: this node takes VDI {@code name} for writing under a lease whose fencing token is
     * {@code token} and which stays valid while {@code valid} says so (checked before every write). The
     * token goes into the VDI's record with the next commit, which this call makes. If another node held it
     * and never gave it back (it died, or was stopped), a takeover snapshot {@code takeover-NODE-MILLIS} is
     * taken first: the inherited tree becomes shared, so every later write goes copy-on-write to this node's
     * blocks and never to one the old holder could still write (docs/CLUSTER.md). Returns the takeover
     * snapshot's reference, or null.
     *
     * @throws NotHeldException if the record carries a newer token than {@code token} (a stale lease)
     */
    public String hold(String name, long token, BooleanSupplier valid) {
        requireShared();
        java.util.Objects.requireNonNull(valid, "valid");
        return sharedChange(true, () -> {
            VdiState state = live(name);
            VdiRecord record = state.record;
            if (record.lockToken() > token) {
                throw new NotHeldException("disk '" + name + "' was written under a newer lease (token "
                        + record.lockToken() + ") than this one (" + token + ")");
            }
            String takeover = null;
            Holding previous = held.get(record.id());
            // Token 0: nobody writes it under a lease (created, or given up at a clean stop), so nothing can be
            // in flight from an earlier holder and no takeover snapshot is needed.
            if (previous == null && record.lockHolder() != 0 && record.lockToken() != 0) {
                String label = "takeover-" + record.lockHolder() + "-" + System.currentTimeMillis();
                held.put(record.id(), new Holding(token, valid));
                takeover = takeSnapshot(name, label, System.nanoTime()).reference();
            }
            // Nodes of this tree cached while another node held it may name blocks it freed and reused since.
            if (previous == null) {
                trees.forgetCachedTree(state.ref);
            }
            held.put(record.id(), new Holding(token, valid));
            repin(state);
            state.record = state.record.withLock(space.node(), token);
            vdiTable.markDirty(record.id());
            return takeover;
        });
    }

    /**
     * Shared mode: gives VDI {@code name} back. The caller has stopped its I/O; every write so far is
     * made durable, and the record says nobody holds it (the token stays, so a later holder's is larger).
     */
    public void releaseHold(String name) {
        requireShared();
        sharedChange(true, () -> {
            VdiState state = live(name);
            checkHeld(state);
            state.record = state.record.withLock(0, state.record.lockToken());
            vdiTable.markDirty(state.record.id());
            held.remove(state.record.id());
            repin(state);
            return null;
        });
    }

    /**
     * At a clean close in shared mode: every held VDI's record keeps this node as holder with token 0, so
     * this node takes it back when it starts again, and any node may take it without a takeover snapshot
     * (no write of this node can still be in flight once its store is closed).
     */
    private void stopHolding() {
        // One admin change (rebase first, while the records are still this node's; then commit at once).
        sharedChange(false, () -> {
            List<VdiState> released = new ArrayList<>();
            for (long id : held.keySet()) {
                VdiState state = vdis.get(id);
                released.add(state);
                if (!state.record.deleted()) {
                    state.record = state.record.withLock(space.node(), 0);
                    vdiTable.markDirty(id);
                }
            }
            held.clear();
            released.forEach(this::repin);
            return null;
        });
    }

    /**
     * Shared mode in a cluster: from now on this node allocates only in extents it holds a lease on, and new
     * extents come only from the spares the returned leaser keeps (SpaceMap design note 8). The caller runs
     * {@link io.cairn.alloc.ExtentLeaser#refill} in the background (and once before taking any disk: commits
     * need metadata blocks) and closes the leaser after the store.
     */
    public io.cairn.alloc.ExtentLeaser leaseExtents(io.cairn.cluster.LockManager locks,
                                                   java.util.function.Supplier<java.util.Set<Integer>> liveNodes,
                                                   Runnable wakeUp) {
        requireShared();
        io.cairn.alloc.ExtentLeaser leaser = new io.cairn.alloc.ExtentLeaser(shared, space.node(), locks, liveNodes, wakeUp);
        allocateFrom(leaser);
        return leaser;
    }

    /**
     * Shared mode in a cluster: allocates only in extents leased through {@code pool} from now on (a node that
     * has not joined its cluster yet passes one that is empty and says so; {@link #leaseExtents} replaces it).
     */
    public void allocateFrom(io.cairn.alloc.ExtentLeases pool) {
        requireShared();
        underMeta(() -> {
            space.useExtentLeases(pool);
            return null;
        });
    }

    /** Names of the VDIs this node holds (shared mode; empty alone). */
    public List<String> heldVdis() {
        return underMeta(() -> {
            List<String> names = new ArrayList<>();
            for (long id : held.keySet()) {
                names.add(vdis.get(id).record.name());
            }
            java.util.Collections.sort(names);
            return names;
        });
    }

    /** The node id this store writes as in shared mode (0 alone). */
    public int node() {
        return space.node();
    }

    public boolean isShared() {
        return shared != null;
    }

    /** Under metaLock: whether this node holds VDI {@code vdiId} (always true for a store served alone). */
    boolean holds(long vdiId) {
        return shared == null || held.containsKey(vdiId);
    }

    /**
     * Refuses work that reads every tree of the store: in shared mode trees of VDIs other nodes hold change
     * under this node, and their blocks may be freed and reused while it reads.
     */
    void requireAlone(String what) {
        if (shared != null) {
            throw new IllegalStateException(what + " read every disk's tree, which other nodes change while this one "
                    + "reads; run it with the store served by one process");
        }
    }

    private void requireShared() {
        if (shared == null) {
            throw new IllegalStateException("only a store opened shared by several nodes has VDIs to hold");
        }
    }

    /** A change refused because this node does not hold (or no longer holds) the VDI. */
    public static final class NotHeldException extends IllegalStateException {
        public NotHeldException(String message) {
            super(message);
        }
    }

    private void checkWritable() {
        if (failure != null) {
            throw new StorageException(StorageException.Code.READ_ONLY,
                    "the store stopped writing after finding corrupt metadata: " + failure.getMessage());
        }
        if (options.readOnly()) {
            throw new StorageException(StorageException.Code.READ_ONLY, "the store is open read-only");
        }
    }

    void checkOpen() {
        if (closed) {
            throw new StorageException(StorageException.Code.CLOSED, "the store is closed");
        }
    }

    private CorruptionException fail(CorruptionException corruption) {
        if (failure == null) {
            failure = corruption;
        }
        return corruption;
    }

    /**
     * Lends this open store to code that will {@link #close()} it when done — a command a running
     * server executes for a client. The borrower's close commits (so what it did is durable when it
     * returns; the commit is shared with other callers, design note 5) and leaves the store open for its
     * owner; {@link #release(boolean) release(false)} instead asks for the commit without waiting.
     */
    public Store lend() {
        checkOpen();
        lent.incrementAndGet();
        return this;
    }

    /**
     * Commits (unless read-only or failed) and releases the device. A commit's reclamation changes
     * counters that only the next commit writes, so close commits until nothing is left: a closed store
     * has exact counters.
     */
    @Override
    public void close() {
        release(true);
    }

    /**
     * Like {@link #close()}; but a borrower that passes {@code waitForDurable = false} gets its changes
     * committed in the background ({@link #commitSoon()}) instead of waiting for them. The owner's close
     * always commits until settled, whatever it passes.
     */
    public void release(boolean waitForDurable) {
        if (closed) {
            return;
        }
        if (lent.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
            if (!readOnly()) {
                if (waitForDurable) {
                    commit();
                } else {
                    commitSoon();
                }
            }
            return;
        }
        backgroundCommits.stop();
        backgroundReclaim.stop();
        sketches.stop();
        try {
            if (!readOnly()) {
                if (shared != null) {
                    stopHolding();
                }
                commitUntilSettled();
            }
        } finally {
            closed = true;
            if (barrier != null) {
                barrier.close(); // after the last commit: until then a collection must wait for this store too
            }
            device.close();
            if (shared != null) {
                shared.close();
            }
            if (ownerLock != null) {
                try {
                    ownerLock.close();
                } catch (java.io.IOException e) {
                    throw new StorageException(StorageException.Code.IO, "cannot release the store lock", e);
                }
            }
        }
    }

    /**
     * Shared mode, for tests: the process dies here as far as the store is concerned. Nothing more is committed
     * or applied (its pending removals are lost, its allocations and increments stay in the shared counters:
     * leaks), it leaves the collection barrier, and its device and counters are let go.
     */
    void abandonAsIfCrashed() {
        requireShared();
        backgroundCommits.stop();
        backgroundReclaim.stop();
        barrier.close();
        closed = true;
        device.close();
        shared.close();
    }

    /** A name that does not exist. */
    public static final class NoSuchElementException extends java.util.NoSuchElementException {
        public NoSuchElementException(String message) {
            super(message);
        }
    }
}
