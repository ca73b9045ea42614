package io.cairn.cluster;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Locks, membership and elections of one store's nodes in ZooKeeper, through Apache Curator.
 *
 * <p>Design notes (docs/CLUSTER.md has the full argument).
 * <ol>
 *   <li>A lock is an ephemeral znode {@code /cairn/STORE/locks/LOCK}. Creating it is acquiring the
 *       lease; its czxid is the fencing token. ZooKeeper's zxids increase with every change of the
 *       ensemble's state, so a later creation of the same znode always has a larger czxid: tokens are
 *       strictly increasing per lock name across all holders, with no counter to keep.</li>
 *   <li>The znode lives as long as the session that created it; the server expires a session no
 *       earlier than the session timeout T after it last heard from the client. Only then can another
 *       node create the znode.</li>
 *   <li>Validity: every answered request (heartbeat, acquire) confirms the current
 *       {@link ValidityEpoch} up to its <em>send</em> time + 2/3 of the negotiated session timeout. The
 *       server heard it no earlier than it was sent, so the node stops considering its leases valid at
 *       least T/3 before the server could expire the session (note 2). Once an epoch lapses it never
 *       comes back: its leases are lost, and the node deletes their znodes if its session survived.</li>
 *   <li>Znodes are created and deleted through the raw {@link ZooKeeper} handle of the session they
 *       belong to, never through "whatever session Curator has now": after an expiry Curator opens a new
 *       session, and a retried delete on it could remove the lock another node has since taken.</li>
 *   <li>A lost reply is resolved by ownership: if a create's answer was lost and the znode exists with
 *       this session as owner, this call created it. Acquires in this process are serialized, so no other
 *       thread's fresh znode is mistaken for a leftover.</li>
 *   <li>Membership is an ephemeral znode per node name; a second live node of the same name is refused.
 *       After a session expiry the heartbeat registers the node again in the new session.</li>
 * </ol>
 *
 * <p>Threading: public methods from any thread. One heartbeat thread confirms epochs, notices lapses,
 * registers membership and retries deletions; Curator's event thread reports connection changes.
 * {@link #state} guards the epoch, the held leases and the pending deletions.
 */
public final class ZooKeeperLockManager implements LockManager {

    private static final Logger log = LoggerFactory.getLogger(ZooKeeperLockManager.class);

    /**
     * How a node joins a store's coordination.
     *
     * @param connectString ZooKeeper ensemble, {@code HOST:PORT[,HOST:PORT...]}
     * @param storeId       the store's identity (its UUID); one ZooKeeper can coordinate many stores
     * @param nodeName      this node's name, unique among the live members ({@link Names#node})
     * @param attributes    published with the membership (e.g. {@code nbd}, {@code admin}); {@code pid} is added
     * @param timeouts      the lease timeout and what derives from it
     */
    public record Options(String connectString, String storeId, String nodeName, Map<String, String> attributes,
                          LeaseTimeouts timeouts) {

        public Options {
            Names.storeId(storeId);
            Names.node(nodeName);
            attributes.forEach(Names::attribute);
            Map<String, String> published = new LinkedHashMap<>(attributes);
            published.putIfAbsent("pid", Long.toString(ProcessHandle.current().pid()));
            attributes = Map.copyOf(published);
        }
    }

    /** A lease this node holds, with the session handle and znode that stand for it. */
    private record HeldLock(Lease lease, ZooKeeper handle, String path, Map<String, String> notes) {
    }

    private final Options options;
    private final Object state = new Object();
    private CoordinatorConnection connection;
    private final ScheduledExecutorService heartbeat;
    /** The current epoch, or null when the next connected moment must start one (guarded by state). */
    private volatile ValidityEpoch epoch;
    private final Map<String, HeldLock> held = new HashMap<>();
    private final List<HeldLock> pendingDeletes = new ArrayList<>();
    private final List<LeaderLatch> latches = new CopyOnWriteArrayList<>();
    /** Acquires of this process, one at a time (note 5). */
    private final Object acquiring = new Object();
    /** Session id the membership znode was created in; 0 before. */
    private volatile long registeredSessionId;
    /** The session whose negotiated timeout was reported as differing from the lease timeout (guarded by state). */
    private long warnedSessionId;
    /** Send time of the heartbeat in flight, or 0. */
    private final AtomicLong beatInFlightSince = new AtomicLong();
    private volatile boolean closed;

    private ZooKeeperLockManager(Options options) {
        this.options = options;
        this.heartbeat = Executors.newSingleThreadScheduledExecutor(runnable -> {
            Thread thread = new Thread(runnable, "cairn-zk-heartbeat-" + options.nodeName());
            thread.setDaemon(true);
            return thread;
        });
    }

    /**
     * Connects, registers this node as a member and starts the heartbeat.
     *
     * @throws CoordinatorUnavailableException ZooKeeper did not answer within the coordinator wait
     * @throws IllegalStateException          a live node already has this name (after waiting one lease
     *                                         timeout for a dead one's registration to expire)
     */
    public static ZooKeeperLockManager connect(Options options) {
        ZooKeeperLockManager manager = new ZooKeeperLockManager(options);
        try {
            manager.connection = CoordinatorConnection.open(options.connectString(), options.timeouts(), manager::connectionChanged);
            manager.createLayout();
            manager.registerWaitingForDeadNamesake();
            long periodMillis = options.timeouts().heartbeatMillis();
            manager.heartbeat.scheduleWithFixedDelay(manager::beat, 0, periodMillis, TimeUnit.MILLISECONDS);
            return manager;
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    @Override
    public String nodeName() {
        return options.nodeName();
    }

    @Override
    public LeaseTimeouts timeouts() {
        return options.timeouts();
    }

    /** The store this manager coordinates. */
    public String storeId() {
        return options.storeId();
    }

    // ---------------------------------------------------------------- leases

    @Override
    public Lease acquire(String lockName, Duration wait, Map<String, String> notes) {
        String path = Znodes.lock(options.storeId(), lockName);
        Map<String, String> data = lockData(notes);
        long deadlineNanos = System.nanoTime() + wait.toNanos();
        boolean createMayHaveHappened = false;
        while (true) {
            ensureOpen();
            // A caller willing to wait for the holder waits as long for the coordinator, but never less than T/2.
            long remainingMillis = (deadlineNanos - System.nanoTime()) / 1_000_000;
            ZooKeeper zk = connection.awaitConnected(Math.max(timeouts().coordinatorWaitMillis(), remainingMillis));
            CountDownLatch changed = new CountDownLatch(1);
            LockHolder holder;
            try {
                synchronized (acquiring) {
                    HeldLock mine = heldLock(lockName);
                    if (mine == null) {
                        ValidityEpoch current = liveEpoch(zk);
                        long sentNanos = System.nanoTime();
                        try {
                            Stat stat = new Stat();
                            try {
                                zk.create(path, Znodes.encode(data), ZooDefs.Ids.OPEN_ACL_UNSAFE,
                                        CreateMode.EPHEMERAL, stat);
                            } catch (KeeperException.ConnectionLossException lostReply) {
                                // Only a lost answer to the create itself may mean the znode is ours (note 5).
                                createMayHaveHappened = true;
                                throw lostReply;
                            }
                            Lease lease = grant(zk, current, lockName, path, notes, stat.getCzxid(), sentNanos);
                            if (lease != null) {
                                return lease;
                            }
                            continue;
                        } catch (KeeperException.NodeExistsException exists) {
                            Stat stat = zk.exists(path, event -> changed.countDown());
                            if (stat == null) {
                                continue; // released meanwhile: try again at once
                            }
                            if (stat.getEphemeralOwner() == zk.getSessionId()) {
                                if (createMayHaveHappened) {
                                    // Our own create, whose answer was lost (note 5).
                                    Lease lease = grant(zk, current, lockName, path, notes, stat.getCzxid(), sentNanos);
                                    if (lease != null) {
                                        return lease;
                                    }
                                } else {
                                    // A znode of a lease this session released or lost, whose deletion is still pending.
                                    deleteQuietly(zk, path);
                                }
                                createMayHaveHappened = false;
                                continue;
                            }
                        }
                    }
                    holder = mine != null ? new LockHolder(lockName, nodeName(), mine.lease().fencingToken(), mine.notes())
                            : ZnodeReads.holder(zk, options.storeId(), lockName).orElse(null);
                }
                createMayHaveHappened = false;
                if (holder == null) {
                    continue;
                }
                long remainingNanos = deadlineNanos - System.nanoTime();
                if (remainingNanos <= 0) {
                    throw new LockHeldException(holder);
                }
                // Another node's lock: its deletion (or a connection change) fires the watch. A lock held in
                // this process is released without a watch event we registered, so it is checked every retry interval.
                boolean heldHere = holder.node().equals(nodeName());
                changed.await(heldHere ? Math.min(remainingNanos, TimeUnit.MILLISECONDS.toNanos(timeouts().retryMillis())) : remainingNanos,
                        TimeUnit.NANOSECONDS);
            } catch (KeeperException.ConnectionLossException lost) {
                pause();
            } catch (KeeperException.SessionExpiredException expired) {
                createMayHaveHappened = false;
                pause();
            } catch (KeeperException other) {
                throw new CoordinatorUnavailableException("ZooKeeper at " + connection.connectString()
                        + " refused to create lock " + lockName + ": " + other.getMessage(), other);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while acquiring lock " + lockName, e);
            }
        }
    }

    /** What a lock znode holds: the notes, checked, and the holder's name. */
    private Map<String, String> lockData(Map<String, String> notes) {
        notes.forEach(Names::attribute);
        if (notes.containsKey(Znodes.NODE_KEY)) {
            throw new IllegalArgumentException("a lock's notes may not use the key '" + Znodes.NODE_KEY + "': it names the holder");
        }
        Map<String, String> data = new java.util.TreeMap<>(notes);
        data.put(Znodes.NODE_KEY, nodeName());
        return data;
    }

    /**
     * Writes the new notes into the lease's own znode, through the session that created it (note 4), and only if
     * the znode is still the one created for this lease (its czxid is the lease's token, its owner this session):
     * a lock lost and taken by another node is never written.
     */
    @Override
    public boolean annotate(Lease lease, Map<String, String> notes) {
        byte[] data = Znodes.encode(lockData(notes));
        long deadlineNanos = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeouts().coordinatorWaitMillis());
        while (true) {
            ensureOpen();
            HeldLock mine = heldLock(lease.lockName());
            if (mine == null || mine.lease() != lease || !lease.isHeld()) {
                return false;
            }
            ZooKeeper zk = mine.handle();
            try {
                Stat stat = zk.exists(mine.path(), false);
                if (stat == null || stat.getCzxid() != lease.fencingToken() || stat.getEphemeralOwner() != zk.getSessionId()) {
                    return false;
                }
                zk.setData(mine.path(), data, stat.getVersion());
                synchronized (state) {
                    if (held.get(lease.lockName()) == mine) {
                        held.put(lease.lockName(), new HeldLock(lease, zk, mine.path(), Map.copyOf(notes)));
                    }
                }
                return true;
            } catch (KeeperException.BadVersionException changedMeanwhile) {
                // another annotate of this lease: read again
            } catch (KeeperException.NoNodeException | KeeperException.SessionExpiredException gone) {
                return false;
            } catch (KeeperException.ConnectionLossException lost) {
                if (System.nanoTime() > deadlineNanos) {
                    throw connection.unavailable(lost);
                }
                pause();
            } catch (KeeperException other) {
                throw new CoordinatorUnavailableException("ZooKeeper at " + connection.connectString()
                        + " refused to change the notes of lock " + lease.lockName() + ": " + other.getMessage(), other);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while changing the notes of lock " + lease.lockName(), e);
            }
        }
    }

    /**
     * Turns a created znode into a lease, if the epoch it was created in is still valid; otherwise
     * deletes the znode and returns null so the caller tries again in a fresh epoch.
     */
    private Lease grant(ZooKeeper zk, ValidityEpoch current, String lockName, String path, Map<String, String> notes, long czxid,
                        long sentNanos) {
        Lease lease = new Lease(lockName, nodeName(), czxid, current, this::released);
        synchronized (state) {
            if (current.confirm(sentNanos) && epoch == current) {
                held.put(lockName, new HeldLock(lease, zk, path, notes));
                watchForDeletion(zk, path, lease);
                return lease;
            }
        }
        deleteQuietly(zk, path);
        return null;
    }

    /** A lock znode deleted by anyone but this node's release means the lease is gone. */
    private void watchForDeletion(ZooKeeper zk, String path, Lease lease) {
        zk.exists(path, event -> {
            if (event.getType() == Watcher.Event.EventType.NodeDeleted) {
                lose(lease, "its lock znode " + path + " was deleted");
            } else if (event.getType() != Watcher.Event.EventType.None && lease.isHeld()) {
                // A data change used the watch up: watch again. Connection events (type None) leave it in
                // place: the client re-registers its watches when it reconnects in the same session.
                watchForDeletion(zk, path, lease);
            }
        }, (rc, p, ctx, stat) -> {
            if (rc == KeeperException.Code.NONODE.intValue()) {
                lose(lease, "its lock znode " + path + " was deleted");
            }
        }, null);
    }

    private void lose(Lease lease, String reason) {
        synchronized (state) {
            HeldLock current = held.get(lease.lockName());
            if (current != null && current.lease() == lease) {
                held.remove(lease.lockName());
            }
        }
        if (lease.markLost(reason)) {
            log.warn("node {}: lost {}: {}", nodeName(), lease, reason);
        }
    }

    private HeldLock heldLock(String lockName) {
        synchronized (state) {
            HeldLock mine = held.get(lockName);
            return mine != null && !mine.lease().isLost() ? mine : null;
        }
    }

    private void released(Lease lease) {
        HeldLock mine;
        synchronized (state) {
            mine = held.get(lease.lockName());
            if (mine == null || mine.lease() != lease) {
                return;
            }
            held.remove(lease.lockName());
        }
        deleteThroughOwnSession(mine);
    }

    /** Deletes a lock znode through the handle that created it (note 4); retried by the heartbeat on a lost reply. */
    private void deleteThroughOwnSession(HeldLock lock) {
        lock.handle().delete(lock.path(), -1, (rc, path, ctx) -> {
            if (rc == KeeperException.Code.CONNECTIONLOSS.intValue() || rc == KeeperException.Code.OPERATIONTIMEOUT.intValue()) {
                synchronized (state) {
                    pendingDeletes.add(lock);
                }
            }
            // OK, NONODE: gone. SESSIONEXPIRED: the server removed it with the session.
        }, null);
    }

    private static void deleteQuietly(ZooKeeper zk, String path) {
        zk.delete(path, -1, (rc, p, ctx) -> { }, null);
    }

    // ---------------------------------------------------------------- epochs and heartbeat

    /**
     * The epoch for session {@code zk}, starting a new one if the session changed or the current epoch
     * lapsed; the leases of an epoch that ends are lost (their listeners run after the state lock is
     * released, so a listener may call back into the manager).
     */
    private ValidityEpoch liveEpoch(ZooKeeper zk) {
        List<HeldLock> lost = List.of();
        ValidityEpoch ended = null;
        boolean sessionMayLive = false;
        ValidityEpoch current;
        synchronized (state) {
            current = epoch;
            if (current != null && current.sessionId != zk.getSessionId()) {
                ended = current;
                lost = detach(current, "ZooKeeper session 0x" + Long.toHexString(current.sessionId) + " expired");
                current = null;
            } else if (current != null && (current.lapsed(System.nanoTime()) || current.endReason() != null)) {
                ended = current;
                sessionMayLive = true;
                lost = detach(current, null);
                current = null;
            }
            if (current == null) {
                if (zk.getSessionTimeout() != timeouts().sessionTimeoutMillis() && zk.getSessionId() != warnedSessionId) {
                    warnedSessionId = zk.getSessionId();
                    log.warn("node {}: ZooKeeper granted a session timeout of {} ms, not the lease timeout of {} ms (the server's"
                            + " minSessionTimeout/maxSessionTimeout, 2 and 20 ticks by default); a dead node's locks are free after"
                            + " {} ms", nodeName(), zk.getSessionTimeout(), timeouts().sessionTimeoutMillis(), zk.getSessionTimeout());
                }
                // The shorter of the two: a window derived from a longer timeout than the server keeps would be unsafe.
                long negotiatedMillis = Math.min(zk.getSessionTimeout(), timeouts().sessionTimeoutMillis());
                current = ValidityEpoch.forSession(zk.getSessionId(), LeaseTimeouts.validityNanos(negotiatedMillis));
                epoch = current;
            }
        }
        if (ended != null) {
            loseAll(lost, ended, sessionMayLive);
        }
        return current;
    }

    /**
     * Ends {@code ended} and loses its leases. When the session may still be alive ({@code sessionMayLive}),
     * their znodes are deleted through it so other nodes need not wait for the session to expire.
     * Called without the state lock held.
     */
    private void endEpoch(ValidityEpoch ended, String reason, boolean sessionMayLive) {
        List<HeldLock> lost;
        synchronized (state) {
            lost = detach(ended, reason);
        }
        loseAll(lost, ended, sessionMayLive);
    }

    /** Ends the epoch and takes its leases out of {@link #held}; the caller holds the state lock. */
    private List<HeldLock> detach(ValidityEpoch ended, String reason) {
        ended.end(reason != null ? reason : "not confirmed by ZooKeeper within " + ended.windowNanos() / 1_000_000 + " ms");
        List<HeldLock> lost = new ArrayList<>();
        held.values().removeIf(lock -> {
            if (lock.lease().epoch() == ended) {
                lost.add(lock);
                return true;
            }
            return false;
        });
        if (epoch == ended) {
            epoch = null;
        }
        return lost;
    }

    private void loseAll(List<HeldLock> lost, ValidityEpoch ended, boolean sessionMayLive) {
        for (HeldLock lock : lost) {
            if (lock.lease().markLost(ended.endReason())) {
                log.warn("node {}: lost {}: {}", nodeName(), lock.lease(), ended.endReason());
            }
            if (sessionMayLive) {
                deleteThroughOwnSession(lock);
            }
        }
    }

    private void connectionChanged(ConnectionState newState) {
        switch (newState) {
            case SUSPENDED, READ_ONLY -> log.warn("node {}: connection to ZooKeeper at {} suspended; {}",
                    nodeName(), options.connectString(), remainingValidityMillis() > 0
                            ? "leases stay valid for at most " + remainingValidityMillis() + " ms" : "no lease is valid");
            case LOST -> {
                ValidityEpoch current = epoch;
                if (current != null) {
                    endEpoch(current, "ZooKeeper session 0x" + Long.toHexString(current.sessionId) + " lost", false);
                }
            }
            case CONNECTED, RECONNECTED -> {
                if (!closed) {
                    heartbeat.execute(this::beat);
                }
            }
        }
    }

    private long remainingValidityMillis() {
        ValidityEpoch current = epoch;
        return current == null ? 0 : current.remainingNanos(System.nanoTime()) / 1_000_000;
    }

    /** One heartbeat: notice a lapse, confirm the epoch, keep membership, retry deletions. */
    private void beat() {
        if (closed) {
            return;
        }
        try {
            ValidityEpoch current = epoch;
            if (current != null && current.lapsed(System.nanoTime())) {
                endEpoch(current, null, true);
            }
            if (!connection.isConnected()) {
                return;
            }
            ZooKeeper zk = connection.client().getZookeeperClient().getZooKeeper();
            if (!zk.getState().isConnected()) {
                return;
            }
            sendHeartbeat(zk, liveEpoch(zk));
            if (registeredSessionId != zk.getSessionId()) {
                register(zk, false);
            }
            retryDeletes();
        } catch (Exception e) {
            // The next beat tries again; a failure here must not stop the schedule.
            log.debug("node {}: heartbeat failed: {}", nodeName(), e.toString());
        }
    }

    private void sendHeartbeat(ZooKeeper zk, ValidityEpoch current) {
        long sentNanos = System.nanoTime();
        long inFlightSince = beatInFlightSince.get();
        // One heartbeat in flight at a time; one older than the lease timeout is forgotten.
        if (inFlightSince != 0 && sentNanos - inFlightSince < timeouts().lease().toNanos()) {
            return;
        }
        if (!beatInFlightSince.compareAndSet(inFlightSince, sentNanos)) {
            return;
        }
        zk.exists(Znodes.store(options.storeId()), false, (rc, path, ctx, stat) -> {
            beatInFlightSince.compareAndSet(sentNanos, 0);
            if (rc == KeeperException.Code.OK.intValue() || rc == KeeperException.Code.NONODE.intValue()) {
                if (!current.confirm(sentNanos) && current.endReason() != null && !closed) {
                    heartbeat.execute(this::beat); // the epoch lapsed: lose its leases now
                }
            }
        }, null);
    }

    private void retryDeletes() {
        List<HeldLock> retry;
        synchronized (state) {
            retry = List.copyOf(pendingDeletes);
            pendingDeletes.clear();
        }
        retry.forEach(this::deleteThroughOwnSession);
    }

    // ---------------------------------------------------------------- membership

    private void createLayout() {
        ZooKeeper zk = connection.awaitConnected();
        for (String path : List.of(Znodes.ROOT, Znodes.store(options.storeId()), Znodes.members(options.storeId()),
                Znodes.locks(options.storeId()), Znodes.elections(options.storeId()))) {
            try {
                zk.create(path, new byte[0], ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            } catch (KeeperException.NodeExistsException alreadyThere) {
                // another node made it first
            } catch (KeeperException e) {
                throw connection.unavailable(e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while connecting to ZooKeeper", e);
            }
        }
    }

    /**
     * Registers this node; a registration of the same name by another session is waited out for one
     * lease timeout (a node that died a moment ago), then refused.
     */
    private void registerWaitingForDeadNamesake() {
        long deadlineNanos = System.nanoTime() + timeouts().lease().toNanos() + TimeUnit.MILLISECONDS.toNanos(timeouts().retryMillis());
        while (true) {
            ZooKeeper zk = connection.awaitConnected();
            Optional<Member> namesake = register(zk, true);
            if (namesake.isEmpty()) {
                liveEpoch(zk);
                return;
            }
            if (System.nanoTime() - deadlineNanos >= 0) {
                throw new IllegalStateException("node name " + nodeName() + " is already in use by a live member of store "
                        + options.storeId() + " (" + describe(namesake.get()) + "); choose another --node name");
            }
            pause();
        }
    }

    /** Creates this node's member znode in session {@code zk}; the namesake that holds the name, if any. */
    private Optional<Member> register(ZooKeeper zk, boolean failLoudly) {
        String path = Znodes.member(options.storeId(), nodeName());
        try {
            zk.create(path, Znodes.encode(options.attributes()), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
            registeredSessionId = zk.getSessionId();
            return Optional.empty();
        } catch (KeeperException.NodeExistsException exists) {
            Stat stat = new Stat();
            try {
                byte[] data = zk.getData(path, false, stat);
                if (stat.getEphemeralOwner() == zk.getSessionId()) {
                    registeredSessionId = zk.getSessionId();
                    return Optional.empty();
                }
                return Optional.of(new Member(nodeName(), Znodes.decode(data)));
            } catch (KeeperException.NoNodeException goneMeanwhile) {
                return register(zk, failLoudly);
            } catch (KeeperException | InterruptedException e) {
                return rethrowOrEmpty(e, failLoudly);
            }
        } catch (KeeperException | InterruptedException e) {
            return rethrowOrEmpty(e, failLoudly);
        }
    }

    private Optional<Member> rethrowOrEmpty(Exception e, boolean failLoudly) {
        if (e instanceof InterruptedException) {
            Thread.currentThread().interrupt();
        }
        if (failLoudly) {
            throw connection.unavailable(e);
        }
        log.debug("node {}: registration failed, retrying: {}", nodeName(), e.toString());
        return Optional.of(new Member(nodeName(), Map.of()));
    }

    private static String describe(Member member) {
        return member.attributes().isEmpty() ? "no attributes" : String.join(", ",
                member.attributes().entrySet().stream().map(entry -> entry.getKey() + " " + entry.getValue()).toList());
    }

    // ---------------------------------------------------------------- queries

    @Override
    public Optional<LockHolder> holder(String lockName) {
        Names.lock(lockName);
        return read(zk -> ZnodeReads.holder(zk, options.storeId(), lockName));
    }

    @Override
    public List<LockHolder> locks() {
        return read(zk -> ZnodeReads.locks(zk, options.storeId()));
    }

    @Override
    public List<Member> members() {
        return read(zk -> ZnodeReads.members(zk, options.storeId()));
    }

    private interface Read<T> {
        T from(ZooKeeper zk) throws KeeperException, InterruptedException;
    }

    /** Runs a read, retrying after a lost connection until the coordinator wait runs out. */
    private <T> T read(Read<T> read) {
        while (true) {
            ensureOpen();
            ZooKeeper zk = connection.awaitConnected();
            try {
                return read.from(zk);
            } catch (KeeperException.ConnectionLossException | KeeperException.SessionExpiredException retry) {
                pause();
            } catch (KeeperException e) {
                throw connection.unavailable(e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while reading from ZooKeeper", e);
            }
        }
    }

    // ---------------------------------------------------------------- elections

    @Override
    public Election elect(String role) {
        ensureOpen();
        connection.awaitConnected();
        LeaderLatch latch = new LeaderLatch(connection.client(), Znodes.election(options.storeId(), role), nodeName());
        try {
            latch.start();
        } catch (Exception e) {
            throw connection.unavailable(e);
        }
        latches.add(latch);
        return new ZooKeeperElection(role, latch);
    }

    private final class ZooKeeperElection implements Election {

        private final String role;
        private final LeaderLatch latch;

        ZooKeeperElection(String role, LeaderLatch latch) {
            this.role = role;
            this.latch = latch;
        }

        @Override
        public String role() {
            return role;
        }

        @Override
        public boolean isLeader() {
            ValidityEpoch current = epoch;
            return latch.hasLeadership() && current != null && current.isValid(System.nanoTime());
        }

        @Override
        public boolean awaitLeadership(Duration wait) throws InterruptedException {
            long deadlineNanos = System.nanoTime() + wait.toNanos();
            while (true) {
                long remainingNanos = deadlineNanos - System.nanoTime();
                if (latch.await(Math.max(0, remainingNanos), TimeUnit.NANOSECONDS) && isLeader()) {
                    return true;
                }
                if (deadlineNanos - System.nanoTime() <= 0 || latch.getState() == LeaderLatch.State.CLOSED) {
                    return false;
                }
                Thread.sleep(timeouts().retryMillis());
            }
        }

        @Override
        public Optional<String> leader() {
            return read(zk -> ZnodeReads.leader(zk, options.storeId(), role));
        }

        @Override
        public void close() {
            if (latches.remove(latch)) {
                closeLatch(latch);
            }
        }
    }

    private void closeLatch(LeaderLatch latch) {
        try {
            latch.close(LeaderLatch.CloseMode.SILENT);
        } catch (Exception e) {
            // Closing the session (or its expiry) removes the candidacy anyway.
            log.debug("node {}: leaving election failed: {}", nodeName(), e.toString());
        }
    }

    /** The handle of the current session (tests expire it from the server side). */
    ZooKeeper sessionHandle() {
        return connection.awaitConnected();
    }

    // ---------------------------------------------------------------- lifecycle

    /** Sleeps one retry interval between attempts. */
    private void pause() {
        try {
            Thread.sleep(timeouts().retryMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for ZooKeeper", e);
        }
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("lock manager of node " + nodeName() + " is closed");
        }
    }

    /**
     * Releases every lease and leaves elections and membership by closing the session: the server
     * deletes the session's ephemeral znodes at once.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        List<HeldLock> leases;
        synchronized (state) {
            leases = List.copyOf(held.values());
            ValidityEpoch current = epoch;
            if (current != null) {
                current.end("lock manager closed");
            }
        }
        for (HeldLock lock : leases) {
            lock.lease().release();
        }
        for (LeaderLatch latch : latches) {
            closeLatch(latch);
        }
        latches.clear();
        heartbeat.shutdownNow();
        if (connection != null) {
            connection.close();
        }
    }
}
