package io.cairn.volume;

/** A snapshot as users see it: {@code vdiName@id} or {@code vdiName@label} names it. */
public record SnapshotInfo(long id, long vdiId, String vdiName, String label, long takenMillis, long sizeBytes,
                           boolean deleted) {

    public String reference() {
        return vdiName + "@" + id;
    }
}
