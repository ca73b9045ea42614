package io.cairn.alloc;

import io.cairn.cluster.CoordinatorUnavailableException;
import io.cairn.cluster.Lease;
import io.cairn.cluster.LeaseTimeouts;
import io.cairn.cluster.LockHeldException;
import io.cairn.cluster.LockHolder;
import io.cairn.cluster.LockManager;
import io.cairn.format.ExtentRecord;
import io.cairn.format.Layout;
import io.cairn.format.StoreGeometry;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * Keeps a cluster node supplied with leased extents to allocate in (docs/CLUSTER.md, "Extent leases"): a small
 * pool of spares per purpose, each under a lease on lock {@code extent/N}, filled by {@link #refill} on a
 * background thread so that the data path never waits for the coordinator.
 *
 * <p>Design notes.
 * <ol>
 *   <li>How many spares (counted in free blocks: a partly used extent counts for what it has left, so a pool of
 *       them still holds as many blocks as the target's fresh extents would): enough for this node to keep allocating through a whole validity window (2T/3 of the
 *       lease timeout T) without reaching the coordinator, at {@link #OUTAGE_WRITE_BYTES_PER_SECOND}. Beyond
 *       the window a spare can no longer be claimed (its lease is invalid), so more spares would buy nothing.
 *       Bounded by {@link #MAX_DATA_SPARES} and by a sixteenth of the store's extents, so a few nodes on a small
 *       store cannot lease it all away. Metadata needs far less (a 4 KiB radix leaf maps 2 MiB
 *       of data; commits copy a path per changed leaf): one metadata spare per eight data spares, at least one.
 *       With T = 10 s and 64 MiB extents: 14 data spares (0.9 GiB) and 2 metadata spares.</li>
 *   <li>Candidates, in order: extents whose shared holder word names this node but which it holds no lease
 *       on (a restart, or leases lost while the coordinator was away), then extents of a dead node (the word
 *       names a node that is not a live member; the lock is free only once that node's leases expired), then
 *       free extents. Only extents with a free block are worth a lease. The first two kinds are partly used, so
 *       {@link #take} hands them out before fresh ones; and one dead node's extent per purpose is leased even when
 *       the pool is full, so the next node that needs an extent takes a dead node's over.</li>
 *   <li>The lease decides; the holder word is checked again after the acquire, and the store's map claims the
 *       spare by CAS on the word from the value seen here ({@link SpaceMap} design note 8), so two nodes never
 *       both allocate in one extent even if one of them works from a stale view.</li>
 *   <li>A spare whose lease lapsed is dropped from the pool; a lease that ended (released by the map, lost) is
 *       forgotten, and the extent is a candidate again.</li>
 *   <li>Space pressure. A node keeps no more spares than its fair share of the free extents (those whose holder
 *       word is 0, leased as spares or not, divided by the live nodes; metadata first, since commits need it),
 *       giving fresh spares beyond it back, so a nearly full store is not leased away by the nodes that need it
 *       least. A node that needs an extent and has no spare ({@link #awaitSpare}) holds lock {@code wanted/data}
 *       (or {@code wanted/metadata}) while it waits; every other node's refill (every scan interval) sees it,
 *       gives back each spare of that purpose it has not started to allocate from (fresh ones, and dead nodes'
 *       extents leased for a takeover) and leases none until the lock is gone. The waiting node leases what
 *       comes free; it stops waiting at once when no extent is free and no other node holds such a spare
 *       (nothing can come), after {@link #giveBackWaitNanos} (one lease timeout) in any case, and then the map
 *       fails with NO_SPACE and the reason. Only one node holds a want lock at a time; a second needy node finds
 *       it held, which announces the same want, and takes it when it is free.</li>
 *   <li>Giving a spare back is safe against the map taking it at that moment: both remove it from the pool
 *       under the pool's monitor, so exactly one of them gets it. A spare in the pool has never been handed to
 *       the map, so nothing was allocated in it under this lease; its holder word is as it was when leased
 *       (0, or a dead node's id), and releasing the lease is all there is to undo.</li>
 *   <li>Each extent lock says what it is for readers ({@code cairn nodes}): note {@link #USE_NOTE} is
 *       {@link #USE_SPARE} when leased and becomes {@link #USE_ALLOCATING} at the first refill after the map took
 *       it ({@link LockManager#annotate}); ZooKeeper alone cannot tell a spare from an extent in use.</li>
 * </ol>
 * Threading: {@link #refill} and {@link #close} run on the owner's background thread (they are serialized) and
 * never wait for the store; {@link #take} and {@link #shortage} may be called from any thread and never block
 * on the coordinator; {@link #awaitSpare} (the map's way to NO_SPACE, under the store's metadata lock) waits on
 * the pool's monitor for the background thread, at most {@link #giveBackWaitNanos}, and never talks to the
 * coordinator itself.
 */
public final class ExtentLeaser implements ExtentLeases, AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(ExtentLeaser.class);

    /**
     * The sustained write rate a node is provisioned to keep allocating for while the coordinator is
     * unreachable, for the whole validity window (design note 1). Faster writing during an outage runs out of
     * spares sooner and gets NO_SPACE until the coordinator is back.
     */
    public static final long OUTAGE_WRITE_BYTES_PER_SECOND = 128L << 20;
    /** Upper bound of the data spares of one node (design note 1). */
    public static final int MAX_DATA_SPARES = 32;
    /** Data spares per metadata spare (design note 1). */
    private static final int DATA_SPARES_PER_METADATA_SPARE = 8;
    /** Extents' locks are {@code extent/N}. */
    public static final String LOCK_PREFIX = "extent/";
    /** Note saying what an extent lock guards, read by {@code cairn nodes}. */
    public static final String TYPE_NOTE = "type";
    /**
     * Note saying whether an extent lock is a spare ({@link #USE_SPARE}) or the node allocates in the extent
     * ({@link #USE_ALLOCATING}), read by {@code cairn nodes}: ZooKeeper cannot tell them apart otherwise. A lock
     * is leased as a spare and noted as allocated in by the first refill after the map took it.
     */
    public static final String USE_NOTE = "use";
    public static final String USE_SPARE = "spare";
    public static final String USE_ALLOCATING = "allocating";
    /** A node waiting for an extent of a purpose holds lock {@code wanted/data} or {@code wanted/metadata} (design note 5). */
    public static final String WANT_PREFIX = "wanted/";

    private final SharedCounters shared;
    private final int node;
    private final LockManager locks;
    private final Supplier<Set<Integer>> liveNodes;
    private final Runnable wakeUp;
    private final StoreGeometry geometry;
    private final int[] targets = new int[SpaceMap.Purpose.values().length];
    /** How long a taker with no spare waits for one (design note 5): one lease timeout. */
    private final long giveBackWaitNanos;
    /** How often a waiting taker asks the background thread again. */
    private final long retryMillis;
    /**
     * Spares not yet taken, per purpose. Guarded by its own monitor, never held while talking to the
     * coordinator: {@link #take} runs on the data path. {@link #refill} is serialized by this object's monitor.
     */
    private final List<ArrayDeque<Spare>> pools = new ArrayList<>();
    /** Why the last refill left a pool short, per purpose (guarded by {@code pools}). */
    private final String[] shortages = new String[SpaceMap.Purpose.values().length];
    /** Spares kept now per purpose: the target, lowered under space pressure (guarded by {@code pools}). */
    private final int[] goals = new int[SpaceMap.Purpose.values().length];
    /** Takers waiting in {@link #awaitSpare}, per purpose (guarded by {@code pools}). */
    private final int[] waiting = new int[SpaceMap.Purpose.values().length];
    /** Why the last wait for a spare ended empty, until the next wait or spare (guarded by {@code pools}). */
    private final String[] failedWaits = new String[SpaceMap.Purpose.values().length];
    /** Set by a refill that found nothing can come for a waiting taker (guarded by {@code pools}). */
    private final boolean[] hopeless = new boolean[SpaceMap.Purpose.values().length];
    /** This node's lease on a want lock, per purpose (refill thread only). */
    private final Lease[] wants = new Lease[SpaceMap.Purpose.values().length];
    /** Every lease acquired here that has not been seen to end, by extent (refill thread only). */
    private final Map<Integer, Spare> leased = new HashMap<>();
    /** Extents of {@link #leased} whose lock notes say the map took them ({@link #USE_ALLOCATING}; refill thread only). */
    private final Set<Integer> announcedTaken = new java.util.HashSet<>();
    /** The last refill found the coordinator unreachable: a taker does not wait. */
    private volatile boolean unreachable;
    private volatile boolean closed;

    /**
     * @param shared    the host's shared counters (their holder words)
     * @param node      this node's id
     * @param locks     the coordinator
     * @param liveNodes the node ids of the live members (asks the coordinator)
     * @param wakeUp    asks the owner to call {@link #refill} soon (called at every {@link #take}; must not block)
     */
    public ExtentLeaser(SharedCounters shared, int node, LockManager locks, Supplier<Set<Integer>> liveNodes, Runnable wakeUp) {
        this.shared = shared;
        this.node = node;
        this.locks = locks;
        this.liveNodes = liveNodes;
        this.wakeUp = wakeUp;
        this.geometry = shared.geometry();
        int data = dataSpares(locks.timeouts(), geometry);
        targets[SpaceMap.Purpose.DATA.ordinal()] = data;
        targets[SpaceMap.Purpose.METADATA.ordinal()] = Math.ceilDiv(data, DATA_SPARES_PER_METADATA_SPARE);
        System.arraycopy(targets, 0, goals, 0, targets.length);
        this.giveBackWaitNanos = locks.timeouts().lease().toNanos();
        this.retryMillis = locks.timeouts().retryMillis();
        for (SpaceMap.Purpose purpose : SpaceMap.Purpose.values()) {
            pools.add(new ArrayDeque<>());
            shortages[purpose.ordinal()] = "no spare extent has been leased yet";
        }
    }

    /** Data spares a node keeps (design note 1). */
    public static int dataSpares(LeaseTimeouts timeouts, StoreGeometry geometry) {
        double windowSeconds = LeaseTimeouts.validityNanos(timeouts.sessionTimeoutMillis()) / 1e9;
        long extentBytes = (long) geometry.extentBlocks() * Layout.BLOCK_BYTES;
        long wanted = (long) Math.ceil(OUTAGE_WRITE_BYTES_PER_SECOND * windowSeconds / extentBytes);
        int bound = Math.min(MAX_DATA_SPARES, Math.max(1, (geometry.extentCount() - 1) / 16));
        return (int) Math.clamp(wanted, 1, bound);
    }

    /** How many spares this node keeps for {@code purpose} when extents are plentiful. */
    public int target(SpaceMap.Purpose purpose) {
        return targets[purpose.ordinal()];
    }

    /** How many spares this node keeps for {@code purpose} now: the target, lowered under space pressure. */
    public int goal(SpaceMap.Purpose purpose) {
        synchronized (pools) {
            return goals[purpose.ordinal()];
        }
    }

    /** The lock a node waiting for an extent for {@code purpose} holds (design note 5). */
    public static String wantLockName(SpaceMap.Purpose purpose) {
        return WANT_PREFIX + purpose.name().toLowerCase();
    }

    // ---------------------------------------------------------------- the map's side

    @Override
    public Spare take(SpaceMap.Purpose purpose) {
        Spare chosen = null;
        synchronized (pools) {
            ArrayDeque<Spare> pool = pools.get(purpose.ordinal());
            for (Spare spare : pool) {
                if (spare.formerHolder() != 0) {
                    chosen = spare; // partly used: before fresh ones (design note 2)
                    break;
                }
            }
            if (chosen == null) {
                chosen = pool.peekFirst();
            }
            if (chosen != null) {
                pool.remove(chosen);
            }
        }
        if (wakeUp != null) {
            wakeUp.run(); // a spare taken is to be replaced; none left, the pool is to be tried again now
        }
        return chosen;
    }

    @Override
    public boolean awaitSpare(SpaceMap.Purpose purpose) {
        int p = purpose.ordinal();
        synchronized (pools) {
            failedWaits[p] = null;
        }
        if (wakeUp == null || closed || unreachable) {
            return false; // nobody to fill the pool, or the coordinator was away at the last try: fail now
        }
        long deadline = System.nanoTime() + giveBackWaitNanos;
        synchronized (pools) {
            waiting[p]++;
            hopeless[p] = false;
        }
        try {
            while (true) {
                wakeUp.run(); // lease now, announce the want, or judge that nothing can come
                synchronized (pools) {
                    if (!pools.get(p).isEmpty()) {
                        return true;
                    }
                    if (hopeless[p] || closed || unreachable) {
                        failedWaits[p] = shortages[p]; // the reason as it was when the wait ended, for the map's message
                        return false;
                    }
                    long remainingNanos = deadline - System.nanoTime();
                    if (remainingNanos <= 0) {
                        failedWaits[p] = "no spare came within " + TimeUnit.NANOSECONDS.toMillis(giveBackWaitNanos) / 1000.0
                                + " s: " + shortages[p];
                        return false;
                    }
                    pools.wait(Math.clamp(TimeUnit.NANOSECONDS.toMillis(remainingNanos), 1, retryMillis));
                }
            }
        } catch (InterruptedException interrupted) {
            Thread.currentThread().interrupt();
            synchronized (pools) {
                failedWaits[p] = "interrupted while waiting for a spare: " + shortages[p];
            }
            return false;
        } finally {
            synchronized (pools) {
                waiting[p]--;
            }
            wakeUp.run(); // so that the want lock goes as soon as nobody waits
        }
    }

    @Override
    public String shortage(SpaceMap.Purpose purpose) {
        synchronized (pools) {
            String why = failedWaits[purpose.ordinal()] != null ? failedWaits[purpose.ordinal()] : shortages[purpose.ordinal()];
            return why + " (this node keeps " + goals[purpose.ordinal()] + " spare "
                    + purpose.name().toLowerCase() + " extent(s))";
        }
    }

    /** Spares ready for {@code purpose} now. */
    public int spares(SpaceMap.Purpose purpose) {
        synchronized (pools) {
            return pools.get(purpose.ordinal()).size();
        }
    }

    private void setShortage(SpaceMap.Purpose purpose, String why) {
        synchronized (pools) {
            shortages[purpose.ordinal()] = why;
        }
    }

    private int waiting(SpaceMap.Purpose purpose) {
        synchronized (pools) {
            return waiting[purpose.ordinal()];
        }
    }

    // ---------------------------------------------------------------- the background side

    /**
     * Forgets leases that ended, notes the spares the map took as allocated in, holds or drops the want locks,
     * gives spares back under space pressure and tops every pool up to its goal (design notes 2 and 5), asking the
     * coordinator once per candidate. Never throws for an unreachable coordinator: the pools stay as they are and
     * {@link #shortage} says why.
     */
    public synchronized void refill() {
        if (closed) {
            return;
        }
        forgetEnded();
        try {
            announceTaken();
            Set<Integer> live = liveNodes.get();
            int share = fairShare(live);
            int metadataShare = Math.min(targets[SpaceMap.Purpose.METADATA.ordinal()], share);
            for (SpaceMap.Purpose purpose : SpaceMap.Purpose.values()) {
                int p = purpose.ordinal();
                boolean needed = waiting(purpose) > 0;
                announce(purpose, needed);
                boolean othersWant = !needed && wantedByAnother(purpose);
                int fair = purpose == SpaceMap.Purpose.METADATA ? metadataShare : Math.min(targets[p], share - metadataShare);
                int goal = othersWant ? 0 : needed ? Math.max(1, fair) : fair;
                synchronized (pools) {
                    goals[p] = goal;
                }
                giveBack(purpose, goal, othersWant);
                fill(purpose, live, goal, othersWant, share);
                if (needed && spares(purpose) == 0) {
                    judge(purpose, live);
                }
            }
            unreachable = false;
        } catch (CoordinatorUnavailableException away) {
            synchronized (pools) {
                unreachable = true;
                for (SpaceMap.Purpose purpose : SpaceMap.Purpose.values()) {
                    shortages[purpose.ordinal()] = "the coordinator is unreachable: " + away.getMessage();
                }
                pools.notifyAll();
            }
        }
    }

    /** Spare extents per live node if the free extents (holder word 0, leased as spares or not) were shared out. */
    private int fairShare(Set<Integer> live) {
        int free = 0;
        for (int extent = 0; extent < geometry.extentCount(); extent++) {
            if (shared.extentHolder(extent) == 0) {
                free++;
            }
        }
        return free / Math.max(1, live.size());
    }

    /** Holds the want lock for {@code purpose} while a taker waits, and only then (design note 5). */
    private void announce(SpaceMap.Purpose purpose, boolean needed) {
        int p = purpose.ordinal();
        Lease want = wants[p];
        if (needed && (want == null || !want.isValid())) {
            if (want != null) {
                want.release();
            }
            try {
                wants[p] = locks.acquire(wantLockName(purpose), Duration.ZERO, Map.of());
            } catch (LockHeldException another) {
                wants[p] = null; // another node waits too: the want is announced all the same
            }
        } else if (!needed && want != null) {
            want.release();
            wants[p] = null;
        }
    }

    private boolean wantedByAnother(SpaceMap.Purpose purpose) {
        return locks.holder(wantLockName(purpose)).filter(holder -> !holder.node().equals(locks.nodeName())).isPresent();
    }

    /**
     * Under space pressure only (another node waits, or the fair share is below the target): releases spares of
     * {@code purpose} beyond {@code goal} free blocks' worth that another node could use. Fresh ones always; a dead
     * node's extent only for a waiting node (otherwise it is the one kept to be taken over, design note 2); this
     * node's own partly used extents are of use to nobody else. Design notes 5 and 6.
     */
    private void giveBack(SpaceMap.Purpose purpose, int goal, boolean othersWant) {
        if (!othersWant && goal >= targets[purpose.ordinal()]) {
            return;
        }
        List<Spare> given = new ArrayList<>();
        synchronized (pools) {
            long blocks = spareBlocks(purpose);
            long kept = (long) goal * usableBlocksPerExtent();
            for (Iterator<Spare> it = pools.get(purpose.ordinal()).descendingIterator(); it.hasNext(); ) {
                Spare spare = it.next();
                long its = blocksOf(spare);
                boolean ofUse = spare.formerHolder() == 0 || (othersWant && spare.formerHolder() != node);
                if (ofUse && blocks - its >= kept) {
                    it.remove();
                    blocks -= its;
                    given.add(spare);
                }
            }
        }
        for (Spare spare : given) {
            leased.remove(spare.extent());
            spare.lease().release();
            LOG.info("gave spare extent {} ({}) back: {}", spare.extent(), purpose.name().toLowerCase(),
                    othersWant ? "another node waits for one" : "free extents are short, this node keeps " + goal);
        }
    }

    /**
     * A taker waits and the pool is still empty: if no extent is free and unleased (one that came free since the
     * fill looked, e.g. a spare given back just then) and no other node holds a spare of {@code purpose} it could give
     * back, nothing can come, and the taker is told to fail now (design note 5).
     */
    private void judge(SpaceMap.Purpose purpose, Set<Integer> live) {
        ExtentRecord.Type type = purpose == SpaceMap.Purpose.DATA ? ExtentRecord.Type.DATA : ExtentRecord.Type.METADATA;
        String typeName = type.name().toLowerCase();
        Map<Integer, LockHolder> extentLocks = new HashMap<>();
        for (LockHolder lock : locks.locks()) {
            int extent = extentOf(lock.lockName());
            if (extent >= 0 && extent < geometry.extentCount()) {
                extentLocks.put(extent, lock);
            }
        }
        int unleased = 0;
        int givable = 0;
        Set<String> givers = new TreeSet<>();
        for (int extent = 0; extent < geometry.extentCount(); extent++) {
            int holder = shared.extentHolder(extent);
            boolean free = holder == 0;
            boolean dead = holder != 0 && holder != node && !live.contains(holder) && shared.extentType(extent) == type
                    && shared.freeBlocks(extent) > 0;
            LockHolder lock = extentLocks.get(extent);
            if ((free || dead) && lock == null) {
                unleased++;
            } else if ((free || dead) && !lock.node().equals(locks.nodeName()) && typeName.equals(lock.notes().get(TYPE_NOTE))) {
                givable++;
                givers.add(lock.node());
            }
        }
        synchronized (pools) {
            int p = purpose.ordinal();
            if (unleased > 0) {
                shortages[p] = unleased + " extent(s) came free while this node looked; none was leased in time";
            } else if (givable == 0) {
                hopeless[p] = true;
                shortages[p] = "no extent of the store's " + geometry.extentCount() + " is free, and no other node holds a "
                        + "spare " + typeName + " extent it could give back";
                pools.notifyAll();
            } else {
                shortages[p] = "asked the other nodes to give back spare " + typeName + " extents (" + givable
                        + " held by " + String.join(", ", givers) + "); none came back in time";
            }
        }
    }

    /** The extent an {@code extent/N} lock guards, or -1 for another lock. */
    public static int extentOf(String lockName) {
        if (!lockName.startsWith(LOCK_PREFIX)) {
            return -1;
        }
        try {
            return Integer.parseInt(lockName.substring(LOCK_PREFIX.length()));
        } catch (NumberFormatException notAnExtent) {
            return -1;
        }
    }

    private void forgetEnded() {
        synchronized (pools) {
            for (ArrayDeque<Spare> pool : pools) {
                pool.removeIf(spare -> !spare.lease().isValid()); // released with the other ended leases below
            }
        }
        for (int p = 0; p < wants.length; p++) {
            if (wants[p] != null && !wants[p].isValid()) {
                wants[p].release();
                wants[p] = null;
            }
        }
        for (Iterator<Map.Entry<Integer, Spare>> it = leased.entrySet().iterator(); it.hasNext(); ) {
            Map.Entry<Integer, Spare> entry = it.next();
            Lease lease = entry.getValue().lease();
            if (!lease.isValid()) {
                lease.release(); // lapsed but not yet known lost: give the lock back so it can be taken again
                it.remove();
                announcedTaken.remove(entry.getKey());
            }
        }
    }

    /** Notes on the lock of every spare the map took since the last refill that the node allocates there now. */
    private void announceTaken() {
        Set<Integer> pooled = new java.util.HashSet<>();
        synchronized (pools) {
            for (ArrayDeque<Spare> pool : pools) {
                for (Spare spare : pool) {
                    pooled.add(spare.extent());
                }
            }
        }
        for (Spare spare : leased.values()) {
            if (!pooled.contains(spare.extent()) && !announcedTaken.contains(spare.extent())) {
                locks.annotate(spare.lease(), notes(spare.type(), USE_ALLOCATING)); // false: the lease ended, forgotten next time
                announcedTaken.add(spare.extent());
            }
        }
    }

    private static Map<String, String> notes(ExtentRecord.Type type, String use) {
        return Map.of(TYPE_NOTE, type.name().toLowerCase(), USE_NOTE, use);
    }

    private void fill(SpaceMap.Purpose purpose, Set<Integer> live, int goal, boolean othersWant, int share) {
        ExtentRecord.Type type = purpose == SpaceMap.Purpose.DATA ? ExtentRecord.Type.DATA : ExtentRecord.Type.METADATA;
        boolean deadOnesPooled;
        synchronized (pools) {
            deadOnesPooled = pools.get(purpose.ordinal()).stream()
                    .anyMatch(spare -> spare.formerHolder() != 0 && spare.formerHolder() != node);
        }
        int extentCount = geometry.extentCount();
        int start = Math.floorMod(node * 0x9E3779B1, extentCount); // nodes look for free extents in different places
        // Three passes: this node's own unleased extents, dead nodes' extents, free extents (design note 2).
        for (int pass = 0; pass < 3; pass++) {
            for (int step = 0; step < extentCount; step++) {
                boolean full = spareBlocks(purpose) >= (long) goal * usableBlocksPerExtent();
                if (full && (pass != 1 || deadOnesPooled || othersWant)) {
                    break;
                }
                int extent = (start + step) % extentCount;
                int holder = candidate(extent, type, pass, live);
                if (holder < 0) {
                    continue;
                }
                Spare spare = lease(extent, holder, type);
                if (spare != null) {
                    synchronized (pools) {
                        pools.get(purpose.ordinal()).addLast(spare);
                        failedWaits[purpose.ordinal()] = null;
                        pools.notifyAll(); // a taker may be waiting (design note 5)
                    }
                    deadOnesPooled |= pass == 1;
                }
            }
        }
        String why;
        if (spares(purpose) > 0) {
            why = "the spares leased were used up before the next refill";
        } else if (goal == 0) {
            why = othersWant ? "another node waits for a " + purpose.name().toLowerCase() + " extent, and this node "
                    + "gave its spares back" : "free extents are short: this node's share of them is " + share;
        } else {
            why = "no extent of the store's " + extentCount + " is free: each is held by a live node or full";
        }
        setShortage(purpose, why);
    }

    /** Free blocks in the spares pooled for {@code purpose}: partly used extents count for what they have left. */
    private long spareBlocks(SpaceMap.Purpose purpose) {
        synchronized (pools) {
            long blocks = 0;
            for (Spare spare : pools.get(purpose.ordinal())) {
                blocks += blocksOf(spare);
            }
            return blocks;
        }
    }

    private long blocksOf(Spare spare) {
        return spare.formerHolder() == 0 ? geometry.extentBlocks() - geometry.reservedBlocks(spare.extent())
                : shared.freeBlocks(spare.extent());
    }

    /** The blocks an extent other than extent 0 offers for allocation. */
    private long usableBlocksPerExtent() {
        return geometry.extentBlocks() - geometry.reservedBlocks(geometry.extentCount() - 1);
    }

    /** The holder {@code extent}'s word names if it is a candidate of {@code pass}, else -1. */
    private int candidate(int extent, ExtentRecord.Type type, int pass, Set<Integer> live) {
        if (leased.containsKey(extent)) {
            return -1;
        }
        int holder = shared.extentHolder(extent);
        if (holder == 0) {
            return pass == 2 ? 0 : -1;
        }
        if (shared.extentType(extent) != type || shared.freeBlocks(extent) <= 0) {
            return -1;
        }
        boolean wanted = pass == 0 ? holder == node : pass == 1 && holder != node && !live.contains(holder);
        return wanted ? holder : -1;
    }

    private Spare lease(int extent, int holder, ExtentRecord.Type type) {
        Lease lease;
        try {
            lease = locks.acquire(lockName(extent), Duration.ZERO, notes(type, USE_SPARE));
        } catch (LockHeldException held) {
            return null; // another node's (a spare of its own, or still the dead node's until its leases expire)
        }
        int now = shared.extentHolder(extent);
        if (now != holder || (holder != 0 && shared.extentType(extent) != type)) {
            lease.release(); // claimed meanwhile by a node working without the lock: not ours to take
            return null;
        }
        Spare spare = new Spare(extent, holder, type, lease);
        leased.put(extent, spare);
        if (holder != 0 && holder != node) {
            LOG.info("leased extent {} ({}) of dead node id {} (token {}); the next allocation that needs an extent takes it over",
                    extent, type.name().toLowerCase(), holder, lease.fencingToken());
        }
        return spare;
    }

    /** The lock guarding allocation in {@code extent} and its record. */
    public static String lockName(int extent) {
        return LOCK_PREFIX + extent;
    }

    /** Releases every lease (after the store is closed, so every record is durable). */
    @Override
    public synchronized void close() {
        closed = true;
        synchronized (pools) {
            for (ArrayDeque<Spare> pool : pools) {
                pool.clear();
            }
            pools.notifyAll();
        }
        for (int p = 0; p < wants.length; p++) {
            if (wants[p] != null) {
                wants[p].release();
                wants[p] = null;
            }
        }
        for (Spare spare : leased.values()) {
            spare.lease().release();
        }
        leased.clear();
        announcedTaken.clear();
    }
}
