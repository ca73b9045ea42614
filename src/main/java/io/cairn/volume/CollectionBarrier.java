package io.cairn.volume;

import io.cairn.alloc.SharedCounters;
import io.cairn.io.StorageException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * The host-wide barrier that holds every node process serving a shared store (Store design note 10) at one
 * commit point at the same time, so that one of them — the garbage collector, the checker, or a space report
 * ({@link SpaceCheckpoint}) — can pin the roots of the whole store and copy its counters while no counter
 * changes (docs/CLUSTER.md, "Garbage collection" and "Space reports").
 *
 * <p>Why a simultaneous stop, and why through a file in {@code /dev/shm}.
 * <ol>
 *   <li>A collection compares a recount of the durable trees with a copy of the counters. Each node keeps
 *       changes in memory between its commits (fresh blocks, copies that moved children away from the
 *       durable root) and removals it applies only after a commit, so the counters equal the references of
 *       the durable state only at a moment when every node has just committed and applied its removals, and
 *       does nothing more. Nodes that commit and pin one after another are not enough: a block freed by one
 *       node after its own commit can be allocated again and linked into its next, unscanned, transaction
 *       before the counters are compared, with the very value they had before (an ABA that "free only
 *       blocks whose counter did not change" cannot see). So every node stops at a commit point until the
 *       collector has pinned the roots and copied the counters; that is the collection's checkpoint pause
 *       (one commit per node and the counter copy, milliseconds), after which they run on while it scans.</li>
 *   <li>The participants are exactly the processes that can change the counters: every Store opened shared on
 *       this host registers a slot here before it loads anything, and gives it back at close. ZooKeeper
 *       membership would not do: a process stopped past its session is no member, yet when it resumes it
 *       still applies the removals of its last commit to the shared counters, and a collection that had
 *       counted them as leaks would then subtract them twice. A slot whose process is gone (pid dead, or
 *       reused by a process started at another time) takes part in nothing. A process that does not answer
 *       (stopped) makes the collection fail with its pid named; nothing is changed.</li>
 *   <li>The request word carries the sequence number of the collection and the collector's slot, and is
 *       taken by CAS while no collection runs (sequence = released sequence): one collection per host at a
 *       time, whichever node asks. A request left by a collector whose process died is released by the
 *       next one.</li>
 *   <li>A participant frozen at sequence s holds its store's exclusive inspection hold
 *       ({@link Store#inspectCommitted}: committed, removals applied, no volume I/O, no admin change, no
 *       commit) until the collector releases s, or at most {@link #maxFreeze} (a hung collector must not
 *       stop the host for good), or until the collector's process is gone. One that gives up first writes s
 *       as abandoned, then lets go; the collector checks every participant after its checkpoint and
 *       undoes it if any gave up or any new process registered meanwhile, so a checkpoint is used only if
 *       every participant was frozen all through it. A store that cannot stop at a commit point (it has
 *       stopped writing after finding damage) gives up at once: what it serves from memory is not durable.
 *       A store that is closing has committed everything and gives its slot back; one abandoned as in a crash
 *       leaves without a word, like a process that dies — either way it changes nothing more.</li>
 * </ol>
 *
 * <p>File layout (little-endian, 64-bit words, CAS and volatile accesses only):
 * <pre>
 *   header   0 u32 magic "CGCB"   4 u32 version 1   8 u64 request: sequence &lt;&lt; 8 | collector slot
 *           16 u64 released sequence
 *   slots    from 4096, 128 of 64 bytes: 0 u64 owner (pid &lt;&lt; 32 | instance, 0 = free)
 *            8 u64 process start (epoch millis)   16 u64 frozen sequence   24 u64 abandoned sequence
 *           32 u64 node id
 * </pre>
 * Threading: one participant thread per store ({@code cairn-gc-barrier}); {@link #withOthersFrozen} from any
 * thread of the collecting store.
 */
public final class CollectionBarrier implements AutoCloseable {

    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(CollectionBarrier.class);
    /** "CGCB" as a little-endian u32. */
    private static final int MAGIC = 0x42434743;
    private static final int VERSION = 1;
    private static final long HEADER_BYTES = 4096;
    private static final long OFFSET_MAGIC = 0;
    private static final long OFFSET_VERSION = 4;
    private static final long OFFSET_REQUEST = 8;
    private static final long OFFSET_RELEASED = 16;
    private static final int SLOTS = 128;
    private static final long SLOT_BYTES = 64;
    private static final long SLOT_OWNER = 0;
    private static final long SLOT_STARTED = 8;
    private static final long SLOT_FROZEN = 16;
    private static final long SLOT_ABANDONED = 24;
    private static final long SLOT_NODE = 32;
    private static final long FILE_BYTES = HEADER_BYTES + SLOTS * SLOT_BYTES;
    private static final VarHandle WORD = ValueLayout.JAVA_LONG.varHandle();
    /** How often an idle participant looks for a request: the most each node adds to the checkpoint pause. */
    private static final long IDLE_POLL_NANOS = 5_000_000;
    private static final long FROZEN_POLL_NANOS = 100_000;
    /** A frozen participant looks whether its collector still lives every this many polls (a /proc read). */
    private static final int POLLS_PER_LIVENESS_CHECK = 100;
    /** Store instances of this process, so several stores of one process get distinct owners. */
    private static final AtomicInteger INSTANCES = new AtomicInteger();

    private final Arena arena;
    private final MemorySegment map;
    private final Store store;
    private final Duration barrierWait;
    private final Duration maxFreeze;
    private final long owner;
    private final int slot;
    private final Thread participant;
    private volatile boolean stopped;

    private CollectionBarrier(Arena arena, MemorySegment map, Store store, int node, Duration barrierWait) {
        this.arena = arena;
        this.map = map;
        this.store = store;
        this.barrierWait = barrierWait;
        this.maxFreeze = barrierWait.multipliedBy(3);
        this.owner = ProcessHandle.current().pid() << 32 | (INSTANCES.incrementAndGet() & 0xFFFF_FFFFL);
        this.slot = register(node);
        this.participant = Thread.ofPlatform().daemon().name("cairn-gc-barrier-" + node).unstarted(this::participate);
    }

    /**
     * Maps the barrier file next to {@code countersFile} (creating it if needed) and registers {@code store}
     * as a participant; {@link #start()} begins answering requests. {@code barrierWait}: how long a collector
     * waits for every participant (the lease timeout is the natural choice).
     */
    static CollectionBarrier register(Path countersFile, Store store, int node, Duration barrierWait) {
        Path file = countersFile.resolveSibling(countersFile.getFileName() + ".gc");
        Arena arena = Arena.ofShared();
        try {
            MemorySegment map;
            synchronized (CollectionBarrier.class) { // one file lock per process at a time (POSIX locks are per process)
                try (FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ,
                        StandardOpenOption.WRITE); FileLock ignored = channel.lock(0, HEADER_BYTES, false)) {
                    boolean fresh = channel.size() != FILE_BYTES;
                    if (fresh) {
                        channel.truncate(0);
                        channel.write(java.nio.ByteBuffer.allocate(1), FILE_BYTES - 1);
                    }
                    map = channel.map(FileChannel.MapMode.READ_WRITE, 0, FILE_BYTES, arena);
                    if (fresh || map.get(ValueLayout.JAVA_INT_UNALIGNED, OFFSET_MAGIC) != MAGIC
                            || map.get(ValueLayout.JAVA_INT_UNALIGNED, OFFSET_VERSION) != VERSION) {
                        map.fill((byte) 0);
                        map.set(ValueLayout.JAVA_INT_UNALIGNED, OFFSET_VERSION, VERSION);
                        map.set(ValueLayout.JAVA_INT_UNALIGNED, OFFSET_MAGIC, MAGIC);
                    }
                }
            }
            return new CollectionBarrier(arena, map, store, node, barrierWait);
        } catch (IOException e) {
            arena.close();
            throw new StorageException(StorageException.Code.IO, "cannot map the collection barrier file " + file + ": "
                    + e.getMessage());
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    /** Starts answering collection requests (once the store is loaded). */
    void start() {
        participant.start();
    }

    // ---------------------------------------------------------------- slots

    private int register(int node) {
        long started = processStart(ProcessHandle.current());
        for (int i = 0; i < SLOTS; i++) {
            long current = get(slotOffset(i, SLOT_OWNER));
            if ((current == 0 || !alive(i, current)) && WORD.compareAndSet(map, slotOffset(i, SLOT_OWNER), current, owner)) {
                set(slotOffset(i, SLOT_STARTED), started);
                set(slotOffset(i, SLOT_FROZEN), 0);
                set(slotOffset(i, SLOT_ABANDONED), 0);
                set(slotOffset(i, SLOT_NODE), node);
                return i;
            }
        }
        throw new IllegalStateException("more than " + SLOTS + " node stores are attached to this store on this host");
    }

    /** Whether the slot's owner {@code ownerWord} is a live process (started when the slot says, if it says). */
    private boolean alive(int index, long ownerWord) {
        long pid = ownerWord >>> 32;
        if (pid == ProcessHandle.current().pid()) {
            return true; // a store of this process gives its slot back when it closes or crashes
        }
        java.util.Optional<ProcessHandle> process = ProcessHandle.of(pid);
        if (process.isEmpty() || !process.get().isAlive()) {
            return false;
        }
        long recorded = get(slotOffset(index, SLOT_STARTED));
        return recorded == 0 || get(slotOffset(index, SLOT_OWNER)) != ownerWord || recorded == processStart(process.get());
    }

    private static long processStart(ProcessHandle process) {
        return process.info().startInstant().map(java.time.Instant::toEpochMilli).orElse(0L);
    }

    // ---------------------------------------------------------------- collector

    /**
     * Runs {@code checkpoint} (in the caller's thread) while every other participant of the host is frozen at
     * a commit point, and returns its result. If a participant gave up or a new one registered before the
     * checkpoint was checked, {@code undo} gets the result and the call fails: the checkpoint cannot be trusted.
     *
     * @throws IllegalStateException if another collection runs on the host, or a participant did not answer
     *                               within the barrier wait (its pid is named), or gave up
     */
    public <T> T withOthersFrozen(Supplier<T> checkpoint, Consumer<T> undo) {
        long sequence = begin();
        try {
            Set<Long> frozen = awaitOthers(sequence);
            T result = checkpoint.get();
            List<String> broken = new ArrayList<>();
            for (int i = 0; i < SLOTS; i++) {
                long other = get(slotOffset(i, SLOT_OWNER));
                if (i == slot || other == 0 || !alive(i, other)) {
                    continue;
                }
                if (!frozen.contains(other)) {
                    broken.add(describe(i, other) + " started during the checkpoint");
                } else if (get(slotOffset(i, SLOT_ABANDONED)) == sequence) {
                    broken.add(describe(i, other) + " stopped waiting before the checkpoint ended");
                }
            }
            if (!broken.isEmpty()) {
                undo.accept(result);
                throw new IllegalStateException("the checkpoint of the collection was not held by every node: "
                        + String.join("; ", broken) + "; nothing was changed, run it again");
            }
            return result;
        } finally {
            set(OFFSET_RELEASED, sequence);
        }
    }

    /** Takes the request word for a new collection; returns its sequence number. */
    private long begin() {
        while (true) {
            long request = get(OFFSET_REQUEST);
            long sequence = request >>> 8;
            long released = get(OFFSET_RELEASED);
            if (sequence > released) {
                int collector = (int) (request & 0xFF);
                long collectorOwner = get(slotOffset(collector, SLOT_OWNER));
                if (collector != slot && collectorOwner != 0 && alive(collector, collectorOwner)) {
                    throw new IllegalStateException("a garbage collection, check or space report by " + describe(collector, collectorOwner)
                            + " is running on this store; try again when it ends");
                }
                // Its collector died (or gave its slot up) mid-way: release it for the participants.
                WORD.compareAndSet(map, OFFSET_RELEASED, released, sequence);
                continue;
            }
            if (WORD.compareAndSet(map, OFFSET_REQUEST, request, (sequence + 1) << 8 | slot)) {
                return sequence + 1;
            }
        }
    }

    /** Waits until every other live participant is frozen at {@code sequence}; returns their owners. */
    private Set<Long> awaitOthers(long sequence) {
        long deadline = System.nanoTime() + barrierWait.toNanos();
        while (true) {
            Set<Long> frozen = new HashSet<>();
            List<String> waiting = new ArrayList<>();
            for (int i = 0; i < SLOTS; i++) {
                long other = get(slotOffset(i, SLOT_OWNER));
                if (i == slot || other == 0 || !alive(i, other)) {
                    continue;
                }
                if (get(slotOffset(i, SLOT_ABANDONED)) == sequence) {
                    throw new IllegalStateException(describe(i, other) + " could not stop for the collection's checkpoint"
                            + " (see its log); nothing was changed");
                }
                if (get(slotOffset(i, SLOT_FROZEN)) == sequence) {
                    frozen.add(other);
                } else {
                    waiting.add(describe(i, other) + (SharedCounters.isStopped(other >>> 32) ? " (stopped)" : ""));
                }
            }
            if (waiting.isEmpty()) {
                return frozen;
            }
            if (System.nanoTime() - deadline > 0) {
                throw new IllegalStateException("the node processes serving this store did not all stop for the"
                        + " collection's checkpoint within " + barrierWait.toMillis() + " ms; waiting for "
                        + String.join(", ", waiting) + "; nothing was changed");
            }
            LockSupport.parkNanos(FROZEN_POLL_NANOS);
        }
    }

    private String describe(int index, long ownerWord) {
        return "node " + get(slotOffset(index, SLOT_NODE)) + " (pid " + (ownerWord >>> 32) + ")";
    }

    // ---------------------------------------------------------------- participant

    private void participate() {
        long answered = get(OFFSET_REQUEST) >>> 8;
        while (!stopped) {
            long request = get(OFFSET_REQUEST);
            long sequence = request >>> 8;
            if (sequence > answered && sequence > get(OFFSET_RELEASED)) {
                answered = sequence;
                if ((int) (request & 0xFF) != slot) {
                    freeze(sequence, (int) (request & 0xFF));
                }
            }
            LockSupport.parkNanos(IDLE_POLL_NANOS);
        }
    }

    /** Holds the store at a commit point until the collector releases {@code sequence} (design note 4). */
    private void freeze(long sequence, int collector) {
        long collectorOwner = get(slotOffset(collector, SLOT_OWNER));
        try {
            store.inspectCommitted(internals -> {
                if (get(OFFSET_RELEASED) >= sequence) {
                    return null; // over already
                }
                if (store.readOnly()) {
                    // It could not commit: what it serves from memory is not in the durable state the collector
                    // scans, and blocks only it references would look unreachable.
                    set(slotOffset(slot, SLOT_ABANDONED), sequence);
                    LOG.warn("cannot stop at a commit point for collection {}: this store has stopped writing", sequence);
                    return null;
                }
                set(slotOffset(slot, SLOT_FROZEN), sequence);
                long deadline = System.nanoTime() + maxFreeze.toNanos();
                for (int polls = 1; get(OFFSET_RELEASED) < sequence && !stopped; polls++) {
                    // Stopped: the store is being abandoned, and changes nothing more; its slot goes right after.
                    boolean look = polls % POLLS_PER_LIVENESS_CHECK == 0;
                    if (look && (System.nanoTime() - deadline > 0 || !alive(collector, collectorOwner)
                            || get(slotOffset(collector, SLOT_OWNER)) != collectorOwner)) {
                        set(slotOffset(slot, SLOT_ABANDONED), sequence);
                        LOG.warn("stopped waiting for collection {} by {} after {} ms; it will not use its checkpoint",
                                sequence, describe(collector, collectorOwner), maxFreeze.toMillis());
                        break;
                    }
                    LockSupport.parkNanos(FROZEN_POLL_NANOS);
                }
                return null;
            });
        } catch (StorageException closed) {
            if (closed.code() != StorageException.Code.CLOSED) {
                abandon(sequence, closed);
            } // else it is closing: everything it did is durable, and it gives its slot back in a moment
        } catch (RuntimeException problem) {
            abandon(sequence, problem);
        }
    }

    private void abandon(long sequence, RuntimeException problem) {
        set(slotOffset(slot, SLOT_ABANDONED), sequence);
        LOG.warn("could not stop for collection {}: {}", sequence, problem.toString());
    }

    // ---------------------------------------------------------------- helpers

    private static long slotOffset(int index, long field) {
        return HEADER_BYTES + index * SLOT_BYTES + field;
    }

    private long get(long offset) {
        return (long) WORD.getVolatile(map, offset);
    }

    private void set(long offset, long value) {
        WORD.setVolatile(map, offset, value);
    }

    /**
     * Stops answering and gives the slot back (at close, or when the store is abandoned as in a crash): from
     * then on no collection waits for this store. Idempotent.
     */
    @Override
    public void close() {
        if (stopped) {
            return;
        }
        stopped = true;
        if (participant.isAlive() && Thread.currentThread() != participant) {
            LockSupport.unpark(participant);
            try {
                participant.join();
            } catch (InterruptedException interrupted) {
                Thread.currentThread().interrupt();
            }
        }
        WORD.compareAndSet(map, slotOffset(slot, SLOT_OWNER), owner, 0L);
        arena.close();
    }
}
