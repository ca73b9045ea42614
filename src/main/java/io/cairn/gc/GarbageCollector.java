package io.cairn.gc;

import io.cairn.alloc.SpaceMap;
import io.cairn.format.ExtentRecord;
import io.cairn.format.Layout;
import io.cairn.io.BlockDevice;
import io.cairn.io.StorageException;
import io.cairn.tree.RootRef;
import io.cairn.volume.PinnedRoot;
import io.cairn.volume.Store;

import java.util.ArrayList;
import java.util.List;

/**
 * The online garbage collector behind {@code cairn gc} (seed 003 §3.4.3, Algorithm 1): gives back what
 * crashes leak while clients keep reading, writing, snapshotting, cloning and deleting.
 *
 * <p>In Cairn the reference counters are the authority and deletions free space at once; what is left
 * to collect are <em>leaks</em>: counters above the number of references, and allocated blocks that
 * nothing reaches. A crash between a commit and the next leaves them, because removals are applied
 * only after the commit that made them durable and reach the disk with the next one (FORMAT.md §5).
 *
 * <p>Three steps; clients wait only during the first and the last, which touch no more than the
 * counters.
 * <ol>
 *   <li><b>Checkpoint</b> ({@link Store#inspectCommitted}, exclusive): commit, so no node is dirty and no
 *       removal pending; pin every live root — each live VDI, each live snapshot (Algorithm 1 step 3) and
 *       the three system tables, whose snapshot table holds the snapshot logs (step 6) — with one extra
 *       reference ({@link Store.Internals#pinLiveRoots()}); record the root set; copy every counter of
 *       every held extent (step 1). Call the copy C.</li>
 *   <li><b>Scan</b> (no lock): {@link ReferenceScan} over the recorded roots, pins included, reading
 *       nodes straight from the device level by level in disk order (steps 2, 4, 5), gives T(b), the
 *       number of references to b in the checkpoint state. Leaks: L(b) = C(b) − T(b) &gt; 0.</li>
 *   <li><b>Apply</b> ({@link Store#inspect}, exclusive): unless the scan found damage, lower each leaking
 *       counter by L(b) from its <em>current</em> value (step 7), release the pins as ordinary removals,
 *       then commit.</li>
 * </ol>
 *
 * <p>Invariants, and why they hold.
 * <ol>
 *   <li><b>The scan reads a frozen state.</b> Every node under a pinned root was on the device at the
 *       checkpoint (the commit came first; a root copied because its counter was saturated is committed by
 *       the pin itself), and is neither overwritten nor freed until the pins are released: the store
 *       never writes durable metadata in place, a node is shadowed by copying while its counter is above
 *       1 (the pin on the root, then the pinned parent on each child), and the pinned parent's reference
 *       keeps every pinned node's counter above 0. Data blocks are never read (and are not overwritten
 *       in place under a pin either: that needs a counter of 1 all along the path). Table pages are
 *       never rewritten in place; a saturated one is copied when a pinned table is shadowed.</li>
 *   <li><b>T is the truth at the checkpoint.</b> The roots are exactly the references from outside any
 *       tree (records, table roots, pins) and C was copied under the same hold, with nothing pending: so
 *       C(b) = T(b) + L(b), where L(b) are the references the counter holds that exist nowhere.</li>
 *   <li><b>A leak outlives the scan unchanged.</b> After the checkpoint every change of a counter is an
 *       increment for a reference made or a decrement for a reference removed (applied after its
 *       commit). Neither touches L(b): a leaked reference exists nowhere, so nothing can remove it, and
 *       a block with T(b) = 0 can gain no reference at all (new references copy existing pointers or
 *       name freshly allocated blocks, and b is neither reachable nor free). Hence at apply time
 *       current(b) = references(b) + pending removals(b) + L(b), and current(b) − L(b) is the exact
 *       counter; for T(b) = 0 it is 0 and current(b) = C(b), which apply verifies. The only other
 *       writers of counters, {@code check --repair} and a second collection, are refused while pins are
 *       held.</li>
 *   <li><b>A live block is never freed.</b> From 3: a counter is lowered only to the number of references
 *       and removals still to apply. A block with T(b) = 0 is named by no tree in memory nor by any commit
 *       since the checkpoint, so it is freed at once (no volume I/O is in flight during the hold). A block
 *       with T(b) &gt; 0 keeps at least one reference until the pins go — the pin itself for a root, the
 *       pointer of its immutable pinned parent otherwise — so its lowered counter is at least 1 (apply
 *       verifies it). Blocks that lost every other reference during the scan are freed when the pins are
 *       released, by the ordinary removal path after the next commit, children in turn. One exception: a root
 *       whose counter was saturated is pinned through a copy, which holds its children but not the root; if
 *       every record naming it lets it go during the scan, its counter is down to its leak, and lowering it
 *       to 0 would skip the release of its children. Such a root is left as it is; the next collection finds
 *       it unreachable and frees it, and its children's references from it as leaks.</li>
 *   <li><b>Damage stops it.</b> A counter below its true count, an unreadable node or an invalid pointer
 *       means the recount cannot be trusted (what lies below an unreadable node looks unreachable): then
 *       nothing is changed and the report names the damage.</li>
 *   <li><b>Crashes are harmless.</b> The collector writes no metadata itself (it only discards the data
 *       blocks it frees); its changes are counters in memory that reach the disk with ordinary commits. A crash (or a close) while pins are held leaves
 *       each pinned root one reference too high on disk: a leak, given back by the next collection.</li>
 * </ol>
 *
 * <p>Shared mode (several node processes serving one store, docs/CLUSTER.md): the checkpoint is taken while
 * every other node store of the host is held at a commit point ({@link io.cairn.volume.CollectionBarrier}),
 * so "nothing pending, counters copied under the same hold as the pins" (invariant 2) holds for the whole
 * store; the pins cover every live root, whichever node holds it. Invariants 3 and 4 then hold across nodes
 * as they do across threads, because every node changes counters only by references made and removed; so
 * apply lowers each leak by one CAS from the current value, while the other nodes go on. A node that dies
 * loses its uncommitted changes and its pending removals: the counters it raised are leaks like any other.
 * A checkpoint any node could not hold all through is undone (its pins released) and the collection fails
 * without changing anything.
 *
 * <p>Threading: {@link #collect} may be called from any thread while the store serves others; one
 * collection per store at a time (a second is refused while the first holds its pins), and in shared mode
 * one per host (the barrier's request word).
 */
