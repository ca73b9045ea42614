package io.cairn.cli;

import io.cairn.space.DiffExport;
import io.cairn.space.DiffStream;
import io.cairn.volume.Store;
import io.cairn.volume.Volume;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "export-diff",
        description = {"Write the changes from snapshot FROM to TO as a diff stream (docs/DIFF-FORMAT.md); without"
                + " FROM, all of TO (a full stream, which import-diff can apply to any disk of the same size).",
            "Streams are checksummed record by record; apply them with import-diff. Export a snapshot rather than"
                    + " a disk that is being written."})
final class ExportDiffCommand extends StoreCommand {

    @Parameters(index = "1", paramLabel = "[FROM]", description = "NAME@SNAP where the changes start (optional).")
    String first;

    @Parameters(index = "2", paramLabel = "TO", description = "NAME@SNAP, or NAME for the disk as it is now.")
    String second;

    @Parameters(index = "3", arity = "0..1", paramLabel = "FILE", description = "The stream to write.")
    String third;

    @Option(names = "--force", description = "Overwrite FILE if it exists.")
    boolean force;

    /** With two arguments they are TO and FILE. */
    private String from() {
        return third == null ? null : first;
    }

    private String to() {
        return third == null ? first : second;
    }

    private Path file() {
        return Path.of(third == null ? second : third);
    }

    @Override
    List<String> fileArguments() {
        return List.of(third == null ? second : third);
    }

    @Override
    void run() throws IOException {
        Path file = file();
        if (Files.isDirectory(file)) {
            throw CommandFailure.usage(file + " is a directory; name the stream file to write");
        }
        if (Files.exists(file) && !force) {
            throw CommandFailure.conflict(file + " already exists; pass --force to overwrite it");
        }
        try (Store opened = store.openForReading()) {
            long sizeBytes;
            try (Volume volume = opened.openVolume(to())) {
                sizeBytes = volume.sizeBytes();
            }
            DiffStream.Summary summary;
            try (OutputStream out = Files.newOutputStream(file);
                 Progress progress = Progress.onTerminal(err(), "export-diff", sizeBytes)) {
                summary = DiffExport.write(opened, from(), to(), out, progress::advanceTo);
            } catch (IOException | RuntimeException problem) {
                // A partial stream is refused on import anyway; do not leave it lying around.
                Files.deleteIfExists(file);
                throw problem;
            }
            DiffStream.Header header = summary.header();
            out().println("exported " + (header.incremental() ? "the changes from " + header.from().describe() + " to "
                    : "all of ") + header.to().describe() + " to " + file + ": " + summary.records() + " records, "
                    + Sizes.human(summary.dataBytes()) + " of data, " + Sizes.human(summary.zeroBytes()) + " of zeros ("
                    + summary.streamBytes() + " bytes)");
        }
    }
}
