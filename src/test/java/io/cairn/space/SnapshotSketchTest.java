package io.cairn.space;

import io.cairn.format.Layout;
import io.cairn.format.StoreRecount;
import io.cairn.format.Superblock;
import io.cairn.gc.CheckReport;
import io.cairn.gc.Checker;
import io.cairn.io.ReopenableMemoryDevice;
import io.cairn.volume.SketchCatalog;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Snapshot sketches on small stores, where every sketch is exact (fewer than 2^14 blocks): estimates must
 * then equal the exact counts, and stored blobs must be counted, survive a reopen and go with their snapshot.
 */
class SnapshotSketchTest {

    private static final int BLOCK = Layout.BLOCK_BYTES;
    private static final long STORE_BYTES = 256L << 20;
    private static final int EXTENT_BLOCKS = 1024;

    private ReopenableMemoryDevice device = new ReopenableMemoryDevice();
    private Store store = Store.format(device, STORE_BYTES, EXTENT_BLOCKS, StoreOptions.defaults());
    private final Random random = new Random(20261121);

    @Test
    void estimatesEqualExactCountsOnAForestWithClonesAndDeletions() {
        store.create("base", 4L << 20);
        List<String> snapshots = new ArrayList<>();
        writeAndSnapshot("base", 1024, 1, snapshots);
        writeAndSnapshot("base", 40, 29, snapshots);
        store.clone("clone", snapshots.get(10));
        writeAndSnapshot("clone", 40, 20, snapshots);
        store.clone("grandchild", "clone@" + store.snapshots("clone").get(5).id());
        writeAndSnapshot("grandchild", 30, 5, snapshots);
        store.create("empty", 1L << 20);
        store.snapshot("empty", null);
        store.deleteSnapshot(snapshots.get(10)); // the clone's origin: its first snapshot gets a new base
        store.deleteSnapshot(snapshots.get(3));
        store.deleteSnapshot("clone@" + store.snapshots("clone").get(0).id());
        writeAndSnapshot("base", 10, 3, snapshots);
        writeLive("base", 25); // the live disks differ from their newest snapshots
        writeLive("clone", 7);
        store.create("fresh", 1L << 20); // a disk with no snapshot at all
        writeLive("fresh", 9);

        SketchedSpace sketched = new SketchedSpace();
        assertMatchesExact(sketched, "base");
        assertMatchesExact(sketched, "clone");
        assertMatchesExact(sketched, "grandchild");
        assertMatchesExact(sketched, "empty");
        assertMatchesExact(sketched, null);
        List<Long> base = store.snapshots("base").stream().map(s -> s.id()).toList();
        assertMatchesExact(sketched, "base@" + base.get(4) + ".." + base.get(20));
        assertMatchesExact(sketched, "base@" + base.get(0) + "..base@" + base.get(8));
        assertMatchesExact(sketched, "base@" + base.get(9));
    }

    @Test
    void storedSketchesSurviveReopenAndAreCounted() {
        store.create("disk", 2L << 20);
        writeAndSnapshot("disk", 512, 12, new ArrayList<>());
        SketchCatalog first = store.sketchCatalog(true);
        assertEquals(12, first.computedNow());
        assertEquals(12, first.storedNow());
        store.commit();
        assertClean("after storing the sketches");
        SketchedSpace.Report before = new SketchedSpace().report(first, SpaceSelection.resolve(store, "disk").snapshotIds());

        reopen();
        Map<Long, Long> blobs = store.inspect(internals -> internals.sketchBlobs());
        assertEquals(12, blobs.size());
        SketchCatalog again = store.sketchCatalog(false);
        assertEquals(0, again.computedNow(), "every sketch comes from its blob");
        SketchedSpace.Report after = new SketchedSpace().report(again, SpaceSelection.resolve(store, "disk").snapshotIds());
        assertEquals(before, after);
        assertMatchesExact(new SketchedSpace(), "disk");
        assertEquals(StoreRecount.references(store), StoreRecount.counters(store));
    }

    @Test
    void deletingASnapshotFreesItsBlobAndTheNextOneIsRebased() {
        store.create("disk", 2L << 20);
        List<String> snapshots = new ArrayList<>();
        writeAndSnapshot("disk", 512, 6, snapshots);
        store.sketchCatalog(true);
        store.commit();
        Map<Long, Long> blobs = store.inspect(internals -> internals.sketchBlobs());
        long victim = store.snapshotInfo(snapshots.get(2)).id();
        long victimBlob = blobs.get(victim);

        store.deleteSnapshot(snapshots.get(2));
        store.close();
        device = device.reopen();
        store = Store.open(device, null, StoreOptions.defaults());
        assertEquals(0, (int) store.inspect(internals -> internals.space().count(victimBlob)), "the blob's page is free");
        assertFalse(store.inspect(internals -> internals.sketchBlobs()).containsKey(victim));
        assertClean("after deleting a snapshot with a blob");

        SketchCatalog catalog = store.sketchCatalog(true);
        assertEquals(1, catalog.computedNow(), "only the next snapshot's delta changed its base");
        long next = store.snapshotInfo(snapshots.get(3)).id();
        assertEquals(store.snapshotInfo(snapshots.get(1)).id(), catalog.deltas().get(next).baseSnapshotId());
        store.commit();
        assertClean("after replacing the stale blob");
        assertMatchesExact(new SketchedSpace(), "disk");
        store.deleteVdi("disk", true);
        store.close();
        device = device.reopen();
        store = Store.open(device, null, StoreOptions.defaults());
        assertClean("after deleting the disk with its snapshots");
        assertTrue(store.inspect(internals -> internals.sketchBlobs()).isEmpty());
    }

