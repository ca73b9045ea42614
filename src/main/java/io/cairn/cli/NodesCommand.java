package io.cairn.cli;

import io.cairn.cluster.ClusterDirectory;
import io.cairn.cluster.ClusterDirectory.StoreView;
import io.cairn.cluster.LeaseTimeouts;
import io.cairn.cluster.LockHolder;
import io.cairn.cluster.Member;
import io.cairn.cluster.Names;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code cairn nodes --cluster ZK}: the live nodes of every store ZooKeeper coordinates (or of one,
 * with {@code --store ID}), the locks each holds with their fencing tokens, and the roles each leads.
 * It only reads: it joins nothing and takes no lock.
 */
@Command(name = "nodes",
        description = "List the live nodes of clustered stores, the locks they hold and the roles they lead.")
final class NodesCommand implements Callable<Integer> {

    @Option(names = "--cluster", required = true, paramLabel = "ZK_CONNECT",
            description = "ZooKeeper ensemble, HOST:PORT[,HOST:PORT...].")
    String cluster;

    @Option(names = "--store", paramLabel = "ID", description = "Only this store (its id, as `info` prints it).")
    String storeId;

    @Option(names = "--json", description = "Print JSON instead of tables.")
    boolean json;

    @Option(names = "--wait", paramLabel = "SECONDS", defaultValue = "5",
            description = "How long to wait for ZooKeeper before giving up (default: ${DEFAULT-VALUE}).")
    double waitSeconds;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        if (storeId != null) {
            Names.storeId(storeId);
        }
        long waitMillis = Math.round(waitSeconds * 1000);
        if (!(waitMillis >= LeaseTimeouts.MIN_LEASE.toMillis() / 2 && waitMillis <= 600_000)) {
            throw CommandFailure.usage("--wait must be between 0.2 and 600 seconds, not " + waitSeconds);
        }
        // The directory waits for ZooKeeper half a lease timeout (LeaseTimeouts); ask for twice the wait.
        LeaseTimeouts timeouts = new LeaseTimeouts(Duration.ofMillis(2 * waitMillis));
        List<StoreView> stores;
        try (ClusterDirectory directory = ClusterDirectory.connect(cluster, timeouts)) {
            stores = storeId != null ? List.of(directory.store(storeId)) : directory.stores();
        }
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            out.println(json(stores));
        } else {
            printText(stores, out);
        }
        out.flush();
        return ExitCodes.OK;
    }

    private void printText(List<StoreView> stores, PrintWriter out) {
        if (stores.isEmpty()) {
            out.println("no store is coordinated at " + cluster);
            return;
        }
        boolean first = true;
        for (StoreView store : stores) {
            if (!first) {
                out.println();
            }
            first = false;
            out.println("store " + store.storeId() + ": " + plural(store.members().size(), "live node") + ", "
                    + plural(store.locks().size(), "lock") + " held");
            if (store.members().isEmpty() && store.locks().isEmpty()) {
                continue;
            }
            Table table = new Table("NODE", "PID", "NBD", "ADMIN", "LEADS", "LOCKS (FENCING TOKEN)").alignRight(1);
            for (Member member : store.members()) {
                Map<String, String> attributes = member.attributes();
                table.row(member.name(), attributes.getOrDefault("pid", "-"), attributes.getOrDefault("nbd", "-"),
                        attributes.getOrDefault("admin", "-"), orDash(String.join(",", roles(store, member.name()))),
                        orDash(String.join(", ", locks(store, member.name()).stream()
                                .map(lock -> lock.lockName() + " (" + lock.fencingToken() + ")").toList())));
            }
            // A lock whose holder's membership is gone: its session is ending, or it registered under another store.
            for (LockHolder lock : store.locks()) {
                if (store.members().stream().noneMatch(member -> member.name().equals(lock.node()))) {
                    table.row(lock.node() + " (not a member)", "-", "-", "-", "-", lock.lockName() + " (" + lock.fencingToken() + ")");
                }
            }
            table.print(out);
        }
    }

    private static String json(List<StoreView> stores) {
        Json json = new Json().beginObject().name("stores").beginArray();
        for (StoreView store : stores) {
            json.beginObject().field("id", store.storeId()).name("members").beginArray();
            for (Member member : store.members()) {
                json.beginObject().field("name", member.name()).name("attributes").beginObject();
                member.attributes().forEach(json::field);
                json.endObject().name("leads").beginArray();
                roles(store, member.name()).forEach(json::value);
                json.endArray().endObject();
            }
            json.endArray().name("locks").beginArray();
            for (LockHolder lock : store.locks()) {
                json.beginObject().field("lock", lock.lockName()).field("node", lock.node())
                        .field("fencingToken", lock.fencingToken()).endObject();
            }
            json.endArray().name("leaders").beginObject();
            store.leaders().forEach(json::field);
            json.endObject().endObject();
        }
        return json.endArray().endObject().toString();
    }

    private static List<String> roles(StoreView store, String node) {
        List<String> roles = new ArrayList<>();
        store.leaders().forEach((role, leader) -> {
            if (leader.equals(node)) {
                roles.add(role);
            }
        });
        return roles;
    }

    private static List<LockHolder> locks(StoreView store, String node) {
        return store.locks().stream().filter(lock -> lock.node().equals(node)).toList();
    }

    private static String orDash(String text) {
        return text.isEmpty() ? "-" : text;
    }

    private static String plural(int count, String noun) {
        return count + " " + noun + (count == 1 ? "" : "s");
    }
}
