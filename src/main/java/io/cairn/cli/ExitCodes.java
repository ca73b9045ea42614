package io.cairn.cli;

import io.cairn.cluster.CoordinatorUnavailableException;
import io.cairn.format.UnsupportedFormatException;
import io.cairn.io.StorageException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.NoSuchFileException;
import java.util.NoSuchElementException;
import picocli.CommandLine;

/**
 * The exit codes of {@code bin/cairn}, and the one mapping from failures to them. Scripts branch on
 * these, so a code's meaning never changes.
 */
final class ExitCodes {

    static final int OK = 0;
    /** Anything unexpected: a bug, or a failure with no better class. */
    static final int OTHER = 1;
    /** Bad command line or bad input: an unknown option, a malformed size, an invalid name. */
    static final int USAGE = 2;
    /** The store, disk, snapshot or file named does not exist. */
    static final int NOT_FOUND = 3;
    /** The request clashes with the current state: the name is taken, the disk is in use or has snapshots. */
    static final int CONFLICT = 4;
    /** The store or a file could not be read or written, or its contents are corrupt or unsupported. */
    static final int STORAGE = 5;
    /** {@code check}: the store lost space to leaks (counters too high, unreachable blocks), nothing worse. */
    static final int CHECK_LEAKS = 6;
    /** {@code check} and {@code gc}: the store is damaged (a counter too low, a bad pointer, unreadable metadata). */
    static final int CHECK_DAMAGE = 7;
    /** The cluster coordinator (ZooKeeper) did not answer in time; retrying once it is back may succeed. */
    static final int COORDINATOR_UNAVAILABLE = 8;
    /** The disk is held by another node of a cluster: this node may not change it (the admin socket asks the others). */
    static final int NOT_HOLDER = 9;

    private ExitCodes() {
    }

    static int of(Throwable problem) {
        return switch (problem) {
            case CommandFailure failure -> failure.exitCode();
            case CoordinatorUnavailableException ignored -> COORDINATOR_UNAVAILABLE;
            case io.cairn.volume.Store.NotHeldException ignored -> NOT_HOLDER;
            case CommandLine.ParameterException ignored -> USAGE;
            // The engine reports a name that does not resolve with its own NoSuchElementException subtype.
            case NoSuchElementException ignored -> NOT_FOUND;
            case NoSuchFileException ignored -> NOT_FOUND;
            case FileAlreadyExistsException ignored -> CONFLICT;
            // Another process holding the store is a conflict, not a storage failure.
            case StorageException storage -> storage.code() == StorageException.Code.LOCKED ? CONFLICT : STORAGE;
            case UnsupportedFormatException ignored -> STORAGE;
            case UncheckedIOException unchecked -> of(unchecked.getCause());
            case IOException ignored -> STORAGE;
            // The engine's contract: IllegalState for a request the current state refuses...
            case IllegalStateException ignored -> CONFLICT;
            // ...and IllegalArgument for input that can never be valid.
            case IllegalArgumentException ignored -> USAGE;
            default -> OTHER;
        };
    }
}
