package io.cairn.cli;

import io.cairn.cluster.ClusterDirectory;
import io.cairn.cluster.ClusterDirectory.StoreView;
import io.cairn.cluster.LeaseTimeouts;
import io.cairn.cluster.Member;
import io.cairn.cluster.Names;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Moves a disk to another node of the processes serving a store together (docs/CLUSTER.md), in two forms:
 * <ul>
 *   <li>{@code cairn migrate STORE DISK --to NODE}: the target is found by its admin socket next to STORE's;</li>
 *   <li>{@code cairn migrate --cluster ZK DISK --to NODE [--store ID]}: the target is found through ZooKeeper, by
 *       the attributes its membership publishes (its admin socket and the store file it serves); no store file
 *       needs to be at hand.</li>
 * </ul>
 * Either way the target pulls the disk: the holder answers what its clients have in flight, ends their
 * connections, makes every write durable and releases the disk; the target takes it under a new lease and
 * serves it, and from then on the disk's new blocks come from the target's extents. Clients reconnect to the
 * target. Prints the pause.
 */
@Command(name = "migrate", description = {"Move a disk to another node of a cluster serving the store.",
        "The disk's clients are disconnected after their requests in flight are answered; they reconnect to the new node.",
        "Forms: migrate STORE DISK --to NODE, or migrate --cluster ZK_CONNECT DISK --to NODE [--store ID]."})
final class MigrateCommand extends StoreCommand {

    /** How long the cluster form waits for ZooKeeper: the coordinator wait (T/2) of the default lease. */
    private static final LeaseTimeouts DIRECTORY_TIMEOUTS = new LeaseTimeouts(LeaseTimeouts.DEFAULT_LEASE);

    @Parameters(index = "1", arity = "0..1", paramLabel = "DISK", description = "The disk to move (STORE form).")
    String disk;

    @Option(names = "--to", required = true, paramLabel = "NODE", description = "The node to move it to.")
    String target;

    @Option(names = "--cluster", paramLabel = "ZK_CONNECT",
            description = "Find the node through this ZooKeeper ensemble; the only argument is then the DISK.")
    String cluster;

    @Option(names = "--store", paramLabel = "ID", description = "With --cluster: the store (its id) when several are coordinated there.")
    String storeId;

    @Override
    boolean forwardable() {
        return cluster == null; // the cluster form's only argument is a disk, not a store
    }

    @Override
    void run() {
        if (cluster != null) {
            runThroughCluster();
            return;
        }
        if (disk == null) {
            throw CommandFailure.usage("migrate needs STORE DISK --to NODE, or --cluster ZK_CONNECT DISK --to NODE");
        }
        if (storeId != null) {
            throw CommandFailure.usage("--store ID goes with --cluster; the STORE form names the store file");
        }
        Path path = store.path;
        ClusterServing served = LiveStores.requireServed(path, "migrate").cluster();
        if (served == null) {
            throw CommandFailure.usage("migrate moves disks between the nodes of a cluster; " + path
                    + " is served by one process (serve it with --cluster and --node)");
        }
        if (!served.nodeName().equals(target)) {
            runOnTarget(AdminEndpoint.socketFor(path, target), path, disk);
            return;
        }
        long pauseNanos = served.pull(disk);
        out().printf(java.util.Locale.ROOT, "moved disk '%s' to node '%s'; clients paused %.1f ms%n", disk, target,
                pauseNanos / 1e6);
    }

    /** The cluster form: the target's admin socket and store file from its ZooKeeper membership. */
    private void runThroughCluster() {
        if (disk != null) {
            throw CommandFailure.usage("with --cluster, migrate takes only the disk: migrate --cluster " + cluster + " DISK --to NODE");
        }
        String diskName = store.path.toString();
        try {
            Names.connectString(cluster);
            Names.node(target);
            if (storeId != null) {
                Names.storeId(storeId);
            }
        } catch (IllegalArgumentException bad) {
            throw CommandFailure.usage(bad.getMessage());
        }
        List<Member> found = new ArrayList<>();
        List<String> foundIn = new ArrayList<>();
        List<String> liveNames = new ArrayList<>();
        try (ClusterDirectory directory = ClusterDirectory.connect(cluster, DIRECTORY_TIMEOUTS)) {
            for (StoreView view : storeId != null ? List.of(directory.store(storeId)) : directory.stores()) {
                for (Member member : view.members()) {
                    liveNames.add(member.name());
                    if (member.name().equals(target)) {
                        found.add(member);
                        foundIn.add(view.storeId());
                    }
                }
            }
        }
        if (found.isEmpty()) {
            throw CommandFailure.notFound("no live node named '" + target + "' " + (storeId != null ? "in store " + storeId
                    : "in any store") + " coordinated at " + cluster + (liveNames.isEmpty() ? " (no node is live there)"
                    : " (live: " + String.join(", ", liveNames.stream().distinct().sorted().toList()) + ")"));
        }
        if (found.size() > 1) {
            throw CommandFailure.usage("a node named '" + target + "' is live in " + found.size() + " stores coordinated at "
                    + cluster + " (" + String.join(", ", foundIn) + "); choose one with --store ID");
        }
        Member member = found.getFirst();
        String admin = member.attributes().get("admin");
        String storeFile = member.attributes().get(ClusterServing.STORE_ATTRIBUTE);
        if (admin == null || storeFile == null) {
            throw CommandFailure.notFound("node '" + target + "' does not publish its admin socket and store file in ZooKeeper "
                    + "(it runs an older version); use: cairn migrate STORE " + diskName + " --to " + target);
        }
        runOnTarget(Path.of(admin), Path.of(storeFile), diskName);
    }

    /** Passes the command to the target node, which pulls the disk. */
    private void runOnTarget(Path socket, Path path, String diskName) {
        if (!Files.exists(socket)) {
            throw CommandFailure.notFound("no node named '" + target + "' serves " + path + " here (no admin socket " + socket + ")");
        }
        Optional<AdminProtocol.Response> answer = AdminClient.send(socket, path,
                List.of(AdminServer.FORWARDED, "migrate", path.toAbsolutePath().toString(), diskName, "--to", target));
        if (answer.isEmpty()) {
            throw CommandFailure.notFound("node '" + target + "' of " + path + " does not answer");
        }
        out().print(answer.get().out());
        if (answer.get().exitCode() != ExitCodes.OK) {
            throw CommandFailure.relayed(answer.get().exitCode(), answer.get().err().strip()
                    .replaceFirst("^" + java.util.regex.Pattern.quote(ErrorHandler.PREFIX), ""));
        }
    }
}
