package io.cairn.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.cairn.cluster.CoordinatorUnavailableException;
import io.cairn.cluster.LockHeldException;
import io.cairn.cluster.LockHolder;
import io.cairn.format.UnsupportedFormatException;
import io.cairn.io.CorruptionException;
import io.cairn.io.StorageException;
import io.cairn.volume.Store;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.NoSuchFileException;
import org.junit.jupiter.api.Test;

class ExitCodesTest {

    @Test
    void eachKindOfFailureHasItsCode() {
        assertEquals(ExitCodes.USAGE, ExitCodes.of(new IllegalArgumentException("bad name")));
        assertEquals(ExitCodes.USAGE, ExitCodes.of(CommandFailure.usage("x")));
        assertEquals(ExitCodes.NOT_FOUND, ExitCodes.of(new Store.NoSuchElementException("no disk")));
        assertEquals(ExitCodes.NOT_FOUND, ExitCodes.of(CommandFailure.notFound("x")));
        assertEquals(ExitCodes.NOT_FOUND, ExitCodes.of(new UncheckedIOException(new NoSuchFileException("/f"))));
        assertEquals(ExitCodes.CONFLICT, ExitCodes.of(new IllegalStateException("in use")));
        assertEquals(ExitCodes.CONFLICT, ExitCodes.of(new StorageException(StorageException.Code.LOCKED, "held")));
        assertEquals(ExitCodes.CONFLICT, ExitCodes.of(new FileAlreadyExistsException("/f")));
        assertEquals(ExitCodes.NOT_HOLDER, ExitCodes.of(new Store.NotHeldException("held by another node")));
        assertEquals(ExitCodes.CONFLICT, ExitCodes.of(CommandFailure.conflict("x")));
        assertEquals(ExitCodes.STORAGE, ExitCodes.of(new StorageException(StorageException.Code.IO, "eio")));
        assertEquals(ExitCodes.STORAGE, ExitCodes.of(new StorageException(StorageException.Code.NO_SPACE, "full")));
        assertEquals(ExitCodes.STORAGE, ExitCodes.of(new CorruptionException(7, "bad checksum")));
        assertEquals(ExitCodes.STORAGE, ExitCodes.of(new UnsupportedFormatException("version 9")));
        assertEquals(ExitCodes.STORAGE, ExitCodes.of(new IOException("disk on fire")));
        assertEquals(ExitCodes.COORDINATOR_UNAVAILABLE, ExitCodes.of(new CoordinatorUnavailableException("ZooKeeper away")));
        assertEquals(ExitCodes.CONFLICT, ExitCodes.of(new LockHeldException(new LockHolder("vdi/7", "a", 12))));
        assertEquals(ExitCodes.OTHER, ExitCodes.of(new NullPointerException()));
    }

    @Test
    void errorMessagesAreOneLineAndNameTheFile() {
        assertEquals("first; second", ErrorHandler.oneLine("first\n  second\n"));
        assertEquals("failed without a message", ErrorHandler.oneLine(null));
        assertEquals("no such file: /img", ErrorHandler.describe(new NoSuchFileException("/img")));
        assertEquals("/img already exists", ErrorHandler.describe(new UncheckedIOException(new FileAlreadyExistsException("/img"))));
    }
}
