package io.cairn.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/**
 * The holder's half of {@code migrate}, sent by the target node to the others: the node holding the disk
 * ends its connections and releases it; the others answer {@link ExitCodes#NOT_HOLDER}.
 */
@Command(name = "give-back", hidden = true, description = "Release a disk this cluster node holds (the holder's half of migrate).")
final class GiveBackCommand extends StoreCommand {

    @Parameters(index = "1", paramLabel = "DISK", description = "The disk to release.")
    String disk;

    @Override
    void run() {
        ClusterServing cluster = LiveStores.requireServed(store.path, "give-back").cluster();
        if (cluster == null) {
            throw CommandFailure.usage("give-back is part of migrate between the nodes of a cluster");
        }
        cluster.giveBack(disk);
    }
}
