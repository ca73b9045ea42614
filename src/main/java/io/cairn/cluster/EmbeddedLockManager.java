package io.cairn.cluster;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * The lock manager of a single process: everything in memory, no coordinator. It is the default when a
 * node runs without {@code --cluster}; nobody outside the process can take a lease, so leases never
 * expire and are only released.
 *
 * <p>Design notes.
 * <ol>
 *   <li>Fencing tokens come from one counter for all locks, starting above {@code tokenFloor}; a store
 *       that records tokens passes the largest it recorded, so tokens keep increasing across restarts.</li>
 *   <li>Elections: the first candidate of a role leads until it closes; then the next one, in order.</li>
 * </ol>
 *
 * <p>Threading: any thread; all state is guarded by this object's monitor, and waiting acquirers wait on it.
 */
public final class EmbeddedLockManager implements LockManager {

    private final String nodeName;
    private final Map<String, String> attributes;
    private final ValidityEpoch epoch = ValidityEpoch.unlimited();
    private final Map<String, Lease> held = new HashMap<>();
    /** The notes of each held lock (same keys as {@code held}). */
    private final Map<String, Map<String, String>> notesByLock = new HashMap<>();
    private final Map<String, Deque<EmbeddedElection>> candidates = new HashMap<>();
    private long lastToken;
    private boolean closed;

    public EmbeddedLockManager(String nodeName) {
        this(nodeName, Map.of(), 0);
    }

    /**
     * @param tokenFloor every fencing token issued is greater than this (note 1)
     */
    public EmbeddedLockManager(String nodeName, Map<String, String> attributes, long tokenFloor) {
        this.nodeName = Names.node(nodeName);
        attributes.forEach(Names::attribute);
        Map<String, String> published = new LinkedHashMap<>(attributes);
        published.putIfAbsent("pid", Long.toString(ProcessHandle.current().pid()));
        this.attributes = Map.copyOf(published);
        if (tokenFloor < 0) {
            throw new IllegalArgumentException("token floor must not be negative: " + tokenFloor);
        }
        this.lastToken = tokenFloor;
    }

    @Override
    public String nodeName() {
        return nodeName;
    }

    @Override
    public LeaseTimeouts timeouts() {
        return LeaseTimeouts.defaults();
    }

    @Override
    public synchronized Lease acquire(String lockName, Duration wait, Map<String, String> notes) {
        Names.lock(lockName);
        notes.forEach(Names::attribute);
        long deadlineNanos = System.nanoTime() + wait.toNanos();
        while (true) {
            ensureOpen();
            Lease current = held.get(lockName);
            if (current == null) {
                Lease lease = new Lease(lockName, nodeName, ++lastToken, epoch, this::released);
                held.put(lockName, lease);
                notesByLock.put(lockName, Map.copyOf(notes));
                return lease;
            }
            long remainingNanos = deadlineNanos - System.nanoTime();
            if (remainingNanos <= 0) {
                throw new LockHeldException(holderOf(lockName, current));
            }
            try {
                wait(Math.max(1, remainingNanos / 1_000_000));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for lock " + lockName, e);
            }
        }
    }

    @Override
    public synchronized boolean annotate(Lease lease, Map<String, String> notes) {
        notes.forEach(Names::attribute);
        ensureOpen();
        if (held.get(lease.lockName()) != lease) {
            return false;
        }
        notesByLock.put(lease.lockName(), Map.copyOf(notes));
        return true;
    }

    private synchronized void released(Lease lease) {
        if (held.get(lease.lockName()) == lease) {
            held.remove(lease.lockName());
            notesByLock.remove(lease.lockName());
            notifyAll();
        }
    }

    @Override
    public synchronized Optional<LockHolder> holder(String lockName) {
        Names.lock(lockName);
        return Optional.ofNullable(held.get(lockName)).map(lease -> holderOf(lockName, lease));
    }

    @Override
    public synchronized List<LockHolder> locks() {
        List<LockHolder> result = new ArrayList<>();
        new TreeMap<>(held).forEach((name, lease) -> result.add(holderOf(name, lease)));
        return result;
    }

    private LockHolder holderOf(String lockName, Lease lease) {
        return new LockHolder(lockName, nodeName, lease.fencingToken(), notesByLock.getOrDefault(lockName, Map.of()));
    }

    @Override
    public List<Member> members() {
        return List.of(new Member(nodeName, attributes));
    }

    @Override
    public synchronized Election elect(String role) {
        Names.role(role);
        ensureOpen();
        EmbeddedElection election = new EmbeddedElection(role);
        candidates.computeIfAbsent(role, r -> new ArrayDeque<>()).addLast(election);
        return election;
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (Lease lease : List.copyOf(held.values())) {
            lease.release();
        }
        candidates.clear();
        epoch.end("lock manager closed");
        notifyAll();
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("lock manager of node " + nodeName + " is closed");
        }
    }

    private final class EmbeddedElection implements Election {

        private final String role;

        EmbeddedElection(String role) {
            this.role = role;
        }

        @Override
        public String role() {
            return role;
        }

        @Override
        public boolean isLeader() {
            synchronized (EmbeddedLockManager.this) {
                Deque<EmbeddedElection> queue = candidates.get(role);
                return queue != null && queue.peekFirst() == this;
            }
        }

        @Override
        public boolean awaitLeadership(Duration wait) throws InterruptedException {
            long deadlineNanos = System.nanoTime() + wait.toNanos();
            synchronized (EmbeddedLockManager.this) {
                while (!isLeader()) {
                    long remainingNanos = deadlineNanos - System.nanoTime();
                    if (remainingNanos <= 0 || closed) {
                        return false;
                    }
                    EmbeddedLockManager.this.wait(Math.max(1, remainingNanos / 1_000_000));
                }
                return true;
            }
        }

        @Override
        public Optional<String> leader() {
            synchronized (EmbeddedLockManager.this) {
                Deque<EmbeddedElection> queue = candidates.get(role);
                return queue == null || queue.isEmpty() ? Optional.empty() : Optional.of(nodeName);
            }
        }

        @Override
        public void close() {
            synchronized (EmbeddedLockManager.this) {
                Deque<EmbeddedElection> queue = candidates.get(role);
                if (queue != null && queue.remove(this)) {
                    EmbeddedLockManager.this.notifyAll();
                }
            }
        }
    }
}
