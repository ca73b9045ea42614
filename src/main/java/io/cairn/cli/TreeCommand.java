package io.cairn.cli;

import io.cairn.volume.Store;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "tree",
        description = "Show the forest of disks and snapshots: each disk with its snapshots in order, each clone"
                + " under the snapshot it came from; deleted snapshots that clones descend from are marked (deleted).")
final class TreeCommand extends StoreCommand {

    @ArgGroup(exclusive = true)
    Format format = new Format();

    static final class Format {
        @Option(names = "--dot", description = "Print a Graphviz graph (render with: dot -Tsvg).")
        boolean dot;

        @Option(names = "--json", description = "Print JSON (sizes in bytes).")
        boolean json;
    }

    @Override
    void run() {
        Forest forest;
        try (Store opened = store.openForReading()) {
            forest = Forest.of(opened.listVdis(true), opened.allSnapshots());
        }
        if (format.dot) {
            out().print(ForestRendering.dot(forest));
        } else if (format.json) {
            out().println(ForestRendering.json(forest));
        } else {
            out().print(ForestRendering.text(forest));
        }
    }
}