    @Test
    void blobsWrittenBeforeAnUnawareWriterCommittedAreDropped() {
        store.create("disk", 2L << 20);
        writeAndSnapshot("disk", 512, 4, new ArrayList<>());
        long allocatedBefore = StoreRecount.counters(store).size();
        store.sketchCatalog(true);
        long blobPages = StoreRecount.counters(store).size() - allocatedBefore;
        assertTrue(blobPages >= 4, "at least a page per snapshot");
        store.close();
        // A writer that does not know sketches rewrites the superblock without the stamp (reserved = 0).
        Superblock current = Superblock.decode(read(1), 1);
        assertTrue(current.sketchesTrusted());
        Superblock unaware = new Superblock(current.generation() + 1, current.incompatibleFeatures(),
                current.compatibleFeatures(), current.extentBlocks(), current.storeBlocks(), current.storeId(),
                current.nextVdiId(), current.nextSnapshotId(), current.extentTable(), current.vdiTable(),
                current.snapshotTable(), current.commitMillis());
        device.medium().write(Superblock.slotFor(unaware.generation()) * BLOCK, unaware.encode());
        device = device.reopen();
        store = Store.open(device, null, StoreOptions.defaults());
        assertTrue(store.inspect(internals -> internals.sketchBlobs()).isEmpty(), "pointers are not trusted");
        store.commit();
        CheckReport report = Checker.check(store);
        assertFalse(report.damaged(), report.summary());
        assertEquals(blobPages, report.leaks().size(), "the dropped blobs' pages leak: " + report.summary());
        assertEquals(4, store.sketchCatalog(true).computedNow());
        assertMatchesExact(new SketchedSpace(), "disk");
    }

    @Test
    void backgroundWorkerStoresTheSketchesOfNewSnapshots() throws InterruptedException {
        store.close();
        device = device.reopen();
        store = Store.open(device, null, StoreOptions.defaults().withSketchWorker(true));
        store.create("disk", 2L << 20);
        writeAndSnapshot("disk", 512, 8, new ArrayList<>());
        long deadline = System.nanoTime() + 20_000_000_000L;
        while (store.inspect(internals -> internals.sketchBlobs()).size() < 8 && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertEquals(8, store.inspect(internals -> internals.sketchBlobs()).size());
        assertClean("with sketches stored in the background");
        assertEquals(0, store.sketchCatalog(false).computedNow());
        reopen();
        assertClean("after a reopen");
    }

    // ------------------------------------------------------------------------------------------ helpers

    private void assertMatchesExact(SketchedSpace sketched, String target) {
        SpaceSelection selection = SpaceSelection.resolve(store, target);
        SketchedSpace.Report report = sketched.report(store.sketchCatalog(false), selection.snapshotIds());
        ExactSpace.Counts exact = ExactSpace.count(store, selection.snapshotIds());
        assertTrue(report.held().exact() && report.freed().exact(), target + ": small sets are sketched exactly");
        assertEquals(exact.heldBlocks(), Math.round(report.held().blocks()), target + " held");
        assertEquals(exact.freedBlocks(), Math.round(report.freed().blocks()), target + " freed if deleted");
        assertEquals(selection.snapshotIds().size(), report.snapshots());
    }

    /** Writes {@code blocks} random blocks (the first call fills the disk in order), then snapshots; repeated. */
    private void writeAndSnapshot(String disk, int blocks, int times, List<String> references) {
        try (Volume volume = store.openVolume(disk)) {
            long diskBlocks = volume.sizeBytes() / BLOCK;
            for (int round = 0; round < times; round++) {
                for (int i = 0; i < blocks; i++) {
                    long block = round == 0 && blocks >= diskBlocks ? i % diskBlocks : random.nextLong(diskBlocks);
                    volume.write(block * BLOCK, ByteBuffer.allocate(BLOCK).putLong(0, random.nextLong()), false);
                }
                references.add(disk + "@" + store.snapshot(disk, null).id());
            }
        }
    }

    private void writeLive(String disk, int blocks) {
        try (Volume volume = store.openVolume(disk)) {
            for (int i = 0; i < blocks; i++) {
                volume.write(random.nextLong(volume.sizeBytes() / BLOCK) * BLOCK,
                        ByteBuffer.allocate(BLOCK).putLong(0, random.nextLong()), false);
            }
        }
    }

    private void reopen() {
        store.close();
        device = device.reopen();
        store = Store.open(device, null, StoreOptions.defaults());
    }

    private ByteBuffer read(long block) {
        ByteBuffer image = ByteBuffer.allocate(BLOCK);
        device.medium().read(block * BLOCK, image);
        return image.flip();
    }

    private void assertClean(String context) {
        CheckReport report = Checker.check(store);
        assertTrue(report.clean(), () -> context + ": " + report.summary() + " " + report.damage() + report.leaks());
        assertEquals(StoreRecount.references(store), StoreRecount.counters(store), context);
    }
}