public final class GarbageCollector {

    private GarbageCollector() {
    }

    /** The root set, counters and device captured by the checkpoint. */
    private record Checkpoint(List<ReferenceScan.Root> roots, List<ReferenceScan.Blob> blobs, CounterView counters,
                              BlockDevice device, int pinned, java.util.Set<Long> unpinnedRoots) {
    }

    /** What apply changed. */
    private record Applied(long referencesRemoved, long blocksFreed) {
    }

    /**
     * Collects the garbage of {@code store}: checkpoint, scan without lock, apply (see the class notes).
     *
     * @throws StorageException READ_ONLY if the store cannot be written
     * @throws IllegalStateException if a collection is already running on it
     */
    public static GcReport collect(Store store) {
        return collect(store, () -> { });
    }

    /**
     * {@link #collect(Store)} with a fault point: {@code afterCheckpoint} runs on the calling thread once
     * the roots are pinned, before the scan, with no store lock held (tests change the store there to
     * make the scan and the changes overlap deterministically).
     */
    static GcReport collect(Store store, Runnable afterCheckpoint) {
        if (store.readOnly()) {
            throw new StorageException(StorageException.Code.READ_ONLY,
                    "the store is read-only; open it writable to collect garbage");
        }
        long started = System.nanoTime();
        Checkpoint checkpoint = checkpoint(store);
        long checkpointNanos = System.nanoTime() - started;
        long scanStarted = System.nanoTime();
        CheckReport found = scan(store, checkpoint, afterCheckpoint);
        long applyStarted = System.nanoTime();
        Applied applied = store.inspect(internals -> {
            try {
                if (store.readOnly()) {
                    throw new StorageException(StorageException.Code.READ_ONLY, "the store stopped writing during the"
                            + " collection; nothing was collected");
                }
                return found.damaged() ? new Applied(0, 0) : apply(internals, found.leaks(), checkpoint.unpinnedRoots());
            } finally {
                internals.releasePins();
            }
        });
        long appliedAt = System.nanoTime();
        store.commit();
        return new GcReport(found.storeBlocks(), checkpoint.pinned(), found.nodesScanned(), found.tablePagesScanned(),
                found.blocksAllocated(), found.damage(), found.leaks(), applied.referencesRemoved(), applied.blocksFreed(),
                checkpointNanos, applyStarted - scanStarted, appliedAt - applyStarted);
    }

    /**
     * The recount of {@link Checker#check} for a store served by several nodes: the checkpoint and scan of a
     * collection (every node held at a commit point for the checkpoint), compared with the counters copied
     * there; nothing is changed but the pins, which are given back. Sound while the nodes keep serving, where
     * a recount against the live counters would race their changes.
     */
    static CheckReport recountShared(Store store) {
        if (!store.isShared()) {
            throw new IllegalArgumentException("a store served alone is checked under its own exclusive hold");
        }
        CheckReport found = scan(store, checkpoint(store), () -> { });
        store.inspect(internals -> {
            internals.releasePins();
            return null;
        });
        store.commit();
        return found;
    }

