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
             ZooKeeperLockManager a = zookeeper.node("a");
             ZooKeeperLockManager b = zookeeper.node("b")) {
            Lease vdi = a.acquire("vdi/7", Duration.ZERO);
            Lease extent = a.acquire("extent/12", Duration.ZERO);
            Election gc = b.elect("gc");
            assertTrue(gc.awaitLeadership(Duration.ofSeconds(10)));
            long pid = ProcessHandle.current().pid();

            Cli.Result text = Cli.run("nodes", "--cluster", zookeeper.connectString());
            assertEquals(0, text.exitCode(), text::toString);
            String pidColumn = " ".repeat(Math.max(0, "PID".length() - Long.toString(pid).length())) + pid;
            assertEquals("store " + zookeeper.storeId + ": 2 live nodes, 2 locks held\n"
                    + "NODE  " + " ".repeat(Math.max(0, Long.toString(pid).length() - 3)) + "PID  NBD              ADMIN        LEADS  LOCKS (FENCING TOKEN)\n"
                    + "a     " + pidColumn + "  127.0.0.1:10809  /run/a.sock  -      extent/12 (" + extent.fencingToken() + "), vdi/7 ("
                    + vdi.fencingToken() + ")\n"
                    + "b     " + pidColumn + "  127.0.0.1:10809  /run/b.sock  gc     -\n", text.out());

            Cli.Result json = Cli.run("nodes", "--cluster", zookeeper.connectString(), "--store", zookeeper.storeId, "--json");
            assertEquals(0, json.exitCode(), json::toString);
            Map<String, Object> parsed = JsonParser.parseObject(json.out());
            @SuppressWarnings("unchecked")
            Map<String, Object> store = (Map<String, Object>) ((List<Object>) parsed.get("stores")).getFirst();
            assertEquals(zookeeper.storeId, store.get("id"));
            assertEquals(Map.of("gc", "b"), store.get("leaders"));
            assertEquals(List.of(Map.of("lock", "extent/12", "node", "a", "fencingToken", extent.fencingToken()),
                    Map.of("lock", "vdi/7", "node", "a", "fencingToken", vdi.fencingToken())), store.get("locks"));
            @SuppressWarnings("unchecked")
            Map<String, Object> memberA = (Map<String, Object>) ((List<Object>) store.get("members")).getFirst();
            assertEquals("a", memberA.get("name"));
            assertEquals(Map.of("nbd", "127.0.0.1:10809", "admin", "/run/a.sock", "pid", Long.toString(pid)), memberA.get("attributes"));

            Cli.Result unknown = Cli.run("nodes", "--cluster", zookeeper.connectString(), "--store", "nobody");
            assertEquals("store nobody: 0 live nodes, 0 locks held\n", unknown.out());
        }
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
