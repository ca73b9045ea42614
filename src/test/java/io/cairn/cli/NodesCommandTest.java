package io.cairn.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cairn.cluster.Election;
import io.cairn.cluster.Lease;
import io.cairn.cluster.ZooKeeperFixture;
import io.cairn.cluster.ZooKeeperLockManager;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** {@code cairn nodes} against a real ZooKeeper with two live nodes. */
class NodesCommandTest {

    @Test
    void listsLiveNodesTheirLocksAndRolesAsTextAndJson() throws Exception {
        try (ZooKeeperFixture zookeeper = new ZooKeeperFixture();
             ZooKeeperLockManager a = ZooKeeperLockManager.connect(new ZooKeeperLockManager.Options(zookeeper.connectString(),
                     zookeeper.storeId, "a", Map.of("nbd", "127.0.0.1:10809", "admin", "/run/a.sock", "extents", "32"),
                     ZooKeeperFixture.TIMEOUTS));
             ZooKeeperLockManager b = zookeeper.node("b")) {
            Lease vdi = a.acquire("vdi/7", Duration.ZERO, Map.of("disk", "vm"));
            // As a node's ExtentLeaser does: leased as spares, noted as allocated in once the store took one. A lock
            // without a use note (extent/3) counts as allocated in.
            Lease extent = a.acquire("extent/12", Duration.ZERO, Map.of("type", "data", "use", "spare"));
            assertTrue(a.annotate(extent, Map.of("type", "data", "use", "allocating")));
            Lease spare = a.acquire("extent/13", Duration.ZERO, Map.of("type", "data", "use", "spare"));
            Lease metadata = a.acquire("extent/3", Duration.ZERO, Map.of("type", "metadata"));
            Lease other = b.acquire("gc", Duration.ZERO);
            Election gc = b.elect("gc");
            assertTrue(gc.awaitLeadership(Duration.ofSeconds(10)));
            long pid = ProcessHandle.current().pid();

            Cli.Result text = Cli.run("nodes", "--cluster", zookeeper.connectString());
            assertEquals(0, text.exitCode(), text::toString);
            List<String> lines = text.out().lines().toList();
            assertEquals("store " + zookeeper.storeId + ": 2 live nodes, 5 locks held", lines.get(0));
            assertTrue(lines.get(1).matches("NODE +PID +NBD +ADMIN +LEADS +DISKS \\(FENCING TOKEN\\) +EXTENTS +SPARES "
                    + "+OTHER LOCKS \\(FENCING TOKEN\\)"), lines.get(1));
            assertTrue(lines.get(2).matches("a +" + pid + " +127\\.0\\.0\\.1:10809 +/run/a\\.sock +- +vm \\(" + vdi.fencingToken()
                    + "\\) +1 metadata, 1 data +1 data +-"), lines.get(2));
            assertTrue(lines.get(3).matches("b +" + pid + " +127\\.0\\.0\\.1:10809 +/run/b\\.sock +gc +- +- +- +gc \\("
                    + other.fencingToken() + "\\)"), lines.get(3));
            assertTrue(lines.get(4).matches("EXTENT +TYPE +USE +NODE +FENCING TOKEN"), lines.get(4));
            assertTrue(lines.get(5).matches(" +3 +metadata +allocating +a +" + metadata.fencingToken()), lines.get(5));
            assertTrue(lines.get(6).matches(" +12 +data +allocating +a +" + extent.fencingToken()), lines.get(6));
            assertTrue(lines.get(7).matches(" +13 +data +spare +a +" + spare.fencingToken()), lines.get(7));
            assertEquals("extents: 32 in the store: 1 system, 2 allocated in, 1 spare, 28 free to lease", lines.get(8));
            assertEquals(9, lines.size(), text.out());

            Cli.Result json = Cli.run("nodes", "--cluster", zookeeper.connectString(), "--store", zookeeper.storeId, "--json");
            assertEquals(0, json.exitCode(), json::toString);
            Map<String, Object> parsed = JsonParser.parseObject(json.out());
            @SuppressWarnings("unchecked")
            Map<String, Object> store = (Map<String, Object>) ((List<Object>) parsed.get("stores")).getFirst();
            assertEquals(zookeeper.storeId, store.get("id"));
            assertEquals(Map.of("gc", "b"), store.get("leaders"));
            assertEquals(List.of(
                    Map.of("lock", "extent/12", "node", "a", "fencingToken", extent.fencingToken(), "notes",
                            Map.of("type", "data", "use", "allocating")),
                    Map.of("lock", "extent/13", "node", "a", "fencingToken", spare.fencingToken(), "notes",
                            Map.of("type", "data", "use", "spare")),
                    Map.of("lock", "extent/3", "node", "a", "fencingToken", metadata.fencingToken(), "notes", Map.of("type", "metadata")),
                    Map.of("lock", "gc", "node", "b", "fencingToken", other.fencingToken()),
                    Map.of("lock", "vdi/7", "node", "a", "fencingToken", vdi.fencingToken(), "notes", Map.of("disk", "vm"))),
                    store.get("locks"));
            assertEquals(Map.of("count", 32L, "leased", 3L, "allocating", 2L, "spares", 1L, "freeToLease", 28L), store.get("extents"));
            @SuppressWarnings("unchecked")
            Map<String, Object> memberA = (Map<String, Object>) ((List<Object>) store.get("members")).getFirst();
            assertEquals("a", memberA.get("name"));
            assertEquals(Map.of("nbd", "127.0.0.1:10809", "admin", "/run/a.sock", "extents", "32", "pid", Long.toString(pid)),
                    memberA.get("attributes"));
            assertEquals(List.of(Map.of("id", 7L, "name", "vm", "fencingToken", vdi.fencingToken())), memberA.get("disks"));
            assertEquals(List.of(Map.of("extent", 12L, "type", "data", "fencingToken", extent.fencingToken()),
                    Map.of("extent", 3L, "type", "metadata", "fencingToken", metadata.fencingToken())), memberA.get("extents"));
            assertEquals(List.of(Map.of("extent", 13L, "type", "data", "fencingToken", spare.fencingToken())), memberA.get("spares"));

            Cli.Result unknown = Cli.run("nodes", "--cluster", zookeeper.connectString(), "--store", "nobody");
            assertEquals("store nobody: 0 live nodes, 0 locks held\n", unknown.out());
        }
    }

