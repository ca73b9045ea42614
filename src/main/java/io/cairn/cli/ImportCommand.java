package io.cairn.cli;

import io.cairn.volume.Names;
import io.cairn.volume.Store;
import io.cairn.volume.Volume;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "import",
        description = "Copy a raw disk image into a new disk; blocks of zeros stay holes.")
final class ImportCommand extends StoreCommand {

    private static final long SECTOR_BYTES = 512;

    @Parameters(index = "1", paramLabel = "NAME", description = "Name of the new disk.")
    String name;

    @Parameters(index = "2", paramLabel = "FILE", description = "The raw image.")
    Path file;

    @Option(names = "--size", paramLabel = "SIZE", converter = Sizes.Converter.class,
            description = "Size of the new disk (default: the image's size, rounded up to 512 bytes).")
    Long sizeBytes;

    @Override
    void run() throws IOException {
        Names.checkVdiName(name);
        long imageBytes = imageBytes();
        long diskBytes = sizeBytes != null ? sizeBytes : (imageBytes + SECTOR_BYTES - 1) / SECTOR_BYTES * SECTOR_BYTES;
        if (sizeBytes != null && sizeBytes < imageBytes) {
            throw CommandFailure.usage(file + " holds " + imageBytes + " bytes, more than --size " + sizeBytes);
        }
        if (diskBytes == 0) {
            throw CommandFailure.usage(file + " is empty; give the size of the disk with --size");
        }
        try (Store opened = store.openForChanges()) {
            Conflicts.requireNoDisk(opened, name);
            opened.create(name, diskBytes);
            RawImage.Copied copied;
            try {
                copied = copy(opened, imageBytes);
            } catch (IOException | RuntimeException problem) {
                // A half-imported disk would look complete; take it away again.
                discard(opened, problem);
                throw problem;
            }
            out().println("imported " + file + " as disk " + name + " (" + Sizes.human(diskBytes) + "): "
                    + Sizes.human(copied.dataBytes()) + " of data, " + Sizes.human(copied.holeBytes()) + " left as holes");
        }
    }

    private long imageBytes() throws IOException {
        if (!Files.exists(file)) {
            throw CommandFailure.notFound("no image at " + file);
        }
        if (Files.isDirectory(file)) {
            throw CommandFailure.usage(file + " is a directory, not an image");
        }
        return Files.size(file);
    }

    private RawImage.Copied copy(Store opened, long imageBytes) throws IOException {
        try (Volume volume = opened.openVolume(name);
             FileChannel image = FileChannel.open(file, StandardOpenOption.READ);
             Progress progress = Progress.onTerminal(err(), "import", imageBytes)) {
            return RawImage.importInto(image, imageBytes, volume, progress);
        }
    }

    private void discard(Store opened, Exception problem) {
        try {
            opened.deleteVdi(name, true);
        } catch (RuntimeException cleanup) {
            problem.addSuppressed(cleanup);
        }
    }
}
