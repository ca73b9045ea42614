package io.cairn.volume;

/** A virtual disk as users see it. {@code parentSnapshotId} is 0 for a disk created empty. */
public record VdiInfo(long id, String name, long sizeBytes, long parentSnapshotId, String parentName,
                      long createdMillis, int snapshotCount, boolean deleted) {
}
