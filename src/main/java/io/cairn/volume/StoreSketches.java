package io.cairn.volume;

import io.cairn.alloc.SpaceMap;
import io.cairn.format.BlockHeader;
import io.cairn.format.Layout;
import io.cairn.format.SketchBlobCodec;
import io.cairn.format.SnapshotRecord;
import io.cairn.format.Superblock;
import io.cairn.io.CorruptionException;
import io.cairn.tree.LeafKind;
import io.cairn.tree.TreeSpace;
import io.cairn.volume.Store.VdiState;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The snapshot sketches of one {@link Store} (seed 002, space reporting with a probabilistic data structure):
 * the deltas in memory, their stored blobs, and the background worker that keeps them. It works on the
 * store's records and trees under the store's locks; the store calls it when snapshots are taken or deleted.
 *
 * <p>Design notes ("sketch notes" elsewhere).
 * <ol>
 *   <li>Every live snapshot has a {@link SketchDelta}: theta sketches of the data blocks it holds and its
 *       <em>base</em> does not, and of those the base holds and it does not. The base is the nearest live
 *       snapshot before it in its lineage: back along its own log, then from the snapshot its disk was
 *       cloned from; none (0) for the first snapshot of a disk created empty.</li>
 *   <li>A delta is computed by comparing the two immutable trees, skipping every subtree named by the same
 *       block in both ({@link TreeSpace#forEachDifference}): the cost is what changed between them. Taking a
 *       snapshot does none of it (snapshots stay O(1)); a background worker ({@link StoreOptions#sketchWorker};
 *       once a snapshot is 2 s old, at most one pass a second) or the first report that needs the delta
 *       computes it.</li>
 *   <li>A stored delta is a sketch blob, a chain of CSKB pages named by the snapshot record (one reference,
 *       counted like a root; each page references the next). It is written to fresh blocks under the commit
 *       lock and published in the record afterwards, so no commit or inspection ever sees pages allocated
 *       and unreferenced; the next commit makes the record durable. Deleting the snapshot releases the blob.</li>
 *   <li>A blob names its base. Deleting a snapshot changes the base of the next one, whose blob then no
 *       longer applies: a delta is used only while its base is the snapshot's current base, and otherwise
 *       recomputed (and the stale blob replaced when the store is writable). The same holds for the first live
 *       snapshot of every clone made from the deleted snapshot, or from a deleted one between it and the next
 *       live one (and so on through clones of clones): a deletion marks exactly those for the worker to check,
 *       found through the store's index of clones by source snapshot and each disk's oldest live snapshot
 *       ({@link #snapshotDeleted}), so it costs the clones it affects, not every clone of the store.</li>
 *   <li>Blob pointers are trusted only if the superblock's sketch stamp equals its generation
 *       ({@link Superblock#sketchesTrusted()}); a writer that does not know the feature leaves the stamp 0,
 *       and the pointers are then dropped at open (their pages leak; {@code cairn check --repair} frees them).</li>
 *   <li>Along a lineage of live snapshots each data block is held by one unbroken run of snapshots: a block
 *       a live snapshot holds is never freed, so it cannot come back once a later tree has dropped it. That
 *       makes the content of snapshot t, from an earlier one c on its lineage, (F(c) ∪ added) \ removed over
 *       the deltas in between, and the content of a run of snapshots F(first) ∪ the later added sides
 *       (io.cairn.space.SketchedSpace builds reports on this).</li>
 *   <li>A store served by several nodes (Store design note 10): the node holding a disk keeps its snapshots'
 *       sketches: its worker computes and stores the blob of each snapshot that has none, while it holds the disk
 *       and the snapshot's base's ({@link #keepsSketchOf}): a blob is part of the snapshot record, which only the
 *       holder writes, and only the holder can delete the snapshots whose trees the computation reads through
 *       its cache. It never replaces a blob (a stale one stays until the store is served alone, or its snapshot
 *       is deleted): a report is made on any node and reads blobs without a lock, and a replaced chain could
 *       hand it the first pages of the old blob and the rest of the new one, each page valid. So in a cluster
 *       a blob only ever goes away, and a reader that finds a page reused for anything else (it fails its
 *       checks) computes that delta instead. A report ({@link #checkpointCatalog}) takes a
 *       {@link SpaceCheckpoint}, uses the deltas this node has in memory and the stored blobs that apply, and
 *       computes the rest from the pinned trees; each node keeps the deltas it computed in memory (a delta of
 *       two snapshots never changes while its base stays the snapshot's base), so its next report costs what
 *       changed since. {@code --save} is refused there: a report's node may not hold the disks.</li>
 * </ol>
 */
final class StoreSketches {

    /**
     * Radix nodes a delta computation reads per hold of the metadata lock ({@link #computeDelta}), so snapshots,
     * clones and writes waiting for the lock wait no longer than about a hundred microseconds: the nodes of recent
     * snapshots are often not in the node cache, and each one read from the device costs several microseconds.
     * With 64, under 4 KiB writes and a snapshot every 10 ms, these holds were the metadata lock's largest
     * holder (116 holds over 200 us in a minute, p50 0.47 ms; bench/lib/change_tail.py).
     */
    static final long NODES_PER_HOLD = 16;

    private final Store store;
    /** Deltas in memory (loaded from blobs or computed), by snapshot id; used only while their base is current. */
    private final Map<Long, SketchDelta> sketchDeltas = new HashMap<>();
    /** Pages of the stored sketch blobs this session has read or written, by snapshot id. */
    private final Map<Long, long[]> sketchPages = new HashMap<>();
    /** Snapshots with a stored blob whose base may have changed (a snapshot before them was deleted). */
    private final Set<Long> suspectSketches = new HashSet<>();
    /**
     * For a deleted snapshot: a snapshot further back along its lineage such that every snapshot in between
     * is deleted too (or 0), so walks to the nearest live one skip runs of deleted records ({@link #liveFrom}).
     */
    private final Map<Long, Long> deletedLineageJumps = new HashMap<>();
    private final Object sketchSignal = new Object();
    private boolean sketchWorkPending;
    private volatile boolean stopping;
    private Thread sketchWorker;

    /** The maps here are guarded by the store's metaLock; the worker's signal by {@code sketchSignal}. */
    StoreSketches(Store store) {
        this.store = store;
    }

    /**
     * Under metaLock: snapshot {@code deletedId} of {@code owner} was deleted, and {@code newer} (0: none) is the next
     * live snapshot in its log. The snapshots whose base it was now have another (sketch note 4): {@code newer}, and the
     * first live snapshots of the clones made from it or from the deleted snapshots between it and {@code newer}. Their
     * stored blobs are checked by the next worker pass.
     */
    void snapshotDeleted(VdiState owner, long deletedId, long newer) {
        if (newer != 0) {
            suspectSketches.add(newer);
        }
        markClonesOf(owner, deletedId, newer == 0 ? Long.MAX_VALUE : newer);
        signal();
    }

    /**
     * Under metaLock: {@code disk} is being deleted with its snapshots, of which {@code oldestLive} (0: none) was the
     * oldest live one. Every snapshot from there on was the base of the first live snapshots of clones made from them
     * (sketch note 4); nothing is based on the deleted ones before it (their bases lie further back, and stay).
     */
    void disksSnapshotsDeleted(VdiState disk, long oldestLive) {
        if (oldestLive != 0) {
            markClonesOf(disk, oldestLive, Long.MAX_VALUE);
        }
        signal();
    }

    /** Under metaLock: the snapshots whose stored blob the next pass checks (for tests). */
    Set<Long> suspects() {
        return Set.copyOf(suspectSketches);
    }

    /** Clones made from the snapshots with ids in [fromId, toId) of one disk ({@link #markClonesOf}). */
    private record CloneSources(VdiState disk, long fromId, long toId) {
    }

    /**
     * Marks the first live snapshot of every clone made from a snapshot of {@code disk} with id in [fromId, toId)
     * — snapshots that are all deleted now, the first just now, the others before, so the nearest live snapshot back
     * along each such clone's lineage was the one just deleted — and, since a clone's snapshots before its first live
     * one are deleted too, of the clones made from those in turn (a clone of a clone). Visits only those clones,
     * through the store's index of clones by snapshot: the cost does not grow with the store's other clones.
     */
    private void markClonesOf(VdiState disk, long fromId, long toId) {
        if (disk.clonesBySnapshot == null) {
            return;
        }
        java.util.ArrayDeque<CloneSources> pending = new java.util.ArrayDeque<>();
        pending.push(new CloneSources(disk, fromId, toId));
        while (!pending.isEmpty()) {
            CloneSources sources = pending.pop();
            for (List<VdiState> clones : sources.disk().clonesBySnapshot.subMap(sources.fromId(), true, sources.toId(), false).values()) {
                for (VdiState clone : clones) {
                    long first = clone.oldestLiveSnapshot; // 0 for a clone without live snapshots, deleted ones too
                    if (first != 0) {
                        suspectSketches.add(first);
                    }
                    if (clone.clonesBySnapshot != null) {
                        pending.push(new CloneSources(clone, 0, first == 0 ? Long.MAX_VALUE : first));
                    }
                }
            }
        }
    }

    /**
     * The delta of every live snapshot and of every live disk, computing (and, if {@code store} and the store
     * is writable, storing) those that are missing or stale. Deltas are computed one snapshot at a time, each
     * under a short hold of the metadata lock; the picture itself is assembled under one hold, so it is
     * consistent. Live-disk deltas compare the disk with its newest live snapshot: cost is what was written
     * since (a disk with no snapshot in its lineage is walked whole).
     */
    SketchCatalog catalog(boolean persist) {
        if (store.isShared()) {
            return checkpointCatalog(persist);
        }
        int computed = 0;
        int stored = 0;
        while (true) {
            store.checkOpen();
            List<Long> missing = store.underMeta(() -> {
                List<Long> ids = new ArrayList<>();
                for (SnapshotRecord record : store.snapshots.values()) {
                    if (!record.deleted() && !isCurrent(sketchDeltas.get(record.id()), record)) {
                        ids.add(record.id());
                    }
                }
                return ids;
            });
            for (long id : missing) {
                Refresh refresh = refreshDelta(id, persist);
                computed += refresh.computed ? 1 : 0;
                stored += refresh.stored ? 1 : 0;
            }
            SketchCatalog catalog = store.underMeta(this::assembleCatalog);
            if (catalog != null) {
                return new SketchCatalog(catalog.deltas(), catalog.disks(), computed, stored);
            }
            // A snapshot was taken or deleted meanwhile: bring the new ones up to date too.
        }
    }

    private record Refresh(boolean computed, boolean stored) {
    }

    /** A snapshot whose delta a checkpoint catalog must read from its blob or compute: its record and base, as captured. */
    private record Missing(SnapshotRecord record, long base, long baseRoot) {
    }

    /** A live disk as captured: its live snapshots oldest first, its tree, and its base's root. */
    private record LiveDisk(long vdiId, String name, List<Long> snapshotIds, long base, long baseRoot, long root, int height) {
    }

    /** What {@link #checkpointCatalog} captures inside the checkpoint. */
    private record Captured(Map<Long, SketchDelta> current, List<Missing> missing, List<LiveDisk> disks) {
    }

    /**
     * Shared mode (sketch note 7): the catalogue of a checkpoint every node of the host stopped for
     * ({@link SpaceCheckpoint}). Deltas this node has in memory and that still apply are used as they are; the
     * others come from the snapshot's stored blob if it still reads back whole and applies, else from comparing
     * the pinned trees on the device; they are kept in memory for the next report. Nothing is stored here: in a
     * cluster each disk's holder stores its snapshots' blobs (sketch note 7).
     */
    private SketchCatalog checkpointCatalog(boolean persist) {
        if (persist) {
            throw new IllegalStateException("--save stores sketch blobs, which on a store served by several nodes only"
                    + " the node holding a disk writes, for its snapshots, in the background; drop --save");
        }
        try (SpaceCheckpoint<Captured> checkpoint = SpaceCheckpoint.take(store, internals -> capture())) {
            Captured captured = checkpoint.captured();
            Map<Long, SketchDelta> deltas = new HashMap<>(captured.current());
            int computed = 0;
            for (Missing missing : captured.missing()) {
                SketchDelta delta = storedDelta(missing);
                if (delta == null) {
                    SnapshotSketches.DeltaBuilder builder = new SnapshotSketches.DeltaBuilder();
                    TreeSpace.forEachDifference(checkpoint.nodes(), missing.baseRoot(), missing.record().rootBlock(),
                            missing.record().height(), 0, TreeSpace.capacity(missing.record().height()), builder);
                    delta = builder.finish(missing.record().id(), missing.base());
                    computed++;
                }
                deltas.put(missing.record().id(), delta);
            }
            List<SketchCatalog.Disk> disks = new ArrayList<>();
            for (LiveDisk disk : captured.disks()) {
                SnapshotSketches.DeltaBuilder builder = new SnapshotSketches.DeltaBuilder();
                TreeSpace.forEachDifference(checkpoint.nodes(), disk.baseRoot(), disk.root(), disk.height(), 0,
                        TreeSpace.capacity(disk.height()), builder);
                disks.add(new SketchCatalog.Disk(disk.vdiId(), disk.name(), disk.snapshotIds(), builder.finish(0, disk.base())));
            }
            store.underMeta(() -> {
                for (SketchDelta delta : deltas.values()) {
                    if (isCurrent(delta, store.snapshots.get(delta.snapshotId()))) {
                        sketchDeltas.put(delta.snapshotId(), delta);
                    }
                }
                return null;
            });
            return new SketchCatalog(deltas, disks, computed, 0);
        }
    }

    /** Inside the checkpoint (metaLock held): the deltas that apply, the snapshots without one, the live disks. */
    private Captured capture() {
        sketchDeltas.keySet().removeIf(id -> store.snapshots.get(id) == null || store.snapshots.get(id).deleted());
        Map<Long, SketchDelta> current = new HashMap<>();
        List<Missing> missing = new ArrayList<>();
        for (SnapshotRecord record : store.snapshots.values()) {
            if (record.deleted()) {
                continue;
            }
            SketchDelta delta = sketchDeltas.get(record.id());
            if (isCurrent(delta, record)) {
                current.put(record.id(), delta);
            } else {
                long base = baseOf(record);
                missing.add(new Missing(record, base, base == 0 ? 0 : store.snapshots.get(base).rootBlock()));
            }
        }
        List<LiveDisk> disks = new ArrayList<>();
        for (VdiState state : store.vdis.values()) {
            if (!state.record.deleted()) {
                long base = liveBaseOf(state);
                disks.add(new LiveDisk(state.record.id(), state.record.name(), liveSnapshotsOf(state), base,
                        base == 0 ? 0 : store.snapshots.get(base).rootBlock(), state.ref.root(), state.ref.height()));
            }
        }
        return new Captured(current, missing, disks);
    }

    /**
     * The delta a snapshot's stored blob holds, read without any lock while the nodes serve; null if it has none,
     * it does not apply to the captured base, or it no longer reads back whole. Nodes serving together never replace
     * a blob, so a blob can only go away (its snapshot deleted, its pages freed and reused): every page is verified
     * (magic, checksum, address, owning snapshot, place in the chain), and a page reused for anything else fails.
     */
    private SketchDelta storedDelta(Missing missing) {
        SnapshotRecord record = missing.record();
        if (record.sketchBlock() == 0) {
            return null;
        }
        try {
            List<SketchBlobCodec.Page> pages = new ArrayList<>();
            SketchDelta delta = blobDelta(record, pages, readBlobChain(record, pages));
            return delta.baseSnapshotId() == missing.base() ? delta : null;
        } catch (CorruptionException gone) {
            return null; // deleted meanwhile (or damaged, which cairn check reports): compute it from the pinned trees
        }
    }

    /** Makes the in-memory delta of snapshot {@code id} current: from its blob if that applies, else computed. */
    private Refresh refreshDelta(long id, boolean persist) {
        SketchDelta loaded = store.underMeta(() -> {
            SnapshotRecord record = store.snapshots.get(id);
            if (record == null || record.deleted() || record.sketchBlock() == 0) {
                return null;
            }
            SketchDelta delta = loadDelta(record);
            if (isCurrent(delta, record)) {
                sketchDeltas.put(id, delta);
                suspectSketches.remove(id);
                return delta;
            }
            return null;
        });
        if (loaded != null) {
            return new Refresh(false, false);
        }
        SketchDelta delta = computeDelta(id);
        if (delta == null) {
            return new Refresh(false, false); // deleted meanwhile
        }
        boolean current = store.underMeta(() -> {
            if (isCurrent(delta, store.snapshots.get(id))) {
                sketchDeltas.put(id, delta);
                return true;
            }
            return false;
        });
        boolean stored = current && persist && !store.readOnly() && storeDelta(delta);
        return new Refresh(current, stored);
    }

    /** Under metaLock: the catalogue, or null if some live snapshot has no current delta yet. */
    private SketchCatalog assembleCatalog() {
        Map<Long, SketchDelta> deltas = new HashMap<>();
        for (SnapshotRecord record : store.snapshots.values()) {
            if (record.deleted()) {
                continue;
            }
            SketchDelta delta = sketchDeltas.get(record.id());
            if (!isCurrent(delta, record)) {
                return null;
            }
            deltas.put(record.id(), delta);
        }
        List<SketchCatalog.Disk> disks = new ArrayList<>();
        for (VdiState state : store.vdis.values()) {
            if (state.record.deleted()) {
                continue;
            }
            long base = liveBaseOf(state);
            SnapshotSketches.DeltaBuilder builder = new SnapshotSketches.DeltaBuilder();
            store.trees.forEachDifference(base == 0 ? 0 : store.snapshots.get(base).rootBlock(), state.ref.root(), state.ref.height(),
                    0, TreeSpace.capacity(state.ref.height()), builder);
            disks.add(new SketchCatalog.Disk(state.record.id(), state.record.name(), liveSnapshotsOf(state),
                    builder.finish(0, base)));
        }
        return new SketchCatalog(deltas, disks, 0, 0);
    }

    /** Under metaLock: the live snapshots of a disk's own log, oldest first. */
    private List<Long> liveSnapshotsOf(VdiState state) {
        List<Long> ids = new ArrayList<>();
        for (long id = state.record.snapshotLogHead(); id != 0; id = store.snapshots.get(id).previousSnapshotId()) {
            if (!store.snapshots.get(id).deleted()) {
                ids.add(id);
            }
        }
        java.util.Collections.reverse(ids);
        return List.copyOf(ids);
    }

    /** The snapshot before {@code record} in its lineage: its own log, then where its disk was cloned from. */
    private long lineagePredecessor(SnapshotRecord record) {
        return record.previousSnapshotId() != 0 ? record.previousSnapshotId()
                : store.vdis.get(record.vdiId()).record.parentSnapshotId();
    }

    /**
     * The first live snapshot from {@code snapshotId} back along the lineage (itself if live); 0 if none.
     * Deleted snapshots stay deleted and their predecessors never change, so each deleted snapshot walked
     * past remembers where the walk ended ({@code deletedLineageJumps}) and the next walk jumps there:
     * continuous snapshots leave thousands of deleted records in a log, and without the jumps every call
     * (the sketch worker makes one per slot of a tree it walks, under metaLock) walked all of them.
     */
    private long liveFrom(long snapshotId) {
        long id = snapshotId;
        List<Long> walkedPast = null;
        while (id != 0) {
            SnapshotRecord record = store.snapshots.get(id);
            if (record == null) {
                id = 0; // the log was cut by damage
                break;
            }
            if (!record.deleted()) {
                break;
            }
            if (walkedPast == null) {
                walkedPast = new ArrayList<>();
            }
            walkedPast.add(id);
            Long jump = deletedLineageJumps.get(id);
            long before = jump != null ? jump : lineagePredecessor(record);
            if (before >= id) {
                throw new CorruptionException(store.durable.snapshotTable().rootBlock(), "snapshot " + id
                        + " names snapshot " + before + " as its predecessor; predecessors are older");
            }
            id = before;
        }
        if (walkedPast != null) {
            for (Long deleted : walkedPast) {
                deletedLineageJumps.put(deleted, id);
            }
        }
        return id;
    }

    /** A snapshot's base: the snapshot its delta is relative to (sketch note 1). */
    private long baseOf(SnapshotRecord record) {
        return liveFrom(lineagePredecessor(record));
    }

    private long liveBaseOf(VdiState state) {
        long head = state.record.snapshotLogHead();
        return liveFrom(head != 0 ? head : state.record.parentSnapshotId());
    }

    private boolean isCurrent(SketchDelta delta, SnapshotRecord record) {
        return delta != null && record != null && !record.deleted() && delta.baseSnapshotId() == baseOf(record);
    }

    /**
     * Under metaLock: whether this store computes and stores {@code record}'s sketch itself (sketch note 7): always
     * when served alone; in a cluster only while it holds the snapshot's disk and its base's (no other node can
     * delete either and free their blocks under the walk, which reads them through this node's cache).
     */
    private boolean keepsSketchOf(SnapshotRecord record) {
        if (!store.isShared()) {
            return true;
        }
        long base = baseOf(record);
        return store.holds(record.vdiId()) && (base == 0 || store.holds(store.snapshots.get(base).vdiId()));
    }

    /** The next live snapshot after {@code record} in its own log (0 if it is the newest live one). */
    long newerLiveSnapshot(SnapshotRecord record) {
        long newer = 0;
        for (long id = store.vdis.get(record.vdiId()).record.snapshotLogHead(); id != 0 && id != record.id();
             id = store.snapshots.get(id).previousSnapshotId()) {
            if (!store.snapshots.get(id).deleted()) {
                newer = id;
            }
        }
        return newer;
    }

    /**
     * Compares snapshot {@code id}'s tree with its base's (without a base, with an empty tree: all of it). The
     * walk costs what changed and runs in pieces of at most {@link #NODES_PER_HOLD} nodes, each under its own
     * hold of the metadata lock, checking each time that neither tree was deleted meanwhile: with snapshots
     * every 10 ms, a walk of a whole second's changes under one hold (milliseconds) kept every snapshot
     * and write waiting. Null if the snapshot or its base went away.
     */
    private SketchDelta computeDelta(long id) {
        long[] plan = store.underMeta(() -> {
            SnapshotRecord record = store.snapshots.get(id);
            if (record == null || record.deleted()) {
                return null;
            }
            long base = baseOf(record);
            return new long[] {base, base == 0 ? 0 : store.snapshots.get(base).rootBlock(), record.rootBlock(), record.height()};
        });
        if (plan == null) {
            return null;
        }
        long base = plan[0];
        int height = (int) plan[3];
        SnapshotSketches.DeltaBuilder builder = new SnapshotSketches.DeltaBuilder();
        long capacity = TreeSpace.capacity(height);
        long[] from = {0};
        while (from[0] < capacity) {
            boolean unchanged = store.underMeta(() -> {
                SnapshotRecord record = store.snapshots.get(id);
                if (record == null || record.deleted() || baseOf(record) != base || !keepsSketchOf(record)) {
                    return false;
                }
                from[0] = store.trees.forEachDifferenceWithin(plan[1], plan[2], height, from[0], capacity,
                        NODES_PER_HOLD, builder);
                return true;
            });
            if (!unchanged) {
                return null;
            }
        }
        return builder.finish(id, base);
    }

    /** Under metaLock: reads and verifies the blob named by {@code record}. */
    private SketchDelta loadDelta(SnapshotRecord record) {
        List<SketchBlobCodec.Page> pages = new ArrayList<>();
        long[] blocks = readBlobChain(record, pages);
        sketchPages.put(record.id(), blocks);
        return blobDelta(record, pages, blocks);
    }

    private static SketchDelta blobDelta(SnapshotRecord record, List<SketchBlobCodec.Page> pages, long[] blocks) {
        SketchBlobCodec.Blob blob = SketchBlobCodec.Blob.fromPayload(record.id(), SketchBlobCodec.join(pages), blocks[0]);
        return SnapshotSketches.fromBlob(blob, blocks[0]);
    }

    /** Reads the chain of pages of a snapshot's blob, verifying each; returns their block numbers. */
    private long[] readBlobChain(SnapshotRecord record, List<SketchBlobCodec.Page> pages) {
        List<Long> blocks = new ArrayList<>();
        for (long block = record.sketchBlock(); block != 0; ) {
            if (blocks.size() >= SketchBlobCodec.MAX_PAGES || block >= store.geometry.storeBlocks() || store.space.count(block) == 0) {
                throw new CorruptionException(block, "sketch blob page " + blocks.size() + " of snapshot " + record.id()
                        + (blocks.size() >= SketchBlobCodec.MAX_PAGES ? ": the chain is too long"
                        : ": the block is outside the store or free"));
            }
            ByteBuffer image = BlockHeader.newImage();
            store.device.read(block * Layout.BLOCK_BYTES, image);
            SketchBlobCodec.Page page = SketchBlobCodec.decodePage(image, block, record.id(), blocks.size());
            pages.add(page);
            blocks.add(block);
            block = page.nextPage();
        }
        return blocks.stream().mapToLong(Long::longValue).toArray();
    }

    /** Under metaLock: queues the release of the blob a (live) record names; the caller clears the pointer. */
    void releaseBlob(SnapshotRecord record) {
        sketchDeltas.remove(record.id());
        suspectSketches.remove(record.id());
        long[] pages = sketchPages.remove(record.id());
        if (record.sketchBlock() == 0) {
            return;
        }
        if (pages == null) {
            pages = readBlobChain(record, new ArrayList<>());
        }
        for (long page : pages) {
            store.trees.release(page, 0, LeafKind.PAGE);
        }
    }

    /**
     * Stores a current delta as the snapshot's blob, replacing a stale one (sketch note 3). Returns false if
     * the snapshot or its base changed meanwhile, or the store cannot be written.
     */
    private boolean storeDelta(SketchDelta delta) {
        long id = delta.snapshotId();
        byte[] payload = SnapshotSketches.payload(delta);
        long[] pages = new long[SketchBlobCodec.pagesFor(payload.length)];
        store.commitLock.lock();
        try {
            if (store.closed || store.readOnly()) {
                return false;
            }
            long generation;
            store.metaLock.lock();
            try {
                SnapshotRecord record = store.snapshots.get(id);
                if (!isCurrent(delta, record) || !keepsSketchOf(record) || store.isShared() && record.sketchBlock() != 0) {
                    return false; // a cluster node never replaces a blob (sketch note 7)
                }
                if (record.sketchBlock() != 0) {
                    releaseBlob(record);
                    store.snapshots.put(id, record.withSketchBlock(0));
                    store.snapshotTable.markDirty(id);
                }
                int allocated = 0;
                try {
                    for (; allocated < pages.length; allocated++) {
                        pages[allocated] = store.space.allocate(SpaceMap.Purpose.METADATA);
                    }
                } catch (RuntimeException problem) {
                    for (int i = 0; i < allocated; i++) {
                        store.space.decrement(pages[i]); // never referenced: free at once
                    }
                    throw problem;
                }
                generation = store.trees.generation();
            } finally {
                store.metaLock.unlock();
            }
            List<ByteBuffer> images = SketchBlobCodec.encode(id, payload, pages, generation);
            for (int i = 0; i < pages.length; i++) {
                store.device.write(pages[i] * Layout.BLOCK_BYTES, images.get(i));
            }
            store.metaLock.lock();
            try {
                SnapshotRecord record = store.snapshots.get(id);
                if (!isCurrent(delta, record) || record.sketchBlock() != 0 || !keepsSketchOf(record)) {
                    for (long page : pages) {
                        store.space.decrement(page);
                    }
                    return false;
                }
                store.snapshots.put(id, record.withSketchBlock(pages[0]));
                store.snapshotTable.markDirty(id);
                sketchPages.put(id, pages);
                sketchDeltas.put(id, delta);
                return true;
            } finally {
                store.metaLock.unlock();
            }
        } finally {
            store.commitLock.unlock();
        }
    }

    /**
     * Computes and stores the deltas of live snapshots that have no blob, and checks the suspect ones
     * (what the background worker does, for snapshots old enough, after snapshots and deletions).
     */
    int storeMissing() {
        store.requireAlone("storing snapshot sketches");
        int[] stored = {0};
        storeMissingSketches(Long.MAX_VALUE, stored);
        return stored[0];
    }

    /**
     * Like {@link #storeMissing()} for the snapshots taken at or before {@code takenByMillis}; returns
     * when the earliest of the others was taken (0 if none was left out), and adds the count stored to
     * {@code stored[0]}.
     */
    private long storeMissingSketches(long takenByMillis, int[] stored) {
        long[] earliestLeftOut = {0};
        List<Long> work = store.underMeta(() -> {
            List<Long> ids = new ArrayList<>();
            for (SnapshotRecord record : store.snapshots.values()) {
                if (!record.deleted() && (record.sketchBlock() == 0 || suspectSketches.contains(record.id()) && !store.isShared())
                        && keepsSketchOf(record)) {
                    if (record.takenMillis() <= takenByMillis) {
                        ids.add(record.id());
                    } else if (earliestLeftOut[0] == 0 || record.takenMillis() < earliestLeftOut[0]) {
                        earliestLeftOut[0] = record.takenMillis();
                    }
                }
            }
            return ids;
        });
        for (long id : work) {
            if (stopping || store.closed || store.readOnly()) {
                break;
            }
            stored[0] += refreshDelta(id, true).stored ? 1 : 0;
            store.underMeta(() -> suspectSketches.remove(id));
        }
        return earliestLeftOut[0];
    }

    void start() {
        if (!store.options.sketchWorker() || store.options.readOnly()) {
            return;
        }
        sketchWorker = Thread.ofPlatform().daemon().name("cairn-sketches").start(this::runWorker);
        signal();
    }

    void signal() {
        if (sketchWorker == null) {
            return;
        }
        synchronized (sketchSignal) {
            sketchWorkPending = true;
            sketchSignal.notifyAll();
        }
    }

    /**
     * The worker leaves snapshots younger than this to a later pass. Continuous snapshots ({@link SnapshotSchedule})
     * mostly live shorter and are deleted first, so their sketches would be wasted work — and the first live
     * snapshot of a disk, whose base each retention deletion changes, would be walked whole at every tick. A
     * report computes any sketch still missing itself.
     */
    private static final long SKETCH_MIN_AGE_MILLIS = 2_000;
    /** Least time between two passes of the worker: a burst of snapshots and deletions costs one pass. */
    private static final long SKETCH_PASS_GAP_MILLIS = 1_000;

    private void runWorker() {
        long dueMillis = 0; // when a snapshot left out as too young comes of age; 0 = none
        while (!stopping) {
            synchronized (sketchSignal) {
                while (!sketchWorkPending && !stopping) {
                    long waitMillis = dueMillis == 0 ? 0 : Math.max(1, dueMillis - System.currentTimeMillis());
                    if (dueMillis != 0 && System.currentTimeMillis() >= dueMillis) {
                        break;
                    }
                    try {
                        sketchSignal.wait(waitMillis);
                    } catch (InterruptedException interrupted) {
                        return;
                    }
                }
                sketchWorkPending = false;
            }
            if (stopping) {
                return;
            }
            try {
                long leftOut = storeMissingSketches(System.currentTimeMillis() - SKETCH_MIN_AGE_MILLIS, new int[1]);
                dueMillis = leftOut == 0 ? 0 : leftOut + SKETCH_MIN_AGE_MILLIS;
                pauseWorker(SKETCH_PASS_GAP_MILLIS);
            } catch (RuntimeException problem) {
                // Sketches are an estimate's cache: failing to store one (store full, read-only after damage,
                // closing) must not stop anything else. The next report computes what is missing.
                if (!stopping) {
                    System.getLogger(StoreSketches.class.getName()).log(System.Logger.Level.WARNING,
                            "cannot store snapshot sketches: " + problem.getMessage());
                }
            }
        }
    }

    private void pauseWorker(long millis) {
        long end = System.currentTimeMillis() + millis;
        synchronized (sketchSignal) {
            for (long left = millis; left > 0 && !stopping; left = end - System.currentTimeMillis()) {
                try {
                    sketchSignal.wait(left);
                } catch (InterruptedException interrupted) {
                    return;
                }
            }
        }
    }

    void stop() {
        stopping = true;
        Thread worker = sketchWorker;
        if (worker == null) {
            return;
        }
        signal();
        try {
            worker.join(10_000);
        } catch (InterruptedException interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
