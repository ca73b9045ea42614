package io.cairn.tree;

import io.cairn.alloc.RefcountSaturatedException;
import io.cairn.alloc.SpaceMap;
import io.cairn.format.BlockHeader;
import io.cairn.format.Layout;
import io.cairn.format.NodeCodec;
import io.cairn.format.Pointer;
import io.cairn.io.BlockDevice;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Every radix tree of the store — virtual disks, snapshots and system tables — over one node
 * cache and one space map (seed 003 §3.2–3.3, seed 000).
 *
 * <p>Design notes.
 * <ol>
 *   <li>A node may be changed in place only if it was created in the open transaction (its generation
 *       is the open one) and its counter is 1. Any other node is shadowed first: if its counter is 1 it
 *       is <em>moved</em> (the copy takes over its references and the old block is freed once the
 *       commit is durable); if it is shared it is <em>copied</em> (every child gains a reference and
 *       the old node loses one). Durable metadata is therefore never overwritten.</li>
 *   <li>Children are written before parents reach the device: a commit writes every dirty node, then
 *       makes them durable, then writes the superblock that names the new roots (soft updates).</li>
 *   <li>Increments are applied at once. Decrements are queued as {@link Release}s and applied only
 *       after the commit that removed the reference is durable, so a counter in memory is never below
 *       the references that pointers hold, durable or in memory, and a block is never reused while a
 *       durable pointer names it. A reference that no pointer holds (a write's pin, note 6) is given back
 *       at once unless it is the last: the counter may then be below one a commit captured with the pin
 *       (a leak if the power goes before the next commit), never below the references.</li>
 *   <li>A block whose last reference is removed by {@link #applyReleases} is not freed there: it is
 *       <em>held</em> (counter left at 1, see SpaceMap's design notes) until the store calls
 *       {@link #freeHeld}, once no volume I/O that may still read or write it is in flight. A freed node
 *       still releases its children at once (its image is in memory or on the device, which nothing
 *       overwrites while the block is held).</li>
 *   <li>Sharing a block whose counter is saturated copies it instead (a data block or table page is
 *       copied; a node is copied with its children shared in turn), and the copy is then shared in its place
 *       until it saturates in turn: see <em>Substitutes</em> below.</li>
 *   <li>Not thread-safe: the store calls it under its metadata lock, with two exceptions, the two counter passes
 *       of copy-on-write (up to 512 counter changes each, most of the work of a leaf copy and of a reclamation);
 *       counter changes are atomic (SpaceMap design note 6), so they need no lock of their own.
 *       <ul>
 *         <li>The reclaimer (one thread at a time: the store's reclaim lock) releases the targets of a freed
 *             leaf ({@link #releaseTargets}) without the metadata lock: the leaf's pointers are its own (its node
 *             left the cache when it was freed, and a held block is not reused), and the held list is the
 *             reclaimer's, changed and freed only by it; {@link #heldCount} is volatile for the lock holders that
 *             ask. The substitute maps are the lock's: a target that a substitute entry names is released under
 *             the lock instead (substitutes rule 7).</li>
 *         <li>A write that will copy a shared leaf pins the leaf under the lock ({@link #pinSharedLeaf}: one
 *             reference more), references its targets for the copy without the lock ({@link #shareTargets}),
 *             and links with the copy made ({@link #exchange(RootRef, long, long, LeafKind, LeafCopy)}), then
 *             gives the pin back ({@link #finishLeafCopy}). Why this is sound: the pinned leaf has a count of 2
 *             or more, so it is not changed in place (note 1) nor freed, and its pointer array stays as it is;
 *             its targets keep its references, so none can be freed while the pass runs. The extra references
 *             exist before any pointer that needs them (a commit that captures counters meanwhile writes them
 *             above the references: a leak if the power goes then, never a counter below its references).
 *             Counts above the references only make {@link #mapForWrite} and {@link #writable} more careful
 *             (a copy instead of an in-place change). Whatever the link finds — the leaf copied by another
 *             write meanwhile, or no longer shared — an unused copy's references are taken back at once. The pin
 *             is given back at once too if the leaf has other references: no pointer ever held it, so no durable
 *             pointer loses a reference (the rule of note 3 is for removals of pointers), the leaf keeps a count
 *             of 1 or more and is not freed, and a commit that captured the pin wrote a count above the
 *             references (a leak if the power goes before the next commit, which writes the lower count: the
 *             decrement sets the dirty bit again). Leaf counters change only under the lock (the two passes
 *             change targets', and no leaf is a leaf's target), so the test and the decrement are one step.
 *             Only a pin that is the leaf's last reference is released after the next commit, like any removal,
 *             so that the leaf is held and its targets released by {@link #applyReleases}. (Held until a commit,
 *             pins of a transaction's writes piled up on one leaf: near the counter limit each write then found
 *             it, or its substitute, saturated and made a fresh copy.) Inspections, the checker and the garbage
 *             collector close the I/O gate, so they never see a write between its plan and its link.</li>
 *       </ul></li>
 *   <li>Shadows of virtual-disk tree nodes are counted ({@link #shadows}): a copied leaf is what a snapshot
 *       costs the writes after it (512 increments now, 512 decrements when the snapshot goes), a moved node
 *       what a commit costs them (no counter changes); benchmarks read the counts with {@code cairn stats}.</li>
 * </ol>
 *
 * <p>Substitutes (design note 5). Thousands of clones of one golden image each reference the image's nodes;
 * past the limit of the store's counters (FORMAT §7: 255 references with 1-byte counters, 65,535 with 2-byte)
 * every further share would copy. Instead the most recent copy made of a saturated block B is remembered as its
 * <em>substitute</em> and shared in B's place, until the substitute saturates in turn; then a new copy is made
 * and remembered. N shares beyond a limit of M so make about N / M copies, not N. The rules that keep a substitute content-identical to B and allocated:
 * <ol>
 *   <li>Only blocks whose increment was refused have an entry ({@link #latestCopies}, with the reverse map
 *       {@link #copiedFrom}), so the maps hold a handful of entries. They live in memory only: after a reopen
 *       the first share of a saturated block makes a fresh copy and remembers that one, so each reopen may
 *       waste one copy per saturated block that is shared again (it is referenced, so it is no leak).</li>
 *   <li>A substitute is made from B when an increment of B (or of B's substitute) is refused, and is then
 *       referenced once, by the node, record or pin that asked. B's own content cannot change while B's
 *       counter is above 1, and neither can the copy's while its counter is above 1.</li>
 *   <li>A copy stands for everything it maps, so it stops being a substitute when anything under it may
 *       change. The only ways a block's content or anything under it changes, or its block is given up, are: a
 *       node changed in place or <em>moved</em> ({@link #writable}: counter 1; a moved node hands its
 *       children's references to its shadow, so it must never gain another parent), a data block written in
 *       place (the store asks {@link #mapForWrite} first), and a block freed (its last reference
 *       released, {@link #hold}; a fresh node freed by {@link #punch}; a leak freed by the garbage collector
 *       or a repair, {@link #forgetFreed}). Each of these calls {@link #forgetSubstitute} first, which drops
 *       the entry naming the block as original or as copy. A block below a copy changes in place only through
 *       a path on which every node has counter 1 (a node with two parents is never changed in place, nor is
 *       anything under it), so the path passes through the copy: {@link #writablePath} visits every node of
 *       it with {@link #writable}, and {@link #mapForWrite} drops every node of the path it approves. So
 *       an entry's copy is never handed out after it or anything under it could have been written (by its
 *       first holder, while it is the only one), and never after it or B was freed.</li>
 *   <li>Every kind of block follows these rules: data blocks, inner nodes and leaves (copied with their
 *       children shared in turn, which may find those children's substitutes) and table pages. Table pages are
 *       never changed in place (a changed page goes to a new block) and are shared only by pins, one at a time,
 *       so in practice they never saturate.</li>
 *   <li>A pin or a check starts from a settled store: {@link #forgetSubstitutes} drops every entry when the
 *       store pins its roots (io.cairn.volume.Store.Internals#pinLiveRoots), so the garbage collector's rule
 *       "a block unreachable at the checkpoint gains no reference later" still holds. The next share of each
 *       saturated block makes one fresh copy.</li>
 *   <li>Shared mode (several processes, one counter map, io.cairn.alloc.SharedCounters) keeps no substitutes:
 *       another node may take over the disk that holds a copy's only reference and write it in place, or free
 *       it, and this process would not see it. Sharing a saturated block there copies each time, as before.</li>
 *   <li>The maps are changed and read under the metadata lock only; the reclaimer's pass without it (note 6)
 *       reads {@link #substituteBlocks}, the blocks the maps name, republished under the lock at every change, and
 *       leaves the release of a freed leaf's target found there to the lock ({@link #releaseDeferredTargets}),
 *       where a target that loses its last reference is held with its entry dropped (rule 3). A target the pass
 *       releases itself cannot be named by an entry made later: a copy is a fresh block, and the target is
 *       allocated until the pass holds it; an original is named when a holder of a reference to it shares it,
 *       and a target the pass holds has no holder left, since every reference the batch did not free outlives
 *       the pass (their releases come in later batches). Without this, a share under the lock could hand out a
 *       copy the pass had just held (its counter at 1 and about to be freed) before the pass dropped the entry,
 *       and both threads would change one HashMap.</li>
 * </ol>
 */
public final class TreeSpace {

    private final BlockDevice device;
    private final SpaceMap space;
    private final NodeCache cache;
    private long generation;
    private Map<Long, Node> dirtyNodes = new LinkedHashMap<>();
    private List<Release> releases = new ArrayList<>();
    /** Blocks that lost their last reference and are held (design note 4); {@link #heldCount} entries; the reclaimer's (note 6). */
    private long[] held = new long[64];
    private volatile int heldCount;
    /** The targets of one freed leaf that lost their last reference ({@link #applyReleases}). */
    private final long[] unreferencedScratch = new long[Layout.POINTERS_PER_NODE];
    /** Shadows made in virtual-disk trees since the store opened or {@link #resetShadows} (design note 7). */
    private long leavesCopied;
    private long innerNodesCopied;
    private long nodesMoved;
    /** Saturated block → the copy shared in its place (substitutes, rule 1); empty in shared mode. */
    private final Map<Long, Long> latestCopies = new HashMap<>();
    /** The reverse of {@link #latestCopies}: copy → the saturated block it stands in for. */
    private final Map<Long, Long> copiedFrom = new HashMap<>();
    /**
     * Every block {@link #latestCopies} names, as saturated original or as copy, sorted: what the reclaimer reads
     * without the metadata lock to leave those blocks' releases to the lock (design note 6; substitutes rule 7).
     * Republished under the lock whenever an entry is added or dropped.
     */
    private volatile long[] substituteBlocks = new long[0];
    /**
     * Targets of freed leaves named by a substitute entry when {@link #releaseTargets} ran: released under the
     * metadata lock instead ({@link #releaseDeferredTargets}), as block &lt;&lt; 1 | data. The reclaimer's.
     */
    private long[] deferredTargets = new long[16];
    private int deferredTargetCount;
    /** Copies made because a counter was saturated, since the store opened (each one share's worth of work). */
    private long saturatedCopies;

    public TreeSpace(BlockDevice device, SpaceMap space, NodeCache cache, long openGeneration) {
        this.device = device;
        this.space = space;
        this.cache = cache;
        this.generation = openGeneration;
    }

    public long generation() {
        return generation;
    }

    /** Nodes created or changed in the open transaction. */
    public int dirtyNodeCount() {
        return dirtyNodes.size();
    }

    public SpaceMap space() {
        return space;
    }

    public NodeCache cache() {
        return cache;
    }

    // ---------------------------------------------------------------- reading

    /** The slot of a node at {@code level} (1 = leaf) on the path to leaf entry {@code index}. */
    public static int slotAt(long index, int level) {
        return (int) (index >>> (Layout.POINTER_INDEX_BITS * (level - 1))) & (Layout.POINTERS_PER_NODE - 1);
    }

    /** Capacity in leaf entries of a tree of {@code height}. */
    public static long capacity(int height) {
        return 1L << (Layout.POINTER_INDEX_BITS * height);
    }

    /** The leaf pointer at {@code index}, or 0 for a hole. */
    public long lookup(long root, int height, long index) {
        long block = root;
        for (int level = height; level >= 1; level--) {
            if (block == 0) {
                return 0;
            }
            Node node = cache.get(block, level);
            long pointer = node.pointers[slotAt(index, level)];
            if (level == 1) {
                return pointer;
            }
            block = Pointer.blockOf(pointer);
        }
        return 0;
    }

    /**
     * What a write of leaf entries [{@code fromIndex}, {@code fromIndex + count}) finds, in one walk of the range:
     * {@code blocks[i]} the block entry {@code fromIndex + i} maps to (0 for a hole), and {@code exclusive[i]}
     * whether the root, every node on its path and the block itself have a count of 1, i.e. only this tree can
     * see it, so the caller may overwrite it in place. (The read-only hint is ignored: counts decide.) Neither an
     * entry reported exclusive nor any node on its path is a substitute any more: the caller may change what each
     * of them maps (substitutes rule 3).
     */
    public void mapForWrite(long root, int height, long fromIndex, int count, long[] blocks, boolean[] exclusive) {
        Arrays.fill(blocks, 0, count, 0L);
        Arrays.fill(exclusive, 0, count, false);
        forEachMappedWithOwnership(root, height, fromIndex, fromIndex + count, (index, pointer, owned) -> {
            blocks[(int) (index - fromIndex)] = Pointer.blockOf(pointer);
            exclusive[(int) (index - fromIndex)] = owned;
        });
        if (!latestCopies.isEmpty()) {
            for (int i = 0; i < count; i++) {
                if (exclusive[i]) {
                    forgetExclusivePath(root, height, fromIndex + i);
                }
            }
        }
    }

    /** Drops the substitutes among the root, the nodes and the target on the path to {@code index} (all count 1). */
    private void forgetExclusivePath(long root, int height, long index) {
        if (latestCopies.isEmpty()) {
            return;
        }
        long block = root;
        for (int level = height; level >= 1; level--) {
            forgetSubstitute(block);
            block = Pointer.blockOf(cache.get(block, level).pointers[slotAt(index, level)]);
        }
        forgetSubstitute(block);
    }

    /** A new root one level higher whose first entry is {@code oldRoot} (the reference moves to it). */
    public long growRoot(long oldRoot, int oldHeight) {
        long[] pointers = new long[Layout.POINTERS_PER_NODE];
        pointers[0] = Pointer.writable(oldRoot);
        return freshNode(oldHeight + 1, pointers).block;
    }

    /** Starts numbering transactions at {@code openGeneration} (once, when a store is opened). */
    public void openTransaction(long openGeneration) {
        if (!dirtyNodes.isEmpty() || !releases.isEmpty()) {
            throw new IllegalStateException("transaction already has changes");
        }
        this.generation = openGeneration;
    }

    /**
     * Moves the open transaction to {@code openGeneration} (not below the open one), with every node it
     * created or changed: a store shared by several nodes numbers its commits in one sequence, so the
     * generation a transaction commits as is known only when it commits.
     */
    public void retarget(long openGeneration) {
        if (openGeneration < generation) {
            throw new IllegalArgumentException("the open transaction is generation " + generation
                    + "; it cannot move back to " + openGeneration);
        }
        for (Node node : dirtyNodes.values()) {
            node.generation = openGeneration;
        }
        this.generation = openGeneration;
    }

    /**
     * Drops from the cache every node of the tree at {@code ref} that the cache holds, without reading the
     * device: another process may have freed and reused their blocks. Stops at nodes not in the cache (a
     * node is cached only after its parent was read, so their children were not read through this tree).
     */
    public void forgetCachedTree(RootRef ref) {
        if (ref.root() != 0) {
            forgetCached(ref.root(), ref.height());
        }
    }

    private void forgetCached(long block, int level) {
        if (!cache.contains(block)) {
            return;
        }
        Node node = cache.get(block, level);
        if (level > 1) {
            for (long pointer : node.pointers) {
                if (!Pointer.isHole(pointer)) {
                    forgetCached(Pointer.blockOf(pointer), level - 1);
                }
            }
        }
        cache.forget(block);
    }

    public Node node(long block, int level) {
        return cache.get(block, level);
    }

    /** This store's nodes as a {@link NodeSource} (through its cache; the arrays returned must not be changed). */
    public NodeSource nodes() {
        return (block, level) -> cache.get(block, level).pointers;
    }

    /** Visits the mapped leaf entries with index in [from, to) in index order, skipping holes at every level. */
    public void forEachMapped(long root, int height, long fromIndex, long toIndex, MappedVisitor visitor) {
        forEachMappedWithOwnership(root, height, fromIndex, toIndex, (index, pointer, exclusive) -> visitor.visit(index, pointer));
    }

    @FunctionalInterface
    public interface MappedVisitor {
        void visit(long index, long pointer);
    }

    /** Receives each mapped leaf entry and whether only this tree can see it (root, path and target count 1). */
    @FunctionalInterface
    public interface OwnershipVisitor {
        void visit(long index, long pointer, boolean exclusive);
    }

    /**
     * Like {@link #forEachMapped}, also telling whether each target may be overwritten in place: the root, every
     * node on the path and the target itself have a count of 1, so only this tree can see it.
     */
    public void forEachMappedWithOwnership(long root, int height, long fromIndex, long toIndex, OwnershipVisitor visitor) {
        if (root != 0 && fromIndex < toIndex) {
            visitOwned(root, height, 0, fromIndex, toIndex, space.count(root) == 1, visitor);
        }
    }

    private void visitOwned(long block, int level, long baseIndex, long from, long to, boolean exclusivePath,
                            OwnershipVisitor visitor) {
        Node node = cache.get(block, level);
        long span = 1L << (Layout.POINTER_INDEX_BITS * (level - 1));
        int first = (int) Math.max(0, (from - baseIndex) / span);
        for (int slot = first; slot < Layout.POINTERS_PER_NODE; slot++) {
            long childBase = baseIndex + slot * span;
            if (childBase >= to) {
                break;
            }
            long pointer = node.pointers[slot];
            if (Pointer.isHole(pointer)) {
                continue;
            }
            boolean exclusive = exclusivePath && space.count(Pointer.blockOf(pointer)) == 1;
            if (level == 1) {
                if (childBase >= from) {
                    visitor.visit(childBase, pointer, exclusive);
                }
            } else {
                visitOwned(Pointer.blockOf(pointer), level - 1, childBase, from, to, exclusive, visitor);
            }
        }
    }

    /** Receives a leaf entry whose target differs between two trees (0 = a hole on that side). */
    @FunctionalInterface
    public interface DifferenceVisitor {
        void visit(long index, long oldBlock, long newBlock);
    }

    /**
     * Visits, in index order, every leaf entry with index in [from, to) whose target block differs between
     * the tree at {@code oldRoot} and the tree at {@code newRoot} (both of {@code height}; a root of 0 is an
     * empty tree). A subtree named by the same block in both trees is skipped without being read, so
     * comparing a snapshot with its predecessor costs what changed between them, not the disk's size.
     * Read-only hints are ignored: only block numbers are compared.
     *
     * @return the number of radix nodes read (both trees together)
     */
    public long forEachDifference(long oldRoot, long newRoot, int height, long fromIndex, long toIndex,
                                  DifferenceVisitor visitor) {
        return forEachDifference(nodes(), oldRoot, newRoot, height, fromIndex, toIndex, visitor);
    }

    /** Where a walk that is not this store's own reads radix nodes from: the 512 pointers of a node (not to be changed). */
    @FunctionalInterface
    public interface NodeSource {
        long[] pointers(long block, int level);
    }

    /**
     * {@link #forEachDifference(long, long, int, long, long, DifferenceVisitor)} over trees read from {@code nodes}
     * (a space report of a shared store reads pinned trees straight from the device, not through a node's cache).
     */
    public static long forEachDifference(NodeSource nodes, long oldRoot, long newRoot, int height, long fromIndex,
                                         long toIndex, DifferenceVisitor visitor) {
        if (fromIndex >= toIndex) {
            return 0;
        }
        DifferenceWalk walk = new DifferenceWalk(nodes, Long.MAX_VALUE, visitor);
        walk.visit(oldRoot, newRoot, height, 0, fromIndex, toIndex);
        return walk.nodesRead;
    }

    /**
     * {@link #forEachDifference(long, long, int, long, long, DifferenceVisitor)} in pieces: stops between two
     * subtrees once it has read {@code maxNodesRead} nodes (always after finishing at least one leaf, so every
     * call gets somewhere) and returns the index it got to: every difference in [from, that index) was visited
     * and none after it. Returns {@code toIndex} when the walk is done. A caller that holds a lock can so walk a
     * long difference in bounded holds, letting go between them and going on from the index returned.
     */
    public long forEachDifferenceWithin(long oldRoot, long newRoot, int height, long fromIndex, long toIndex,
                                        long maxNodesRead, DifferenceVisitor visitor) {
        if (fromIndex >= toIndex) {
            return toIndex;
        }
        long stoppedAt = new DifferenceWalk(nodes(), maxNodesRead, visitor)
                .visit(oldRoot, newRoot, height, 0, fromIndex, toIndex);
        return stoppedAt < 0 ? toIndex : stoppedAt;
    }

    /**
     * A walk of {@link #forEachDifference} (with an unbounded budget) or {@link #forEachDifferenceWithin}: the nodes it
     * read, its budget, and whether a leaf was finished yet.
     */
    private static final class DifferenceWalk {
        private final NodeSource nodes;
        private final DifferenceVisitor visitor;
        private long nodesLeft;
        private long nodesRead;
        private boolean leafFinished;

        DifferenceWalk(NodeSource nodes, long maxNodesRead, DifferenceVisitor visitor) {
            this.nodes = nodes;
            this.nodesLeft = maxNodesRead;
            this.visitor = visitor;
        }

        /** Visits the differences of one pair of subtrees in [from, to); returns where it stopped, or -1 if done. */
        long visit(long oldBlock, long newBlock, int level, long baseIndex, long from, long to) {
            if (oldBlock == newBlock) {
                return -1;
            }
            int read = (oldBlock == 0 ? 0 : 1) + (newBlock == 0 ? 0 : 1);
            nodesRead += read;
            nodesLeft -= read;
            long[] oldPointers = oldBlock == 0 ? null : nodes.pointers(oldBlock, level);
            long[] newPointers = newBlock == 0 ? null : nodes.pointers(newBlock, level);
            long span = 1L << (Layout.POINTER_INDEX_BITS * (level - 1));
            int first = (int) Math.max(0, (from - baseIndex) / span);
            for (int slot = first; slot < Layout.POINTERS_PER_NODE; slot++) {
                long childBase = baseIndex + slot * span;
                if (childBase >= to) {
                    break;
                }
                long oldChild = oldPointers == null ? 0 : Pointer.blockOf(oldPointers[slot]);
                long newChild = newPointers == null ? 0 : Pointer.blockOf(newPointers[slot]);
                if (oldChild == newChild) {
                    continue;
                }
                if (level == 1) {
                    if (childBase >= from) {
                        visitor.visit(childBase, oldChild, newChild);
                    }
                } else {
                    if (nodesLeft <= 0 && leafFinished) {
                        return Math.max(childBase, from);
                    }
                    long stoppedAt = visit(oldChild, newChild, level - 1, childBase, from, to);
                    if (stoppedAt >= 0) {
                        return stoppedAt;
                    }
                }
            }
            if (level == 1) {
                leafFinished = true;
            }
            return -1;
        }
    }

    // ---------------------------------------------------------------- creating and sharing

    /** Allocates a fresh all-hole node of {@code level} with a count of 1. */
    public long newNode(int level) {
        return freshNode(level, new long[Layout.POINTERS_PER_NODE]).block;
    }

    private Node freshNode(int level, long[] pointers) {
        long block = space.allocate(SpaceMap.Purpose.METADATA);
        Node node = new Node(block, level, pointers, generation, true);
        cache.put(node);
        dirtyNodes.put(block, node);
        return node;
    }

    /**
     * Adds a reference to the tree (or subtree, or leaf target at level 0) at {@code block} and
     * returns the block to reference: {@code block} itself, or a copy if its counter is saturated.
     */
    public long share(long block, int level, LeafKind leafKind) {
        try {
            space.increment(block);
            return block;
        } catch (RefcountSaturatedException saturated) {
            return shareSaturated(block, level, leafKind);
        }
    }

    /**
     * A block to reference instead of {@code block}, whose counter is saturated: its substitute, with one more
     * reference, or else a new copy, which becomes the substitute (design note 5, substitutes).
     */
    private long shareSaturated(long block, int level, LeafKind leafKind) {
        if (space.isShared()) {
            return copyOf(block, level, leafKind); // substitutes rule 6
        }
        Long substitute = latestCopies.get(block);
        if (substitute != null) {
            if (space.count(substitute) == 0) {
                throw new IllegalStateException("the substitute " + substitute + " of saturated block " + block
                        + " is free: a free or reuse did not drop it");
            }
            try {
                space.increment(substitute);
                return substitute;
            } catch (RefcountSaturatedException alsoSaturated) {
                forgetSubstitute(substitute);
            }
        }
        long copy = copyOf(block, level, leafKind);
        latestCopies.put(block, copy);
        copiedFrom.put(copy, block);
        publishSubstituteBlocks();
        return copy;
    }

    /**
     * Drops the substitute entry that names {@code block}, as the saturated original or as its copy: the block
     * is about to be written in place, moved or freed (substitutes rule 3).
     */
    private void forgetSubstitute(long block) {
        if (latestCopies.isEmpty()) {
            return;
        }
        Long copy = latestCopies.remove(block);
        if (copy != null) {
            copiedFrom.remove(copy);
        }
        Long original = copiedFrom.remove(block);
        if (original != null) {
            latestCopies.remove(original);
        }
        if (copy != null || original != null) {
            publishSubstituteBlocks();
        }
    }

    /** Drops every substitute (substitutes rule 5): the next share of each saturated block copies it afresh. */
    public void forgetSubstitutes() {
        latestCopies.clear();
        copiedFrom.clear();
        publishSubstituteBlocks();
    }

    /** Under the metadata lock, after the maps changed: the blocks they name, for the reclaimer (rule 7). */
    private void publishSubstituteBlocks() {
        long[] blocks = new long[latestCopies.size() * 2];
        int i = 0;
        for (Map.Entry<Long, Long> entry : latestCopies.entrySet()) {
            blocks[i++] = entry.getKey();
            blocks[i++] = entry.getValue();
        }
        Arrays.sort(blocks);
        substituteBlocks = blocks;
    }

    /** The substitute shared in place of saturated block {@code block}, or 0 if none is remembered. */
    public long substituteOf(long block) {
        return latestCopies.getOrDefault(block, 0L);
    }

    /** How many saturated blocks have a substitute remembered. */
    public int substituteCount() {
        return latestCopies.size();
    }

    /** Copies made since the store opened because a counter was saturated. */
    public long saturatedCopies() {
        return saturatedCopies;
    }

    private long copyOf(long block, int level, LeafKind leafKind) {
        saturatedCopies++;
        if (level == 0) {
            if (leafKind == LeafKind.PAGE) {
                return copyOfPage(block);
            }
            ByteBuffer data = ByteBuffer.allocate(Layout.BLOCK_BYTES);
            device.read(block * Layout.BLOCK_BYTES, data);
            long copy = space.allocate(SpaceMap.Purpose.DATA);
            device.write(copy * Layout.BLOCK_BYTES, data.flip());
            return copy;
        }
        long[] pointers = cache.get(block, level).pointers.clone();
        shareChildren(pointers, level - 1, leafKind);
        return freshNode(level, pointers).block;
    }

    /**
     * Adds a reference to every child named in {@code pointers} (a copy of a node's pointers), copying the
     * children whose counter is saturated (design note 5), and marks every pointer read-only: they now name
     * shared blocks. The counters are updated in one pass ({@link SpaceMap#incrementPointers}).
     */
    private void shareChildren(long[] pointers, int childLevel, LeafKind leafKind) {
        for (int i = space.incrementPointers(pointers, 0); i < pointers.length; i = space.incrementPointers(pointers, i + 1)) {
            pointers[i] = shareSaturated(Pointer.blockOf(pointers[i]), childLevel, leafKind); // its substitute or a copy
        }
        for (int i = 0; i < pointers.length; i++) {
            if (!Pointer.isHole(pointers[i])) {
                pointers[i] = Pointer.readOnly(pointers[i]);
            }
        }
    }

    /**
     * A copy of a table page whose counter is saturated, sealed at its new address. Table pages are
     * shared only while a table tree is pinned (the garbage collector) and its nodes are shadowed by
     * copying; the page is verified first, so a damaged page is never given a fresh checksum.
     */
    private long copyOfPage(long block) {
        ByteBuffer image = BlockHeader.newImage();
        device.read(block * Layout.BLOCK_BYTES, image);
        BlockHeader.verify(image, Layout.MAGIC_TABLE_PAGE, block);
        long copy = space.allocate(SpaceMap.Purpose.METADATA);
        BlockHeader.seal(image, Layout.MAGIC_TABLE_PAGE, copy, generation, BlockHeader.aux(image));
        device.write(copy * Layout.BLOCK_BYTES, image.clear());
        return copy;
    }

    /** Queues the removal of a reference (applied after the next durable commit). */
    public void release(long block, int level, LeafKind leafKind) {
        releases.add(new Release(block, level, leafKind, false));
    }

    // ---------------------------------------------------------------- writing

    /**
     * A shared leaf a write will copy, pinned by {@link #pinSharedLeaf}, and the pointers of its copy once
     * {@link #shareTargets} has referenced them (design note 6). One write's, used by one thread.
     */
    public static final class LeafCopy {
        private final long leaf;
        private final long[] source;
        private final LeafKind leafKind;
        /** The copy's pointers, every target referenced once more; null until shared, or if that failed. */
        private long[] pointers;
        private boolean used;

        private LeafCopy(long leaf, long[] source, LeafKind leafKind) {
            this.leaf = leaf;
            this.source = source;
            this.leafKind = leafKind;
        }
    }

    /**
     * Under the metadata lock, before a write links fresh blocks at leaf entry {@code index}: if the leaf on that
     * path is shared (count 2 or more), so the link will copy it, pins it (one reference more) and returns it,
     * for {@link #shareTargets} to reference its targets without the lock (design note 6); else null.
     */
    public LeafCopy pinSharedLeaf(long root, int height, long index, LeafKind leafKind) {
        long block = root;
        for (int level = height; level > 1; level--) {
            if (block == 0) {
                return null;
            }
            long pointer = cache.get(block, level).pointers[slotAt(index, level)];
            block = Pointer.blockOf(pointer);
        }
        if (block == 0 || space.count(block) < 2) {
            return null;
        }
        try {
            space.increment(block);
        } catch (RefcountSaturatedException saturated) {
            return null; // the link copies it as before
        }
        return new LeafCopy(block, cache.get(block, 1).pointers, leafKind);
    }

    /**
     * Without the metadata lock (design note 6): references every target of the pinned leaf once more, for its
     * copy. If a target's counter is saturated, takes back what it added and leaves the copy to the link, which
     * copies that target instead.
     */
    public void shareTargets(LeafCopy copy) {
        long[] pointers = copy.source.clone(); // a pinned leaf's array does not change (design note 6)
        int stopped = space.incrementPointers(pointers, 0);
        if (stopped < pointers.length) {
            space.decrementHoldingPointers(Arrays.copyOf(pointers, stopped), new long[stopped]);
            return;
        }
        for (int i = 0; i < pointers.length; i++) {
            if (!Pointer.isHole(pointers[i])) {
                pointers[i] = Pointer.readOnly(pointers[i]);
            }
        }
        copy.pointers = pointers;
    }

    /**
     * Under the metadata lock, after the link (or instead of it, if the write failed): takes back the references
     * of a copy the link did not use, and gives the pin back: at once if the leaf has other references, else
     * after the next commit, as its last reference (design note 6).
     */
    public void finishLeafCopy(LeafCopy copy) {
        if (copy.pointers != null && !copy.used) {
            // Every target is still referenced by the pinned leaf, so none loses its last reference here.
            if (space.decrementHoldingPointers(copy.pointers, new long[copy.pointers.length]) != 0) {
                throw new IllegalStateException("a target of pinned leaf " + copy.leaf + " lost its last reference");
            }
        }
        copy.used = true; // finished: nothing to take back twice
        copy.pointers = null;
        // Held until the next commit, a pin would count as a reference for every write of the transaction: near
        // the counter limit it saturates the leaf (or the substitute it is), and each later share copies afresh.
        // A leaf's counter changes only under this lock, so "other references" cannot turn into none meanwhile.
        if (space.count(copy.leaf) > 1) {
            space.decrement(copy.leaf);
        } else {
            releases.add(new Release(copy.leaf, 1, copy.leafKind, false));
        }
    }

    /**
     * Makes the path to leaf entry {@code index} writable (shadowing shared or durable nodes and
     * creating missing ones), stores {@code newPointer} there and returns the pointer it replaced.
     * The caller owns the returned reference (usually releases it).
     */
    public long exchange(RootRef ref, long index, long newPointer, LeafKind leafKind) {
        return exchange(ref, index, newPointer, leafKind, null);
    }

    /**
     * {@link #exchange(RootRef, long, long, LeafKind)}, copying the leaf with {@code prepared} (may be null) if it
     * is the shared leaf that copy was made for (design note 6). The caller then calls {@link #finishLeafCopy}.
     */
    public long exchange(RootRef ref, long index, long newPointer, LeafKind leafKind, LeafCopy prepared) {
        Node leaf = writablePath(ref, index, leafKind, null, prepared);
        int slot = slotAt(index, 1);
        long old = leaf.pointers[slot];
        leaf.pointers[slot] = newPointer;
        return old;
    }

    /**
     * Punches a hole at {@code index}: the entry becomes 0 and the old target is released. Nodes left
     * empty are removed (the root stays). Does nothing on a hole.
     */
    public void punch(RootRef ref, long index, LeafKind leafKind) {
        if (Pointer.isHole(lookup(ref.root(), ref.height(), index))) {
            return;
        }
        Node[] path = new Node[ref.height() + 1];
        writablePath(ref, index, leafKind, path, null);
        long old = path[1].pointers[slotAt(index, 1)];
        path[1].pointers[slotAt(index, 1)] = 0;
        release(Pointer.blockOf(old), 0, leafKind);
        for (int level = 1; level < ref.height(); level++) {
            Node node = path[level];
            if (!node.isEmpty()) {
                break;
            }
            // The node is fresh (made writable above), so no durable pointer names it: free it now.
            path[level + 1].pointers[slotAt(index, level + 1)] = 0;
            dirtyNodes.remove(node.block);
            cache.forget(node.block);
            forgetSubstitute(node.block);
            space.decrement(node.block);
        }
    }

    private Node writablePath(RootRef ref, long index, LeafKind leafKind, Node[] path, LeafCopy prepared) {
        if (index < 0 || index >= capacity(ref.height())) {
            throw new IllegalArgumentException("leaf index " + index + " outside a tree of height " + ref.height());
        }
        Node node = ref.root() == 0
                ? freshNode(ref.height(), new long[Layout.POINTERS_PER_NODE])
                : writable(ref.root(), ref.height(), leafKind, prepared);
        ref.setRoot(node.block);
        if (path != null) {
            path[ref.height()] = node;
        }
        for (int level = ref.height(); level > 1; level--) {
            int slot = slotAt(index, level);
            long pointer = node.pointers[slot];
            Node child = Pointer.isHole(pointer)
                    ? freshNode(level - 1, new long[Layout.POINTERS_PER_NODE])
                    : writable(Pointer.blockOf(pointer), level - 1, leafKind, prepared);
            node.pointers[slot] = Pointer.writable(child.block);
            node = child;
            if (path != null) {
                path[level - 1] = node;
            }
        }
        return node;
    }

    /** The node at {@code block} itself if it may change in place, else its shadow. */
    private Node writable(long block, int level, LeafKind leafKind, LeafCopy prepared) {
        Node node = cache.get(block, level);
        boolean pinned = prepared != null && level == 1 && block == prepared.leaf && !prepared.used;
        int count = space.count(block) - (pinned ? 1 : 0); // the references apart from the write's own pin
        if (count == 1 && !pinned) {
            forgetSubstitute(block); // changed in place or moved: no longer a copy to share (substitutes rule 3)
        }
        if (node.generation == generation && count == 1 && !pinned) {
            return node;
        }
        // A pinned leaf is copied even if nothing but the pin shares it any more: moved, its targets' references
        // would pass to the shadow, and the pin's release would then free the leaf and take them away (note 6).
        boolean move = count == 1 && !pinned;
        boolean copyMade = pinned && prepared.pointers != null;
        long[] pointers = copyMade ? prepared.pointers : node.pointers.clone();
        // The shadow's block first: if allocation fails (NO_SPACE), the tree and every counter are as they were.
        // Queuing the old node's release before it would release a node the tree still points to.
        Node shadow = freshNode(level, pointers);
        if (move) {
            releases.add(new Release(block, level, leafKind, true));
        } else {
            if (copyMade) {
                prepared.used = true; // its targets were referenced by shareTargets, without the lock
            } else {
                shareChildren(pointers, level - 1, leafKind); // changes the shadow's pointers in place
            }
            releases.add(new Release(block, level, leafKind, false));
        }
        if (leafKind == LeafKind.DATA) {
            if (move) {
                nodesMoved++;
            } else if (level == 1) {
                leavesCopied++;
            } else {
                innerNodesCopied++;
            }
        }
        return shadow;
    }

    /**
     * Shadows made by writes to virtual-disk trees (design note 7): nodes copied because they were shared
     * (a snapshot or clone references them), split into leaves and inner nodes, and durable nodes moved
     * because a commit made them durable since they were last changed.
     */
    public record Shadows(long leavesCopied, long innerNodesCopied, long nodesMoved) {
    }

    public Shadows shadows() {
        return new Shadows(leavesCopied, innerNodesCopied, nodesMoved);
    }

    /** Starts the shadow counts afresh. */
    public void resetShadows() {
        leavesCopied = 0;
        innerNodesCopied = 0;
        nodesMoved = 0;
    }

    // ---------------------------------------------------------------- commit

    /**
     * Closes the open transaction: hands over its dirty nodes and its releases; the next transaction
     * (generation + 1) opens. Every node of the closed one is immutable from now on (design note 1: a node
     * changes in place only in the transaction that created it), so the caller may encode and write them
     * ({@link Capture#writeNodes}) without the metadata lock.
     */
    public Capture closeTransaction() {
        List<Node> nodes = new ArrayList<>(dirtyNodes.values());
        dirtyNodes = new LinkedHashMap<>(); // not clear(): that costs the largest table the map ever grew to
        List<Release> closed = releases;
        releases = new ArrayList<>();
        long closedGeneration = generation;
        generation++;
        return new Capture(closedGeneration, nodes, closed);
    }

    public record Capture(long generation, List<Node> nodes, List<Release> releases) {

        /** Nodes written by one device call at most (256 KiB). */
        static final int MAX_RUN_NODES = 64;

        /**
         * Encodes the closed transaction's nodes and writes them to {@code device}, in block order, nodes at
         * consecutive blocks in one write of up to {@link #MAX_RUN_NODES} (copies made by copy-on-write are
         * allocated next to each other, so a commit writes a few runs rather than hundreds of single blocks).
         * Needs no lock (see {@link #closeTransaction}); the order of writes before the commit's flush does
         * not matter (note 2).
         */
        public void writeNodes(BlockDevice device) {
            Node[] sorted = nodes.toArray(new Node[0]);
            java.util.Arrays.sort(sorted, java.util.Comparator.comparingLong(node -> node.block));
            ByteBuffer run = null;
            for (int start = 0; start < sorted.length; ) {
                int end = start + 1;
                while (end < sorted.length && end - start < MAX_RUN_NODES && sorted[end].block == sorted[end - 1].block + 1) {
                    end++;
                }
                int bytes = (end - start) * Layout.BLOCK_BYTES;
                if (run == null) { // no run is longer than this
                    run = ByteBuffer.allocate(Math.min(MAX_RUN_NODES, sorted.length) * Layout.BLOCK_BYTES);
                }
                run.clear(); // the previous write left position and limit behind
                for (int i = start; i < end; i++) {
                    Node node = sorted[i];
                    NodeCodec.encodeInto(node.pointers, node.block, generation, node.level,
                            run.slice((i - start) * Layout.BLOCK_BYTES, Layout.BLOCK_BYTES));
                }
                device.write(sorted[start].block * Layout.BLOCK_BYTES, run.limit(bytes));
                start = end;
            }
        }
    }

    /** The nodes of a capture reached the device: the cache may evict them now. */
    public static void markWritten(Capture capture) {
        for (Node node : capture.nodes()) {
            node.dirty = false;
        }
    }

    /**
     * A leaf freed by {@link #applyReleases} whose targets still hold the references it had: its pointers if the
     * node was cached, else null (then {@link #releaseTargets} reads it from its block, which is held).
     */
    public record FreedLeaf(long block, long[] pointers, LeafKind leafKind) {
    }

    /**
     * Applies releases whose removal is durable. A block whose count reaches 0 is held, not freed
     * (design note 4), and a freed node releases its children in turn: an inner node's are queued in
     * {@code pending}, a freed leaf goes to {@code freedLeaves}, whose targets the caller then releases with
     * {@link #releaseTargets}, outside the metadata lock if it likes (design note 6). Processes at most
     * {@code budget} releases and puts the rest back into {@code pending}; returns the number of blocks that
     * lost their last reference (the freed leaves' targets not included).
     */
    public long applyReleases(Deque<Release> pending, int budget, List<FreedLeaf> freedLeaves) {
        long unreferenced = 0;
        for (int done = 0; done < budget && !pending.isEmpty(); done++) {
            Release release = pending.pop();
            if (space.decrementHolding(release.block()) != 0) {
                continue;
            }
            unreferenced++;
            boolean data = false;
            if (release.level() >= 1) {
                if (release.moved()) {
                    cache.forget(release.block());
                } else {
                    if (release.level() == 1) {
                        // A freed leaf: its targets have no children, so they are released in one pass rather
                        // than queued one by one (a leaf copied by copy-on-write has up to 512), by the caller,
                        // who also reads the leaf if it is not cached (no device read here, under the lock).
                        Node node = cache.takeCached(release.block(), 1);
                        freedLeaves.add(new FreedLeaf(release.block(), node == null ? null : node.pointers,
                                release.leafKind()));
                    } else {
                        Node node = cache.take(release.block(), release.level()); // its block is freed here
                        for (long pointer : node.pointers) {
                            if (!Pointer.isHole(pointer)) {
                                pending.push(new Release(Pointer.blockOf(pointer), release.level() - 1,
                                        release.leafKind(), false));
                            }
                        }
                    }
                }
            } else {
                data = release.leafKind() == LeafKind.DATA;
            }
            hold(release.block(), data);
        }
        return unreferenced;
    }

    /**
     * Releases the targets of a leaf {@link #applyReleases} freed, in one pass over their counters; a target that
     * loses its last reference is held. Needs no metadata lock, only to be the reclaimer (design note 6). Returns
     * the number of targets that lost their last reference.
     */
    public int releaseTargets(FreedLeaf leaf) {
        long[] pointers = leaf.pointers() != null ? leaf.pointers() : cache.readUncached(leaf.block(), 1).pointers;
        boolean data = leaf.leafKind() == LeafKind.DATA;
        long[] named = substituteBlocks; // substitutes rule 7: these are released under the lock
        if (named.length > 0) {
            long[] unnamed = null;
            for (int i = 0; i < pointers.length; i++) {
                if (!Pointer.isHole(pointers[i]) && Arrays.binarySearch(named, Pointer.blockOf(pointers[i])) >= 0) {
                    if (unnamed == null) {
                        unnamed = pointers.clone();
                    }
                    unnamed[i] = 0;
                    deferTarget(Pointer.blockOf(pointers[i]), data);
                }
            }
            if (unnamed != null) {
                pointers = unnamed;
            }
        }
        int freedTargets = space.decrementHoldingPointers(pointers, unreferencedScratch);
        for (int i = 0; i < freedTargets; i++) {
            addHeld(unreferencedScratch[i], data); // no substitute names it (rule 7), so there is none to drop
        }
        return freedTargets;
    }

    private void deferTarget(long block, boolean data) {
        if (deferredTargetCount == deferredTargets.length) {
            deferredTargets = Arrays.copyOf(deferredTargets, deferredTargets.length * 2);
        }
        deferredTargets[deferredTargetCount++] = block << 1 | (data ? 1 : 0);
    }

    /** Targets {@link #releaseTargets} left to the lock ({@link #releaseDeferredTargets}) since that last ran. */
    public int deferredTargetCount() {
        return deferredTargetCount;
    }

    /**
     * Under the metadata lock, by the reclaimer: releases the targets of freed leaves that {@link #releaseTargets}
     * found named by a substitute entry (substitutes rule 7); one that loses its last reference is held and its
     * entry dropped. Returns the number of targets that lost their last reference.
     */
    public int releaseDeferredTargets() {
        int freedTargets = 0;
        for (int i = 0; i < deferredTargetCount; i++) {
            long block = deferredTargets[i] >>> 1;
            if (space.decrementHolding(block) == 0) {
                hold(block, (deferredTargets[i] & 1) != 0);
                freedTargets++;
            }
        }
        deferredTargetCount = 0;
        if (deferredTargets.length > 4096) {
            deferredTargets = new long[16];
        }
        return freedTargets;
    }

    /** Under the metadata lock: holds a block that lost its last reference, and drops its substitute entry. */
    private void hold(long block, boolean data) {
        forgetSubstitute(block); // substitutes rule 3: a block that lost its last reference is no share target
        addHeld(block, data);
    }

    /** Adds to the held list (the reclaimer's, note 6), which lock holders only read the length of. */
    private void addHeld(long block, boolean data) {
        if (heldCount == held.length) {
            held = Arrays.copyOf(held, held.length * 2);
        }
        // Block numbers fit in 48 bits (Pointer.BLOCK_MASK): the low bit says "data, discard when freed".
        int count = heldCount;
        held[count] = block << 1 | (data ? 1 : 0);
        heldCount = count + 1;
    }

    /** Blocks held since they lost their last reference, not yet freed (design note 4). */
    public int heldCount() {
        return heldCount;
    }

    /**
     * Discards the held data blocks on the device (design note 4), once the caller knows no volume I/O can touch
     * them any more (a read still in flight must see their content), and before {@link #freeHeld} (a freed block
     * may be written by its next owner at once). The reclaimer calls this without the metadata lock (note 6): one
     * device call per block.
     */
    public void discardHeldData() {
        for (int i = 0; i < heldCount; i++) {
            if ((held[i] & 1) != 0) {
                device.discard((held[i] >>> 1) * Layout.BLOCK_BYTES, Layout.BLOCK_BYTES);
            }
        }
    }

    /**
     * Frees every held block (design note 4): the caller knows no volume I/O can touch them any more, and has
     * discarded the data blocks among them ({@link #discardHeldData}).
     */
    public void freeHeld() {
        for (int i = 0; i < heldCount; i++) {
            space.freeHeld(held[i] >>> 1);
        }
        heldCount = 0;
        if (held.length > 4096) {
            held = new long[64]; // a large reclamation does not keep its array
        }
    }

    /**
     * Forgets any cached image of {@code block}, which was freed without a release (the garbage
     * collector frees blocks that nothing references), so a later reuse of the block never meets it.
     */
    public void forgetFreed(long block) {
        cache.forget(block);
        forgetSubstitute(block);
    }

    /** Releases of the open transaction so far (read-only view for statistics and tests). */
    public int pendingReleaseCount() {
        return releases.size();
    }

    public static ByteBuffer emptyImage() {
        return BlockHeader.newImage();
    }
}
