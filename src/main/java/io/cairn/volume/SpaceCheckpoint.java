package io.cairn.volume;

import io.cairn.format.BlockHeader;
import io.cairn.format.Layout;
import io.cairn.format.NodeCodec;
import io.cairn.format.StoreGeometry;
import io.cairn.io.BlockDevice;
import io.cairn.tree.TreeSpace;

import java.nio.ByteBuffer;
import java.util.function.Function;

/**
 * The whole store as it was at one instant, for a space report ({@code cairn du}, its estimate) on a store
 * served by several node processes (Store design note 10, docs/CLUSTER.md "Space reports"): the report walks
 * every tree while the nodes go on serving.
 *
 * <p>Design notes.
 * <ol>
 *   <li>Why not the live store: the trees of disks other nodes hold change under this node, and blocks they free
 *       may be reused at once, so a walk of them (or of a snapshot another node deletes meanwhile) reads whatever
 *       lands there; and "exclusive" needs counters equal to the references of the trees walked, which other
 *       nodes' writes and removals keep changing.</li>
 *   <li>The checkpoint is the garbage collector's ({@link CollectionBarrier}): every node store of the host stops
 *       at a commit point (committed, removals applied, nothing in flight), and meanwhile this store commits too,
 *       {@code capture} records what the report needs (records, roots, listings), the counters of every claimed
 *       extent are copied, and every live root is pinned ({@link Store.Internals#pinLiveRoots}). Then the nodes
 *       go on; the report reads the pinned trees straight from the device (not through this node's cache, which
 *       may hold images of blocks other nodes have reused) and compares with the copy. The nodes pause only for
 *       the checkpoint (one commit each and the copy), not for the walk.</li>
 *   <li>The counters are copied <em>before</em> the pins are taken, under the same hold: the copy is exactly the
 *       references of the captured state, so a block counts 1 in it iff one reference names it there, which is
 *       what "exclusive" means (SpaceAccounting note 2). The pins are no part of the store the report describes.</li>
 *   <li>While the pins are held nothing under a pinned root changes or is freed (Store design note 6), so the
 *       walk reads a frozen state. One exception: a root whose counter is saturated (at its encoding's limit: 255 or 65,535 references) is pinned
 *       through a copy; its own block stays allocated as long as one of those references does. A walk that
 *       finds a node that does not verify reports it as damage; the pins are given back whatever happens.</li>
 *   <li>No {@code gc} role or lock is needed: nothing is changed but the pins, which are references like any
 *       other and go with the next commit after {@link #close}. One checkpoint per host at a time (the barrier's
 *       request word), and a store holds one set of pins at a time: a report on the node whose garbage
 *       collection is scanning, or during another node's checkpoint, is refused and may be run again.</li>
 * </ol>
 *
 * <p>Threading: taken and closed by one thread; {@link #pointers} and {@link #count} may be called from it while the
 * store serves others.
 */
public final class SpaceCheckpoint<T> implements AutoCloseable {

    private final Store store;
    private final T captured;
    private final StoreGeometry geometry;
    private final char[][] counters;
    private final BlockDevice device;
    private final ByteBuffer image = BlockHeader.newImage();
    private boolean closed;

    private SpaceCheckpoint(Store store, T captured, char[][] counters) {
        this.store = store;
        this.captured = captured;
        this.geometry = store.geometry();
        this.counters = counters;
        this.device = store.device;
    }

    /**
     * Takes the checkpoint of {@code store} (every node of the host held at a commit point if it is shared),
     * with {@code capture} run inside it.
     *
     * @throws IllegalStateException if another checkpoint or collection runs, or a node did not stop in time
     */
    public static <T> SpaceCheckpoint<T> take(Store store, Function<Store.Internals, T> capture) {
        java.util.function.Supplier<SpaceCheckpoint<T>> take = () -> store.inspectCommitted(internals -> {
            T captured = capture.apply(internals);
            int extents = internals.space().extentCount();
            char[][] counters = new char[extents][];
            for (int extent = 0; extent < extents; extent++) {
                counters[extent] = internals.space().copyCounters(extent);
            }
            internals.pinLiveRoots(); // after the copy (note 3)
            return new SpaceCheckpoint<>(store, captured, counters);
        });
        CollectionBarrier barrier = store.collectionBarrier();
        try {
            return barrier == null ? take.get() : barrier.withOthersFrozen(take, SpaceCheckpoint::close);
        } catch (IllegalStateException refused) {
            throw new IllegalStateException("the space report's checkpoint could not be taken: " + refused.getMessage(), refused);
        }
    }

    /** What {@code capture} returned inside the checkpoint. */
    public T captured() {
        return captured;
    }

    /** The counter of {@code block} at the checkpoint, without the report's pins; 0 in a free extent. */
    public int count(long block) {
        char[] extent = counters[geometry.extentOf(block)];
        return extent == null ? 0 : extent[geometry.offsetInExtent(block)];
    }

    /** The pointers of the radix node at {@code block} of {@code level}, read from the device and verified. */
    public long[] pointers(long block, int level) {
        image.clear();
        device.read(block * Layout.BLOCK_BYTES, image);
        return NodeCodec.decode(image, block, level);
    }

    /** Reads the checkpoint's trees from the device ({@link #pointers}). */
    public TreeSpace.NodeSource nodes() {
        return this::pointers;
    }

    /** Gives the pins back (they go with the next commit). Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        store.inspect(internals -> {
            internals.releasePins();
            return null;
        });
        store.commit();
    }
}
