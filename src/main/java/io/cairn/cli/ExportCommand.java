package io.cairn.cli;

import io.cairn.volume.Store;
import io.cairn.volume.Volume;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "export",
        description = "Copy a disk or snapshot to a sparse raw image: only non-zero data is written.")
final class ExportCommand extends StoreCommand {

    @Parameters(index = "1", paramLabel = "NAME[@SNAP]", description = "The disk, or a snapshot by id or label.")
    String source;

    @Parameters(index = "2", paramLabel = "FILE", description = "The image to write; its length becomes the disk's size.")
    Path file;

    @Option(names = "--force", description = "Overwrite FILE if it exists.")
    boolean force;

    @Override
    void run() throws IOException {
        if (Files.isDirectory(file)) {
            throw CommandFailure.usage(file + " is a directory; name the image file to write");
        }
        if (Files.exists(file) && !force) {
            throw CommandFailure.conflict(file + " already exists; pass --force to overwrite it");
        }
        try (Store opened = store.openForReading();
             Volume volume = opened.openVolume(source)) {
            RawImage.Copied copied;
            try {
                copied = copy(volume);
            } catch (IOException | RuntimeException problem) {
                // A partial image would pass for a whole one: remove it.
                Files.deleteIfExists(file);
                throw problem;
            }
            out().println("exported " + source + " to " + file + " (" + Sizes.human(volume.sizeBytes()) + "): "
                    + Sizes.human(copied.dataBytes()) + " of data, " + Sizes.human(copied.holeBytes()) + " left as holes");
        }
    }

    private RawImage.Copied copy(Volume volume) throws IOException {
        try (RandomAccessFile image = new RandomAccessFile(file.toFile(), "rw");
             Progress progress = Progress.onTerminal(err(), "export", volume.sizeBytes())) {
            // Old contents must not show through the holes; then setting the length leaves the rest sparse.
            image.setLength(0);
            RawImage.Copied copied = RawImage.exportFrom(volume, image.getChannel(), progress);
            image.setLength(volume.sizeBytes());
            return copied;
        }
    }
}
