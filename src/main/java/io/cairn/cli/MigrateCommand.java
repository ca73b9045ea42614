package io.cairn.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * {@code cairn migrate STORE DISK --to NODE}: moves a disk to another node of the processes serving STORE
 * together (docs/CLUSTER.md). The holder answers what its clients have in flight, ends their connections,
 * makes every write durable and releases the disk; the target takes it under a new lease and serves it.
 * Clients reconnect to the target. Prints the pause.
 */
@Command(name = "migrate", description = {"Move a disk to another node of a cluster serving the store.",
        "The disk's clients are disconnected after their requests in flight are answered; they reconnect to the new node."})
final class MigrateCommand extends StoreCommand {

    @Parameters(index = "1", paramLabel = "DISK", description = "The disk to move.")
    String disk;

    @Option(names = "--to", required = true, paramLabel = "NODE", description = "The node to move it to.")
    String target;

    @Override
    void run() {
        Path path = store.path;
        ClusterServing cluster = LiveStores.requireServed(path, "migrate").cluster();
        if (cluster == null) {
            throw CommandFailure.usage("migrate moves disks between the nodes of a cluster; " + path
                    + " is served by one process (serve it with --cluster and --node)");
        }
        if (!cluster.nodeName().equals(target)) {
            runOnTarget(path);
            return;
        }
        long pauseNanos = cluster.pull(disk);
        out().printf(java.util.Locale.ROOT, "moved disk '%s' to node '%s'; clients paused %.1f ms%n", disk, target,
                pauseNanos / 1e6);
    }

    /** Passes the command to the target node, which pulls the disk. */
    private void runOnTarget(Path path) {
        Path socket = AdminEndpoint.socketFor(path, target);
        if (!Files.exists(socket)) {
            throw CommandFailure.notFound("no node named '" + target + "' serves " + path);
        }
        Optional<AdminProtocol.Response> answer = AdminClient.send(socket, path,
                List.of(AdminServer.FORWARDED, "migrate", path.toAbsolutePath().toString(), disk, "--to", target));
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
