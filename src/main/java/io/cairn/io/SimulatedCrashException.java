package io.cairn.io;

/**
 * The power went out under a {@link FaultInjectingBlockDevice}: the write that armed the crash and
 * every operation after it fail with this. It is an {@link StorageException.Code#IO} error, so the
 * code under test meets it on the same paths as a real I/O failure.
 */
public class SimulatedCrashException extends StorageException {

    public SimulatedCrashException(String message) {
        super(Code.IO, message);
    }
}
