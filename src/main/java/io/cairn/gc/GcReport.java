package io.cairn.gc;

import io.cairn.format.Layout;

import java.util.List;

/**
 * What one {@link GarbageCollector} run did.
 *
 * @param storeBlocks          blocks in the store (the blockstore the scan covers)
 * @param rootsPinned          live roots pinned at the checkpoint (VDIs, snapshots, system tables)
 * @param nodesScanned         distinct radix nodes read from the device and verified
 * @param tablePagesScanned    distinct system table pages read and verified
 * @param blocksAllocated      blocks allocated at the checkpoint (format-reserved blocks included)
 * @param damage               findings that forbid collecting (a counter below the true count, an
 *                             unreadable node, a bad pointer): nothing was changed
 * @param leaks                counters above the true count at the checkpoint, including allocated
 *                             blocks nothing reaches (true count 0)
 * @param referencesRemoved    the sum over the leaks of counter minus true count: what was subtracted
 * @param blocksFreed          allocated blocks nothing referenced (true count 0), now free; blocks whose
 *                             only references left were leaked ones lost the others during the scan and
 *                             are freed when the pins are released, like any deletion
 * @param checkpointNanos      the first exclusive hold: commit, pin the roots, copy the counters
 * @param scanNanos            the scan, with no store lock held
 * @param applyNanos           the second exclusive hold: lower the counters, release the pins
 */
public record GcReport(long storeBlocks, int rootsPinned, long nodesScanned, long tablePagesScanned, long blocksAllocated,
                       List<CheckReport.Finding> damage, List<CheckReport.Finding> leaks, long referencesRemoved,
                       long blocksFreed, long checkpointNanos, long scanNanos, long applyNanos) {

    public GcReport {
        damage = List.copyOf(damage);
        leaks = List.copyOf(leaks);
    }

    public boolean damaged() {
        return !damage.isEmpty();
    }

    public long storeBytes() {
        return storeBlocks * Layout.BLOCK_BYTES;
    }

    public long bytesFreed() {
        return blocksFreed * Layout.BLOCK_BYTES;
    }

    /** Metadata blocks read: radix nodes and table pages (data blocks are never read). */
    public long blocksScanned() {
        return nodesScanned + tablePagesScanned;
    }

    /** Time clients had to wait: the two exclusive holds. */
    public long pauseNanos() {
        return checkpointNanos + applyNanos;
    }

    /**
     * The rate as Parallax reports it (seed 003 §6.4): store size over scan time, in GB (10^9 bytes) of
     * blockstore per second.
     */
    public double gigabytesPerSecond() {
        return (double) storeBytes() / Math.max(scanNanos, 1); // bytes per nanosecond = GB per second
    }

    /** A few lines for people. */
    public String summary() {
        StringBuilder text = new StringBuilder();
        text.append(damaged() ? "DAMAGED, nothing collected" : leaks.isEmpty() ? "no garbage" : "collected")
                .append(": ").append(storeBlocks).append(" blocks (").append(storeBytes()).append(" bytes), ")
                .append(rootsPinned).append(" roots pinned, ")
                .append(blocksScanned()).append(" metadata blocks scanned (").append(nodesScanned).append(" nodes, ")
                .append(tablePagesScanned).append(" table pages), ")
                .append(blocksAllocated).append(" allocated; ")
                .append(leaks.size()).append(" leaks, ")
                .append(referencesRemoved).append(" references removed, ")
                .append(blocksFreed).append(" blocks freed (").append(bytesFreed()).append(" bytes)\n");
        text.append(String.format(java.util.Locale.ROOT, "scan %.3f s at %.2f GB/s of blockstore; clients paused %.3f ms"
                        + " (checkpoint %.3f ms, apply %.3f ms)%n",
                scanNanos / 1e9, gigabytesPerSecond(), pauseNanos() / 1e6, checkpointNanos / 1e6, applyNanos / 1e6));
        damage.forEach(finding -> text.append("  damage: ").append(finding).append('\n'));
        leaks.forEach(finding -> text.append("  leak:   ").append(finding).append('\n'));
        return text.toString();
    }

    @Override
    public String toString() {
        return summary();
    }
}
