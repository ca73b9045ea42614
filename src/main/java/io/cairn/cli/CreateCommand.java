package io.cairn.cli;

import io.cairn.volume.Store;
import io.cairn.volume.VdiInfo;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "create",
        description = "Create an empty thin disk, or a writable clone of a snapshot.")
final class CreateCommand extends StoreCommand {

    @Parameters(index = "1", paramLabel = "NAME", description = "Name of the new disk.")
    String name;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    static final class Source {
        @Option(names = "--size", paramLabel = "SIZE", converter = Sizes.Converter.class,
                description = "Size of a new empty disk, e.g. 10G (a multiple of 512 bytes).")
        Long sizeBytes;

        @Option(names = "--from", paramLabel = "NAME@SNAP",
                description = "Clone this snapshot (by id or label); the clone has its size.")
        String snapshot;
    }

    @Option(names = "--no-wait", description = "On a running server: return as soon as the disk exists;"
            + " the server commits it in the background (a power loss before that commit loses it).")
    boolean noWait;

    @Override
    void run() {
        Store opened = store.openForChanges();
        try {
            Conflicts.requireNoDisk(opened, name);
            if (source.snapshot != null) {
                VdiInfo clone = opened.clone(name, source.snapshot);
                out().println("created disk " + name + " (id " + clone.id() + ", " + Sizes.human(clone.sizeBytes())
                        + "), a clone of " + clone.parentName());
            } else {
                VdiInfo disk = opened.create(name, source.sizeBytes);
                out().println("created disk " + name + " (id " + disk.id() + ", " + Sizes.human(disk.sizeBytes()) + ")");
            }
        } finally {
            opened.release(!noWait);
        }
    }
}
