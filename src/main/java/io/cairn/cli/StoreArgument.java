package io.cairn.cli;

import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Parameters;

/**
 * The STORE argument every store command takes first, and the one way commands open it: listings
 * read-only (a shared lock, nothing written), changes read-write (the exclusive owner lock, a commit
 * on close).
 */
final class StoreArgument {

    @Parameters(index = "0", paramLabel = "STORE", description = "The blockstore: a file or a block device.")
    Path path;

    Store openForChanges() {
        return open(StoreOptions.defaults());
    }

    Store openForReading() {
        return open(StoreOptions.defaults().withReadOnly(true));
    }

    private Store open(StoreOptions options) {
        Store live = LiveStores.borrow(path);
        if (live != null) {
            return live; // run by this process's server for a client: use the store it serves
        }
        if (!Files.exists(path)) {
            throw CommandFailure.notFound("no store at " + path + " (create one with: cairn format " + path + " --size 64G)");
        }
        if (Files.isDirectory(path)) {
            throw CommandFailure.usage(path + " is a directory, not a store");
        }
        return Store.openFile(path, options);
    }
}
