package io.cairn.io;

/**
 * Metadata failed a check on read: bad checksum, wrong type, wrong self-address, or an impossible
 * value. Names the block so an operator can find it. The store stops writing when it sees one.
 */
public class CorruptionException extends StorageException {

    private final long blockNumber;

    public CorruptionException(long blockNumber, String message) {
        super(Code.CORRUPT, "corrupt metadata in block " + blockNumber + ": " + message);
        this.blockNumber = blockNumber;
    }

    public long blockNumber() {
        return blockNumber;
    }
}
