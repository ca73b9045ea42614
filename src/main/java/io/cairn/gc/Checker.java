package io.cairn.gc;

import io.cairn.alloc.SpaceMap;
import io.cairn.io.StorageException;
import io.cairn.volume.Store;

import java.util.ArrayList;
import java.util.List;

/**
 * Recounts every reference in a store and compares the recount with the reference counters
 * (the checker behind {@code cairn check}; STYLE 5).
 *
 * <p>Invariants it checks.
 * <ol>
 *   <li>The true count of a block is: +1 for every root record naming it (live VDIs, live snapshots, the
 *       three system table trees, and the pins of a garbage collection in progress), +1 for every pointer naming it in a reachable radix node — each distinct
 *       node's pointers counted once, however many parents share that node — and +1 if the format reserves
 *       it (superblock slots, counter slots of a held extent).</li>
 *   <li>Every counter of a held extent equals the true count. A counter below it is DAMAGE (the block
 *       could be freed and reused while still referenced: DESIGN §4 forbids it); a counter above it, or an
 *       allocated block nothing reaches, is a LEAK (space lost, nothing else; allowed after a crash).</li>
 *   <li>Every pointer and root names a block inside the store, not reserved by the format, with a
 *       non-zero counter, in an extent of the right type: radix nodes and table pages in system or
 *       metadata extents, data blocks in data extents. Anything else is DAMAGE.</li>
 *   <li>Every reachable radix node and table page passes its checksum, self-address, type and level (or
 *       table kind) checks. A failure is reported for that block and the scan goes on; what lies below an
 *       unreadable node is not counted, so it shows as leaks as well.</li>
 *   <li>Read-only bits are hints (DESIGN §3): a pointer's hint never disagrees with anything the checker
 *       reports.</li>
 *   <li>A live snapshot's sketch blob is one more root: the record references the blob's first page and
 *       each page the next. Every page passes its checks (magic CSKB, checksum, self-address, owning
 *       snapshot, place in the chain) and lies in a system or metadata extent; blob pages are never shared.</li>
 * </ol>
 *
 * <p>How: {@link ReferenceScan} (seed 003 §3.4.3, Algorithm 1), over the live roots and against the
 * live counters.
 *
 * <p>When: counters are exact only right after a commit with nothing else going on, so the checker
 * runs inside {@link Store#inspect} (no I/O, administrative change or commit in flight) and refuses a
 * store with uncommitted changes. It reads the counters the running store holds; they may be lower
 * than the durable ones by the removals applied after the last commit.
 */
public final class Checker {

    private Checker() {
    }

    /**
     * Checks {@code store} without changing anything but the commit it takes first (which makes the
     * counters exact, so a live store being written can be checked; its clients wait for the scan).
     */
    public static CheckReport check(Store store) {
        if (store.isShared()) {
            // Other node processes change trees and counters while this one reads: recount a checkpoint they all
            // stopped for, against the counters copied there (GarbageCollector.recountShared).
            return GarbageCollector.recountShared(store);
        }
        return store.inspectCommitted(internals -> {
            internals.space().checkInvariants();
            return scan(internals, CheckReport.Mode.CHECK);
        });
    }

    /**
     * Checks {@code store} and, unless it finds damage, sets every counter that is too high (leaks and
     * unreachable blocks) to the true count, then commits. The report lists each changed counter.
     * A damaged store is left exactly as it was: freeing what looks unreachable below an unreadable node
     * could free live data.
     */
    public static CheckReport repair(Store store) {
        if (store.readOnly()) {
            throw new StorageException(StorageException.Code.READ_ONLY,
                    "the store is read-only; open it writable to repair its counters");
        }
        if (store.isShared()) {
            // Setting counters outright would overwrite the changes the other nodes make meanwhile.
            throw new IllegalStateException("check --repair sets counters outright, which the other nodes serving this"
                    + " store change at the same time; run cairn gc on it instead (it gives back the same leaks while"
                    + " the nodes serve), or stop every node and run check --repair");
        }
        CheckReport report = store.inspectCommitted(internals -> {
            if (!internals.pinnedRoots().isEmpty()) {
                // Its leaks are being collected: setting them here as well would subtract them twice.
                throw new IllegalStateException("a garbage collection is running on this store; repair after it ends");
            }
            CheckReport found = scan(internals, CheckReport.Mode.REPAIR);
            if (found.damaged()) {
                return found;
            }
            SpaceMap space = internals.space();
            List<CheckReport.Repair> repairs = new ArrayList<>();
            for (CheckReport.Finding leak : found.leaks()) {
                int old = space.count(leak.block());
                int fixed = Math.toIntExact(leak.trueCount());
                space.repairCount(leak.block(), fixed);
                if (fixed == 0) {
                    internals.trees().forgetFreed(leak.block()); // free now: no cached image or substitute may name it
                }
                repairs.add(new CheckReport.Repair(leak.block(), old, fixed));
            }
            return new CheckReport(found.mode(), found.storeBlocks(), found.rootRecords(), found.nodesScanned(),
                    found.tablePagesScanned(), found.dataReferences(), found.referencesCounted(),
                    found.blocksReferenced(), found.blocksAllocated(), found.damage(), found.leaks(), repairs);
        });
        if (!report.repairs().isEmpty()) {
            store.commit();
        }
        return report;
    }

    /** The scan of the settled store {@code internals} shows, against its live counters. */
    private static CheckReport scan(Store.Internals internals, CheckReport.Mode mode) {
        if (internals.trees().dirtyNodeCount() != 0 || internals.pendingReleases() != 0) {
            throw new IllegalStateException("the store has uncommitted changes (" + internals.trees().dirtyNodeCount()
                    + " dirty nodes, " + internals.pendingReleases() + " pending removals); commit before checking:"
                    + " counters are exact only right after a commit");
        }
        return new ReferenceScan(ReferenceScan.rootsOf(internals), ReferenceScan.blobsOf(internals),
                CounterView.live(internals.space()), internals.device())
                .run(mode);
    }
}
