package io.cairn.volume;

/**
 * A virtual disk as users see it. {@code parentSnapshotId} is 0 for a disk created empty; {@code holderNode}
 * is the node id its record names as holder in a shared store (0: none, and always 0 for a store served alone).
 */
public record VdiInfo(long id, String name, long sizeBytes, long parentSnapshotId, String parentName,
                      long createdMillis, int snapshotCount, boolean deleted, long holderNode) {
}
