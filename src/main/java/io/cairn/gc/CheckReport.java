package io.cairn.gc;

import java.util.List;

/**
 * What {@link Checker} found: every disagreement between the recount of references and the
 * reference counters, every invalid pointer and unreadable metadata block, and (in repair mode)
 * every counter it changed.
 *
 * @param mode              whether counters were repaired
 * @param storeBlocks       blocks in the store
 * @param rootRecords       roots named by live VDI records, live snapshot records and the table trees
 * @param nodesScanned      distinct radix nodes read and verified (each once, however many parents share it)
 * @param tablePagesScanned distinct system table pages read and verified
 * @param dataReferences    pointers from leaf nodes of VDI and snapshot trees to data blocks
 * @param referencesCounted the sum of every block's true count (format-reserved blocks count 1 each)
 * @param blocksReferenced  blocks whose true count is not 0 (format-reserved blocks included)
 * @param blocksAllocated   blocks whose counter is not 0 (format-reserved blocks included)
 * @param damage            findings that break DESIGN §4: a block could be freed or reused while referenced,
 *                          or metadata cannot be trusted
 * @param leaks             findings that only waste space: counters above the true count, unreachable blocks
 * @param repairs           counters changed by repair mode (empty after a plain check, and when damage
 *                          was found: repair never runs on a damaged store)
 */
public record CheckReport(Mode mode, long storeBlocks, long rootRecords, long nodesScanned, long tablePagesScanned,
                          long dataReferences, long referencesCounted, long blocksReferenced, long blocksAllocated,
                          List<Finding> damage, List<Finding> leaks, List<Repair> repairs) {

    public CheckReport {
        damage = List.copyOf(damage);
        leaks = List.copyOf(leaks);
        repairs = List.copyOf(repairs);
    }

    public enum Mode {
        CHECK, REPAIR
    }

    /** How bad a kind of finding is. */
    public enum Severity {
        /** Fatal: references may be lost or metadata is unreadable; never repaired automatically. */
        DAMAGE,
        /** Space is lost, nothing else; repair mode gives it back. */
        LEAK
    }

    public enum Kind {
        /** The counter is below the number of references: the block could be freed while still in use. */
        COUNT_TOO_LOW(Severity.DAMAGE),
        /** A pointer or root names a block whose counter is 0 (free, or in a free extent). */
        REFERENCE_TO_FREE_BLOCK(Severity.DAMAGE),
        /** A pointer or root names a block beyond the end of the store. */
        OUT_OF_RANGE(Severity.DAMAGE),
        /** A pointer or root names a superblock slot or a counter slot. */
        REFERENCE_TO_RESERVED(Severity.DAMAGE),
        /** A node or table page outside a system or metadata extent, or a data block outside a data extent. */
        WRONG_EXTENT_TYPE(Severity.DAMAGE),
        /** A radix node failed its checksum, self-address, type, version or level check. */
        CORRUPT_NODE(Severity.DAMAGE),
        /** A system table page failed its checksum, self-address, type or kind check. */
        CORRUPT_PAGE(Severity.DAMAGE),
        /** One block is reached in two roles (as nodes of different levels or trees, or as node and leaf). */
        CONFLICTING_USE(Severity.DAMAGE),
        /** A root record names an impossible tree height. */
        BAD_ROOT(Severity.DAMAGE),
        /** The counter is above the number of references (and the block is still referenced). */
        COUNT_TOO_HIGH(Severity.LEAK),
        /** The block is allocated but nothing references it. */
        UNREACHABLE(Severity.LEAK);

        public final Severity severity;

        Kind(Severity severity) {
            this.severity = severity;
        }
    }

    /**
     * One problem at one block. {@code counter} is the block's reference counter and {@code trueCount}
     * the recount, where they apply (else -1); {@code detail} says where the reference came from.
     */
    public record Finding(Kind kind, long block, long counter, long trueCount, String detail) {
        @Override
        public String toString() {
            return kind + " at block " + block + (counter >= 0 ? " (counter " + counter + ", true count " + trueCount + ")" : "")
                    + (detail.isEmpty() ? "" : ": " + detail);
        }
    }

    /** A counter that repair mode changed from {@code oldCount} to {@code newCount}. */
    public record Repair(long block, int oldCount, int newCount) {
        @Override
        public String toString() {
            return "block " + block + ": counter " + oldCount + " -> " + newCount;
        }
    }

    /** Counters equal the recount everywhere and every pointer and metadata block is valid. */
    public boolean clean() {
        return damage.isEmpty() && leaks.isEmpty();
    }

    /** Nothing but leaks: safe to use, and repair mode gives the space back. */
    public boolean leaksOnly() {
        return damage.isEmpty() && !leaks.isEmpty();
    }

    /** At least one fatal finding. */
    public boolean damaged() {
        return !damage.isEmpty();
    }

    /** Blocks that leaks keep from being reused: unreachable blocks (a too-high counter frees nothing by itself). */
    public long unreachableBlocks() {
        return leaks.stream().filter(finding -> finding.kind() == Kind.UNREACHABLE).count();
    }

    /** A few lines for people: totals, then every finding and repair. */
    public String summary() {
        StringBuilder text = new StringBuilder();
        text.append(clean() ? "clean" : damaged() ? "DAMAGED" : "leaks only")
                .append(": ").append(storeBlocks).append(" blocks, ")
                .append(rootRecords).append(" roots, ")
                .append(nodesScanned).append(" nodes, ")
                .append(tablePagesScanned).append(" table pages, ")
                .append(dataReferences).append(" data references, ")
                .append(blocksReferenced).append(" blocks referenced, ")
                .append(blocksAllocated).append(" allocated; ")
                .append(damage.size()).append(" damage, ")
                .append(leaks.size()).append(" leaks\n");
        damage.forEach(finding -> text.append("  ").append(finding).append('\n'));
        leaks.forEach(finding -> text.append("  ").append(finding).append('\n'));
        if (mode == Mode.REPAIR) {
            if (damaged()) {
                text.append("not repaired: the store is damaged, and freeing blocks now could lose data\n");
            } else {
                text.append("repaired ").append(repairs.size()).append(" counter(s)\n");
                repairs.forEach(repair -> text.append("  ").append(repair).append('\n'));
            }
        }
        return text.toString();
    }

    @Override
    public String toString() {
        return summary();
    }
}
