package io.cairn.cli;

import io.cairn.space.DiffImport;
import io.cairn.space.DiffStream;
import io.cairn.volume.Names;
import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.Store;
import io.cairn.volume.Volume;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "import-diff",
        description = {"Apply a diff stream from export-diff to disk NAME, then snapshot it (labelled like the"
                + " stream's TO snapshot) so the next stream can follow.",
            "The whole stream is checked before anything is written; a corrupt or truncated stream changes"
                    + " nothing. A full stream creates NAME if it does not exist. An incremental stream needs NAME"
                    + " to hold the version it starts from (see docs/DIFF-FORMAT.md), unless --force."})
final class ImportDiffCommand extends StoreCommand {

    @Parameters(index = "1", paramLabel = "NAME", description = "The disk to update (or, for a full stream, to create).")
    String name;

    @Parameters(index = "2", paramLabel = "FILE", description = "The stream.")
    Path file;

    @Option(names = "--force", description = "Apply the stream even if NAME does not hold the version it starts from.")
    boolean force;

    @Option(names = "--no-snapshot", description = "Do not take a snapshot of NAME afterwards.")
    boolean noSnapshot;

    @Override
    void run() throws IOException {
        Names.checkVdiName(name);
        if (!Files.exists(file)) {
            throw CommandFailure.notFound("no stream at " + file);
        }
        if (Files.isDirectory(file)) {
            throw CommandFailure.usage(file + " is a directory, not a diff stream");
        }
        DiffStream.Summary verified = DiffImport.verify(file);
        DiffStream.Header header = verified.header();
        try (Store opened = store.openForChanges()) {
            boolean created = prepareTarget(opened, header);
            DiffStream.Summary applied;
            try (Volume volume = opened.openVolume(name);
                 Progress progress = Progress.onTerminal(err(), "import-diff", header.sizeBytes())) {
                applied = DiffImport.apply(file, volume, progress::advanceTo);
            } catch (IOException | RuntimeException problem) {
                if (created) {
                    discard(opened, problem);
                }
                throw problem;
            }
            out().println("applied " + file + " to disk " + name + " (" + (header.incremental()
                    ? "changes from " + header.from().describe() + " to " : "all of ") + header.to().describe() + "): "
                    + applied.records() + " records, " + Sizes.human(applied.dataBytes()) + " of data, "
                    + Sizes.human(applied.zeroBytes()) + " of zeros");
            if (header.to().snapshotId() != 0 && !noSnapshot) {
                String label = labelFor(opened, header.to().label());
                SnapshotInfo snapshot = opened.snapshot(name, label);
                out().println("snapshot " + snapshot.reference() + (label.isEmpty() ? "" : " (" + label + ")"));
            }
        }
    }

    /** Checks NAME against the stream; creates it for a full stream if missing. True if created. */
    private boolean prepareTarget(Store opened, DiffStream.Header header) {
        boolean exists = opened.listVdis(false).stream().anyMatch(disk -> disk.name().equals(name));
        if (!exists) {
            if (header.incremental()) {
                throw CommandFailure.notFound("no disk named '" + name + "'; this stream holds the changes since "
                        + header.from().describe() + ", so it applies to a disk that holds that version"
                        + " (import a full stream first)");
            }
            opened.create(name, header.sizeBytes());
            return true;
        }
        String mismatch = DiffImport.mismatch(opened, name, header);
        if (mismatch != null) {
            if (!force) {
                throw CommandFailure.conflict(mismatch + "; nothing was written (pass --force to apply it anyway)");
            }
            err().println("cairn: warning: " + mismatch + "; applying anyway (--force)");
        }
        return false;
    }

    /** The source snapshot's label, if this disk does not use it yet. */
    private String labelFor(Store opened, String label) {
        if (label.isEmpty()) {
            return "";
        }
        boolean taken = opened.snapshots(name).stream().anyMatch(snapshot -> snapshot.label().equals(label));
        if (taken) {
            err().println("cairn: warning: disk '" + name + "' already has a snapshot labelled '" + label
                    + "'; the new snapshot has no label");
            return "";
        }
        return label;
    }

    private void discard(Store opened, Exception problem) {
        try {
            opened.deleteVdi(name, true);
        } catch (RuntimeException cleanup) {
            problem.addSuppressed(cleanup);
        }
    }
}
