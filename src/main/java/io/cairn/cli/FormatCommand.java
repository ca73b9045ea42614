package io.cairn.cli;

import io.cairn.format.Layout;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import java.nio.file.Files;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "format",
        description = "Create a blockstore in a new sparse file (or on a block device).")
final class FormatCommand extends StoreCommand {

    @Option(names = "--size", paramLabel = "SIZE", converter = Sizes.Converter.class,
            description = "Size of the store, e.g. 64G (optional on a block device: its size).")
    long sizeBytes;

    @Option(names = "--extent-size", paramLabel = "SIZE", converter = Sizes.Converter.class,
            description = "Unit in which space is handed to data or metadata, a power of two (default: 256M,"
                    + " or 64M for a store under 16G).")
    Long extentBytes; // null: the default for the store's size

    @Override
    void run() {
        long minExtentBytes = (long) Layout.MIN_EXTENT_BLOCKS * Layout.BLOCK_BYTES;
        if (extentBytes != null && (extentBytes < minExtentBytes || Long.bitCount(extentBytes) != 1
                || extentBytes / Layout.BLOCK_BYTES > Integer.MAX_VALUE)) {
            throw CommandFailure.usage("--extent-size must be a power of two of at least " + Sizes.human(minExtentBytes)
                    + ", got " + extentBytes + " bytes");
        }
        if (Files.isRegularFile(store.path)) {
            throw CommandFailure.conflict(store.path + " already exists; remove it first to make a new store there");
        }
        int extentBlocks = extentBytes == null ? 0 : (int) (extentBytes / Layout.BLOCK_BYTES);
        try (Store created = Store.formatFile(store.path, sizeBytes, extentBlocks, StoreOptions.defaults())) {
            out().println("formatted " + store.path + ": " + Sizes.human(created.geometry().storeBlocks() * Layout.BLOCK_BYTES)
                    + " in " + created.geometry().extentCount() + " extents of "
                    + Sizes.human((long) created.geometry().extentBlocks() * Layout.BLOCK_BYTES)
                    + ", store id " + created.storeId());
        }
    }
}