    /**
     * Step 1: commit, pin every live root and copy the counters under the store's exclusive hold; in shared
     * mode with every other node process of the host held at a commit point meanwhile
     * ({@link io.cairn.volume.CollectionBarrier}), so the counters copied are those of the durable state of the
     * whole store (invariant 2 needs nothing to change between the pins and the copy, on any node).
     */
    private static Checkpoint checkpoint(Store store) {
        java.util.function.Supplier<Checkpoint> take = () -> store.inspectCommitted(internals -> {
            List<PinnedRoot> pins = internals.pinLiveRoots();
            java.util.Set<Long> unpinned = new java.util.HashSet<>(internals.vdiRoots().values().stream()
                    .map(RootRef::root).toList());
            internals.snapshotRoots().values().forEach(root -> unpinned.add(root.root()));
            internals.tableRoots().forEach(root -> unpinned.add(root.root()));
            pins.forEach(pin -> unpinned.remove(pin.root().root()));
            return new Checkpoint(ReferenceScan.rootsOf(internals), ReferenceScan.blobsOf(internals),
                    CounterView.copyOf(internals.space()), internals.device(), pins.size(), unpinned);
        });
        io.cairn.volume.CollectionBarrier barrier = store.collectionBarrier();
        return barrier == null ? take.get() : barrier.withOthersFrozen(take, unused -> releasePins(store));
    }

    /** Steps 2 to 6 without any lock; on failure the pins are given back. */
    private static CheckReport scan(Store store, Checkpoint checkpoint, Runnable afterCheckpoint) {
        try {
            afterCheckpoint.run();
            ReferenceScan scan = new ReferenceScan(checkpoint.roots(), checkpoint.blobs(), checkpoint.counters(),
                    checkpoint.device());
            return scan.run(CheckReport.Mode.CHECK);
        } catch (RuntimeException | Error problem) {
            try {
                releasePins(store);
            } catch (RuntimeException second) {
                problem.addSuppressed(second);
            }
            throw problem;
        }
    }

    private static void releasePins(Store store) {
        store.inspect(internals -> {
            internals.releasePins();
            return null;
        });
    }

    /**
     * Step 7: lowers every leaking counter by its leak; verifies invariants 3 and 4 for all before changing any.
     * Each counter is lowered by one atomic step from its current value ({@link SpaceMap#lowerCount}): in shared
     * mode the other nodes go on changing counters meanwhile (their changes are references made and removed,
     * which invariant 3 shows never touch the leak), and the collector coordinates with them only through
     * those compare-and-swaps (seed 003 §3.4.3).
     */
    private static Applied apply(Store.Internals internals, List<CheckReport.Finding> leaks, java.util.Set<Long> unpinnedRoots) {
        SpaceMap space = internals.space();
        List<String> broken = new ArrayList<>();
        for (CheckReport.Finding leak : leaks) {
            long excess = leak.counter() - leak.trueCount();
            int current = space.count(leak.block());
            // Unreachable at the checkpoint: nothing can reference it since (it is allocated, so it cannot be
            // handed out again, and no tree names it), so its counter cannot fall; a rise can only be a new
            // leak, which stays for the next collection. A root whose counter was saturated was pinned through a
            // copy (the copy protects its children, not the root itself): its records may all have let it go.
            if (leak.trueCount() == 0 ? current < leak.counter()
                    : current <= excess && !unpinnedRoots.contains(leak.block())) {
                broken.add("block " + leak.block() + ": counter " + leak.counter() + " and true count " + leak.trueCount()
                        + " at the checkpoint, counter " + current + " now");
            }
        }
        if (!broken.isEmpty()) {
            throw new IllegalStateException("counters changed during the collection in a way references cannot"
                    + " explain; nothing was collected: " + String.join("; ", broken));
        }
        long removed = 0;
        long freed = 0;
        for (CheckReport.Finding leak : leaks) {
            long block = leak.block();
            int excess = Math.toIntExact(leak.counter() - leak.trueCount());
            boolean unreachable = leak.trueCount() == 0;
            if (unreachable && space.extent(space.geometry().extentOf(block)).type() == ExtentRecord.Type.DATA) {
                // Before it is free: once free, another node may allocate and write it at once. Nothing reads an
                // unreachable block, so discarding it first is harmless even if it is not freed after all.
                internals.device().discard(block * Layout.BLOCK_BYTES, Layout.BLOCK_BYTES);
            }
            // A block reachable at the checkpoint keeps its pinned parent's reference (or the pin) until the pins go.
            int lowered = space.lowerCount(block, excess, unreachable ? 0 : 1);
            if (lowered < 0 && unpinnedRoots.contains(block)) {
                continue; // an unpinned root that lost its last record meanwhile: the next collection frees it
            }
            if (lowered < 0) {
                throw new IllegalStateException("block " + block + ": its counter fell below its " + excess
                        + " leaked reference(s) and the reference its pinned parent keeps, during the collection");
            }
            removed += excess;
            if (lowered == 0) {
                internals.trees().forgetFreed(block);
                freed++;
            }
        }
        return new Applied(removed, freed);
    }
}