    @Test
    void migrateThroughTheClusterSaysWhichNodeItCannotFindOrReach() throws Exception {
        try (ZooKeeperFixture zookeeper = new ZooKeeperFixture(); ZooKeeperLockManager a = zookeeper.node("a")) {
            Cli.Result nobody = Cli.run("migrate", "--cluster", zookeeper.connectString(), "vm", "--to", "nobody");
            assertEquals(ExitCodes.NOT_FOUND, nobody.exitCode(), nobody::toString);
            assertEquals("cairn: no live node named 'nobody' in any store coordinated at " + zookeeper.connectString()
                    + " (live: a)\n", nobody.err());
            Cli.Result unpublished = Cli.run("migrate", "--cluster", zookeeper.connectString(), "vm", "--to", "a");
            assertEquals(ExitCodes.NOT_FOUND, unpublished.exitCode(), unpublished::toString);
            assertTrue(unpublished.err().startsWith("cairn: node 'a' does not publish its admin socket and store file"),
                    unpublished.err());
            Cli.Result twoArguments = Cli.run("migrate", "--cluster", zookeeper.connectString(), "store", "vm", "--to", "a");
            assertEquals(ExitCodes.USAGE, twoArguments.exitCode(), twoArguments::toString);
            assertTrue(twoArguments.err().contains("with --cluster, migrate takes only the disk"), twoArguments.err());
        }
        String nowhere = "127.0.0.1:" + org.apache.curator.test.InstanceSpec.getRandomPort();
        Cli.Result away = Cli.run("migrate", "--cluster", nowhere, "vm", "--to", "a");
        assertEquals(ExitCodes.COORDINATOR_UNAVAILABLE, away.exitCode(), away::toString);
        assertTrue(away.err().matches("cairn: ZooKeeper at " + nowhere + " unreachable for \\d\\.\\d s\\n"), away.err());
    }

    @Test
    void anUnreachableZooKeeperIsItsOwnExitCodeAndOneLine() {
        String nowhere = "127.0.0.1:" + org.apache.curator.test.InstanceSpec.getRandomPort();
        Cli.Result result = Cli.run("nodes", "--cluster", nowhere, "--wait", "0.5");
        assertEquals(ExitCodes.COORDINATOR_UNAVAILABLE, result.exitCode(), result::toString);
        assertTrue(result.err().matches("cairn: ZooKeeper at " + nowhere + " unreachable for \\d\\.\\d s\\n"), result.err());

        Cli.Result usage = Cli.run("nodes", "--cluster", nowhere, "--store", "a/b");
        assertEquals(ExitCodes.USAGE, usage.exitCode(), usage::toString);
        assertTrue(usage.err().startsWith("cairn: invalid store id 'a/b'"), usage.err());
        assertEquals(ExitCodes.USAGE, Cli.run("nodes").exitCode(), "--cluster is required");
        Cli.Result badAddress = Cli.run("nodes", "--cluster", "bad host:x");
        assertEquals(ExitCodes.USAGE, badAddress.exitCode(), badAddress::toString);
        assertEquals("cairn: invalid ZooKeeper address 'bad host:x': 'bad host:x' is not HOST:PORT (expected HOST:PORT[,HOST:PORT...])\n",
                badAddress.err());
    }
}
