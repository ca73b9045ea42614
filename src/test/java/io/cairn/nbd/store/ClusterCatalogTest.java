package io.cairn.nbd.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.gc.CheckReport;
import io.cairn.gc.Checker;
import io.cairn.io.FileBlockDevice;
import io.cairn.nbd.ExportDescription;
import io.cairn.nbd.NbdExport;
import io.cairn.nbd.NoSuchExportException;
import io.cairn.nbd.ServedElsewhereException;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The exports of one node of a cluster: a disk another node holds is answered with that node's address (the
 * connection is relayed there), a disk between holders is waited for, and one nobody takes within the wait is
 * reported as such. Two node stores in one process over one store file.
 */
class ClusterCatalogTest {

    private static final long DISK_BYTES = 8L << 20;
    private static final InetSocketAddress NODE_1 = new InetSocketAddress("127.0.0.1", 10811);

    @TempDir
    Path dir;

    private Store node(int id) {
        return Store.openShared(FileBlockDevice.open(dir.resolve("store.cairn"), false), null, StoreOptions.defaults(), id,
                dir.resolve("store.live"), Duration.ofSeconds(10));
    }

    @Test
    void aDiskHeldElsewhereIsRelayedAndOneBetweenHoldersIsWaitedFor() throws Exception {
        Store.formatFile(dir.resolve("store.cairn"), 256L << 20, 2048, StoreOptions.defaults()).close();
        try (Store one = node(1); Store two = node(2)) {
            one.create("d", DISK_BYTES);
            one.hold("d", 10, () -> true);
            String snapshot = "d@" + one.snapshot("d", "gold").id();
            // Node 2 knows where node 1 serves; node 1 knows nobody (node 2's address is not needed here).
            StoreExportCatalog atTwo = new StoreExportCatalog(two, null, name -> false,
                    nodeId -> Optional.ofNullable(Map.of(1, NODE_1).get(nodeId)), Duration.ofSeconds(5));

            ServedElsewhereException disk = assertThrows(ServedElsewhereException.class, () -> atTwo.open("d"));
            assertEquals(NODE_1, disk.server());
            assertEquals(NODE_1, assertThrows(ServedElsewhereException.class, () -> atTwo.open(snapshot)).server(),
                    "a snapshot of a disk held elsewhere is read there too");
            NoSuchExportException unknown = assertThrows(NoSuchExportException.class, () -> atTwo.open("nosuch"));
            assertFalse(unknown instanceof ServedElsewhereException);
            ExportDescription listed = atTwo.list().stream().filter(export -> export.name().equals("d")).findFirst().orElseThrow();
            assertTrue(listed.description().contains("served by node id 1"), listed.description());

            // A migration to node 2: node 1 gives the disk back; a client asking node 2 meanwhile waits, and is
            // served by node 2 itself once it holds the disk.
            one.releaseHold("d");
            CompletableFuture<NbdExport> waiting = CompletableFuture.supplyAsync(() -> {
                try {
                    return atTwo.open("d");
                } catch (NoSuchExportException e) {
                    throw new IllegalStateException(e);
                }
            });
            Thread.sleep(200);
            assertFalse(waiting.isDone(), "a disk between holders is waited for");
            two.hold("d", 11, () -> true);
            try (NbdExport served = waiting.get(10, TimeUnit.SECONDS)) {
                assertFalse(served.readOnly());
                served.write(0, ByteBuffer.wrap(new byte[4096]), true);
            }

            // Node 2 gives the disk back to node 1: from the start of the hand-over a client asking node 2 is not
            // served there (it would reconnect to the old holder at once), but waits and is relayed to node 1.
            StoreExportCatalog atTwoKnowingOne = new StoreExportCatalog(two, null, name -> false,
                    nodeId -> Optional.ofNullable(Map.of(1, NODE_1).get(nodeId)), Duration.ofSeconds(5));
            atTwoKnowingOne.beginHandover("d");
            CompletableFuture<NbdExport> reconnecting = CompletableFuture.supplyAsync(() -> {
                try {
                    return atTwoKnowingOne.open("d");
                } catch (NoSuchExportException e) {
                    throw new java.util.concurrent.CompletionException(e);
                }
            });
            Thread.sleep(200);
            assertFalse(reconnecting.isDone(), "a disk being given back is not served by the node giving it back");
            two.releaseHold("d");
            atTwoKnowingOne.endHandover("d");
            one.hold("d", 12, () -> true);
            java.util.concurrent.ExecutionException relayed = assertThrows(java.util.concurrent.ExecutionException.class,
                    () -> reconnecting.get(10, TimeUnit.SECONDS));
            assertEquals(NODE_1, ((ServedElsewhereException) relayed.getCause()).server());
            one.releaseHold("d");
            two.hold("d", 13, () -> true);

            // Given back and taken by nobody: reported once the wait is over, with the reason.
            two.releaseHold("d");
            StoreExportCatalog impatient = new StoreExportCatalog(one, null, name -> false, nodeId -> Optional.empty(),
                    Duration.ofMillis(300));
            long start = System.nanoTime();
            NoSuchExportException nobody = assertThrows(NoSuchExportException.class, () -> impatient.open("d"));
            assertTrue(System.nanoTime() - start >= TimeUnit.MILLISECONDS.toNanos(300), "it waited for the hand-over");
            assertTrue(nobody.reason().orElse("").contains("moving between nodes"), nobody.getMessage());
        }
        try (Store alone = Store.openFile(dir.resolve("store.cairn"), StoreOptions.defaults())) {
            CheckReport report = Checker.check(alone);
            assertTrue(report.clean(), report.summary());
        }
    }
}
