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
 * Extent leases are told apart by their {@code use} note: extents a node allocates in, and its spares
 * (leased in advance, not allocated in yet, given back to a node that needs one). It only reads: it joins
 * nothing and takes no lock.
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
            Table table = new Table("NODE", "PID", "NBD", "ADMIN", "LEADS", "DISKS (FENCING TOKEN)", "EXTENTS", "SPARES",
                    "OTHER LOCKS (FENCING TOKEN)").alignRight(1);
            for (Member member : store.members()) {
                Map<String, String> attributes = member.attributes();
                List<LockHolder> held = locks(store, member.name());
                table.row(member.name(), attributes.getOrDefault("pid", "-"), attributes.getOrDefault("nbd", "-"),
                        attributes.getOrDefault("admin", "-"), orDash(String.join(",", roles(store, member.name()))),
                        disksText(held), extentsSummary(held, false), extentsSummary(held, true), otherLocksText(held));
            }
            // A lock whose holder's membership is gone: its session is ending, or it registered under another store.
            for (LockHolder lock : store.locks()) {
                if (store.members().stream().noneMatch(member -> member.name().equals(lock.node()))) {
                    List<LockHolder> one = List.of(lock);
                    table.row(lock.node() + " (not a member)", "-", "-", "-", "-", disksText(one), extentsSummary(one, false),
                            extentsSummary(one, true), otherLocksText(one));
                }
            }
            table.print(out);
            List<LockHolder> extents = store.locks().stream().filter(lock -> extentNumber(lock) >= 0)
                    .sorted(java.util.Comparator.comparingInt(NodesCommand::extentNumber)).toList();
            if (!extents.isEmpty()) {
                Table extentTable = new Table("EXTENT", "TYPE", "USE", "NODE", "FENCING TOKEN").alignRight(0, 4);
                for (LockHolder lock : extents) {
                    extentTable.row(Integer.toString(extentNumber(lock)), lock.notes().getOrDefault(TYPE_NOTE, "-"),
                            isSpare(lock) ? USE_SPARE : USE_ALLOCATING, lock.node(), Long.toString(lock.fencingToken()));
                }
                extentTable.print(out);
            }
            int count = extentCount(store);
            long spares = extents.stream().filter(NodesCommand::isSpare).count();
            String leased = (extents.size() - spares) + " allocated in, " + spares + " spare";
            if (count > 0) {
                out.println("extents: " + count + " in the store: 1 system, " + leased + ", " + freeToLease(count, extents.size())
                        + " free to lease");
            } else if (!extents.isEmpty()) {
                out.println("extents: " + leased);
            }
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
                json.endArray();
                List<LockHolder> held = locks(store, member.name());
                json.name("disks").beginArray();
                for (LockHolder lock : held) {
                    long disk = vdiId(lock);
                    if (disk >= 0) {
                        json.beginObject().field("id", disk);
                        if (lock.notes().containsKey(DISK_NOTE)) {
                            json.field("name", lock.notes().get(DISK_NOTE));
                        }
                        json.field("fencingToken", lock.fencingToken()).endObject();
                    }
                }
                json.endArray();
                extentsJson(json.name("extents"), held, false);
                extentsJson(json.name("spares"), held, true);
                json.endObject();
            }
            json.endArray().name("locks").beginArray();
            for (LockHolder lock : store.locks()) {
                json.beginObject().field("lock", lock.lockName()).field("node", lock.node())
                        .field("fencingToken", lock.fencingToken());
                if (!lock.notes().isEmpty()) {
                    json.name("notes").beginObject();
                    lock.notes().forEach(json::field);
                    json.endObject();
                }
                json.endObject();
            }
            json.endArray().name("leaders").beginObject();
            store.leaders().forEach(json::field);
            json.endObject();
            long leased = store.locks().stream().filter(lock -> extentNumber(lock) >= 0).count();
            long spares = store.locks().stream().filter(lock -> extentNumber(lock) >= 0 && isSpare(lock)).count();
            json.name("extents").beginObject();
            int count = extentCount(store);
            if (count > 0) {
                json.field("count", count);
            }
            json.field("leased", leased).field("allocating", leased - spares).field("spares", spares);
            if (count > 0) {
                json.field("freeToLease", freeToLease(count, leased));
            }
            json.endObject().endObject();
        }
        return json.endArray().endObject().toString();
    }

    /** Lock notes the nodes write (ClusterNode, ExtentLeaser). */
    private static final String DISK_NOTE = ClusterNode.DISK_NOTE;
    private static final String TYPE_NOTE = io.cairn.alloc.ExtentLeaser.TYPE_NOTE;
    private static final String USE_SPARE = io.cairn.alloc.ExtentLeaser.USE_SPARE;
    private static final String USE_ALLOCATING = io.cairn.alloc.ExtentLeaser.USE_ALLOCATING;

    /** A spare: leased in advance, nothing allocated in it under this lease. A lock without the note is allocated in. */
    private static boolean isSpare(LockHolder lock) {
        return USE_SPARE.equals(lock.notes().get(io.cairn.alloc.ExtentLeaser.USE_NOTE));
    }

    /**
     * Extents nobody holds a lease on, but the system extent (extent 0, never leased): free ones, and ones claimed by
     * a node that no longer leases them (a dead node's, taken over by the next node that needs one).
     */
    private static long freeToLease(int count, long leased) {
        return Math.max(0, count - 1 - leased);
    }

    private static void extentsJson(Json json, List<LockHolder> held, boolean spares) {
        json.beginArray();
        for (LockHolder lock : held) {
            int extent = extentNumber(lock);
            if (extent >= 0 && isSpare(lock) == spares) {
                json.beginObject().field("extent", extent).field("type", lock.notes().getOrDefault(TYPE_NOTE, "unknown"))
                        .field("fencingToken", lock.fencingToken()).endObject();
            }
        }
        json.endArray();
    }

    /** The extent a lock {@code extent/N} guards, or -1 for any other lock. */
    private static int extentNumber(LockHolder lock) {
        return (int) numberAfter(lock.lockName(), io.cairn.alloc.ExtentLeaser.LOCK_PREFIX, Integer.MAX_VALUE);
    }

    /** The disk id a lock {@code vdi/ID} guards, or -1 for any other lock. */
    private static long vdiId(LockHolder lock) {
        return numberAfter(lock.lockName(), ClusterNode.VDI_LOCK_PREFIX, Long.MAX_VALUE);
    }

    private static long numberAfter(String lockName, String prefix, long max) {
        if (!lockName.startsWith(prefix) || lockName.length() == prefix.length() || lockName.length() > prefix.length() + 18
                || !lockName.substring(prefix.length()).chars().allMatch(Character::isDigit)) {
            return -1;
        }
        long number = Long.parseLong(lockName.substring(prefix.length()));
        return number <= max ? number : -1;
    }

    private static String disksText(List<LockHolder> held) {
        return orDash(String.join(", ", held.stream().filter(lock -> vdiId(lock) >= 0)
                .map(lock -> lock.notes().getOrDefault(DISK_NOTE, lock.lockName()) + " (" + lock.fencingToken() + ")").toList()));
    }

    /** How many extents (allocated in, or spares) of each type, e.g. {@code 1 metadata, 3 data}; the extent table lists them. */
    private static String extentsSummary(List<LockHolder> held, boolean spares) {
        Map<String, Integer> byType = new java.util.TreeMap<>(java.util.Comparator.reverseOrder());
        for (LockHolder lock : held) {
            if (extentNumber(lock) >= 0 && isSpare(lock) == spares) {
                byType.merge(lock.notes().getOrDefault(TYPE_NOTE, "unknown"), 1, Integer::sum);
            }
        }
        return orDash(String.join(", ", byType.entrySet().stream().map(entry -> entry.getValue() + " " + entry.getKey()).toList()));
    }

    private static String otherLocksText(List<LockHolder> held) {
        return orDash(String.join(", ", held.stream().filter(lock -> vdiId(lock) < 0 && extentNumber(lock) < 0)
                .map(lock -> lock.lockName() + " (" + lock.fencingToken() + ")").toList()));
    }

    /** The store's extent count, as a member published it (0 if none did). */
    private static int extentCount(StoreView store) {
        for (Member member : store.members()) {
            String count = member.attributes().get(ClusterServing.EXTENTS_ATTRIBUTE);
            if (count != null && count.chars().allMatch(Character::isDigit) && !count.isEmpty() && count.length() < 10) {
                return Integer.parseInt(count);
            }
        }
        return 0;
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
