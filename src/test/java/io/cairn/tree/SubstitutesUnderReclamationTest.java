package io.cairn.tree;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.cairn.alloc.SpaceMap;
import io.cairn.format.Layout;
import io.cairn.format.Pointer;
import io.cairn.format.StoreGeometry;
import io.cairn.io.MemoryBlockDevice;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * The reclaimer releases a freed leaf's targets without the metadata lock (TreeSpace design note 6) while a share
 * under the lock may hand out a substitute (substitutes, rule 7). Here the only reference of a saturated block's
 * substitute is in a leaf being reclaimed, and a second thread shares the saturated block, under the lock, at a
 * random instant during the reclaimer's pass. Whichever comes first, the share must get a block that stays
 * allocated: the substitute with its reference added before the pass took the last one, or a fresh copy. A pass
 * that released the substitute itself and dropped its entry afterwards lets the share in between: the share adds
 * a reference to a block already held, and freeing the held blocks finds a counter of 2.
 */
class SubstitutesUnderReclamationTest {

    private static final int ROUNDS = 4_000;

    @Test
    void aSubstituteIsNeverHandedOutAfterThePassReleasedItsLastReference() throws Exception {
        StoreGeometry geometry = new StoreGeometry(64L * Layout.MIN_EXTENT_BLOCKS, Layout.MIN_EXTENT_BLOCKS);
        SpaceMap space = new SpaceMap(geometry, 2);
        space.formatSystemExtent();
        MemoryBlockDevice device = new MemoryBlockDevice(geometry.storeBlocks() * Layout.BLOCK_BYTES);
        TreeSpace trees = new TreeSpace(device, space, new NodeCache(device, 1 << 20), 1);
        Object metaLock = new Object(); // what the store's metadata lock is to TreeSpace
        long saturated = space.allocate(SpaceMap.Purpose.DATA);
        space.increment(saturated); // at the limit of 2: every share goes through a substitute

        SynchronousQueue<Long> go = new SynchronousQueue<>();
        SynchronousQueue<Long> shared = new SynchronousQueue<>();
        AtomicReference<Throwable> sharerFailure = new AtomicReference<>();
        Thread sharer = new Thread(() -> {
            try {
                while (true) {
                    long spinNanos = go.take();
                    if (spinNanos < 0) {
                        return;
                    }
                    long until = System.nanoTime() + spinNanos;
                    while (System.nanoTime() < until) {
                        Thread.onSpinWait();
                    }
                    long block;
                    synchronized (metaLock) {
                        block = trees.share(saturated, 0, LeafKind.DATA);
                    }
                    shared.put(block);
                }
            } catch (Throwable failure) {
                sharerFailure.set(failure);
                shared.offer(-1L);
            }
        }, "sharer");
        sharer.start();
        int handedOutBeforeThePass = 0;
        int copiedAfterThePass = 0;
        try {
            for (int round = 0; round < ROUNDS; round++) {
                TreeSpace.FreedLeaf leaf;
                long substitute;
                synchronized (metaLock) {
                    trees.forgetSubstitutes();
                    substitute = trees.share(saturated, 0, LeafKind.DATA); // a fresh copy, now the substitute
                    assertEquals(substitute, trees.substituteOf(saturated));
                    // A leaf holding the substitute's only reference first, then 511 blocks of its own, so the pass
                    // takes the substitute's reference first and has 511 more decrements to make after it.
                    RootRef ref = new RootRef(0, 1);
                    trees.exchange(ref, 0, Pointer.writable(substitute), LeafKind.DATA);
                    for (int i = 1; i < Layout.POINTERS_PER_NODE; i++) {
                        trees.exchange(ref, i, Pointer.writable(space.allocate(SpaceMap.Purpose.DATA)), LeafKind.DATA);
                    }
                    trees.release(ref.root(), 1, LeafKind.DATA); // the tree goes
                    TreeSpace.Capture capture = trees.closeTransaction();
                    TreeSpace.markWritten(capture);
                    Deque<Release> pending = new ArrayDeque<>(capture.releases());
                    List<TreeSpace.FreedLeaf> freed = new ArrayList<>();
                    trees.applyReleases(pending, Integer.MAX_VALUE, freed);
                    assertEquals(1, freed.size(), "the leaf is freed");
                    leaf = freed.get(0);
                }
                go.put(ThreadLocalRandom.current().nextLong(30_000));
                trees.releaseTargets(leaf); // the reclaimer's pass, without the lock
                synchronized (metaLock) {
                    trees.releaseDeferredTargets();
                }
                long block = shared.take();
                if (sharerFailure.get() != null) {
                    throw new AssertionError("round " + round + ": the share failed", sharerFailure.get());
                }
                synchronized (metaLock) {
                    try {
                        trees.freeHeld();
                    } catch (IllegalStateException resurrected) {
                        fail("round " + round + ": the share got block " + block + " (the substitute was " + substitute
                                + ") after the pass had released its last reference: " + resurrected.getMessage());
                    }
                    assertTrue(space.count(block) >= 1, "round " + round + ": the shared block is allocated");
                    if (block == substitute) {
                        handedOutBeforeThePass++;
                    } else {
                        copiedAfterThePass++;
                    }
                    space.decrement(block); // the share's reference goes; the block is free again
                    assertEquals(0, space.count(block), "round " + round + ": nothing else references the share");
                }
            }
        } finally {
            go.offer(-1L, 1, java.util.concurrent.TimeUnit.SECONDS);
            sharer.join(10_000);
        }
        System.out.println("SubstitutesUnderReclamationTest: the substitute handed out " + handedOutBeforeThePass
                + " times before the pass took its reference, a fresh copy " + copiedAfterThePass + " times");
        assertTrue(handedOutBeforeThePass > 0 && copiedAfterThePass > 0,
                "the share landed on both sides of the pass: " + handedOutBeforeThePass + " and " + copiedAfterThePass);
    }
}
