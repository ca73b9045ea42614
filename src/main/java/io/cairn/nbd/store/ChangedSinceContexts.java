package io.cairn.nbd.store;

import io.cairn.nbd.Extent;
import io.cairn.nbd.MetaContext;
import io.cairn.nbd.MetaContextFamily;
import io.cairn.nbd.NbdExport;
import io.cairn.space.Changes;
import io.cairn.volume.SnapshotInfo;
import io.cairn.volume.Store;
import io.cairn.volume.VdiInfo;

import java.util.ArrayList;
import java.util.List;
import java.util.NoSuchElementException;

/**
 * The metadata contexts {@code cairn:changed-since:SNAP} (docs/DIFF-FORMAT.md): for an export, which
 * bytes changed since snapshot SNAP of the same disk family, so a backup tool reads only those. SNAP is
 * a snapshot id, a label of the export's own disk, or {@code NAME@SNAP} for a snapshot of a related
 * disk (e.g. the one a clone was made from). Flags: {@link #CHANGED} (bit 0) for bytes that may
 * differ, with {@link #ZERO} (bit 1) when they now read as zeros; 0 for bytes unchanged.
 *
 * <p>Each query walks both trees over the requested range only, skipping shared subtrees, so its cost
 * follows the changes in that range. The snapshot is resolved when the client selects the context; if
 * it is deleted afterwards, queries fail with EIO.
 */
public final class ChangedSinceContexts implements MetaContextFamily {

    public static final String PREFIX = "cairn:changed-since:";
    /** The range may differ from the snapshot. */
    public static final int CHANGED = 1;
    /** Only with {@link #CHANGED}: the range now reads as zeros (it was discarded). */
    public static final int ZERO = 2;

    private final Store store;

    public ChangedSinceContexts(Store store) {
        this.store = store;
    }

    @Override
    public String prefix() {
        return PREFIX;
    }

    @Override
    public MetaContext resolve(String name, NbdExport export) {
        if (!(export instanceof VolumeExport volumeExport)) {
            return null;
        }
        try {
            String since = Changes.resolveSince(store, volumeExport.volume().name(), name.substring(PREFIX.length()));
            return new ChangedSince(name, store, since);
        } catch (NoSuchElementException | IllegalArgumentException unknown) {
            return null;
        }
    }

    /** One context per snapshot of the export's disk, and the snapshot a clone was made from, by id. */
    @Override
    public List<MetaContext> listFor(NbdExport export) {
        if (!(export instanceof VolumeExport volumeExport)) {
            return List.of();
        }
        String exportName = volumeExport.volume().name();
        String disk = exportName.contains("@") ? exportName.substring(0, exportName.indexOf('@')) : exportName;
        List<String> ids = new ArrayList<>();
        try {
            VdiInfo vdi = store.vdi(disk);
            if (vdi.parentSnapshotId() != 0) {
                ids.add(Long.toString(vdi.parentSnapshotId()));
            }
            for (SnapshotInfo snapshot : store.snapshots(disk)) {
                ids.add(Long.toString(snapshot.id()));
            }
        } catch (NoSuchElementException gone) {
            return List.of();
        }
        List<MetaContext> contexts = new ArrayList<>();
        for (String id : ids) {
            MetaContext context = resolve(PREFIX + id, export);
            if (context != null) {
                contexts.add(context);
            }
        }
        return contexts;
    }

    /** The context for one snapshot; equal for equal names, so a repeated query selects it once. */
    private record ChangedSince(String name, Store store, String sinceReference) implements MetaContext {

        @Override
        public List<Extent> status(NbdExport export, long offsetBytes, long lengthBytes) {
            VolumeExport volumeExport = (VolumeExport) export;
            Changes.ChangeSet changes = Changes.within(store, sinceReference, volumeExport.volume().name(), offsetBytes,
                    lengthBytes);
            long end = offsetBytes + lengthBytes;
            List<Extent> extents = new ArrayList<>();
            long at = offsetBytes;
            for (Changes.ChangedRange range : changes.ranges()) {
                long start = Math.max(at, range.offsetBytes());
                long stop = Math.min(end, range.offsetBytes() + range.lengthBytes());
                if (stop <= start) {
                    continue;
                }
                if (start > at) {
                    extents.add(new Extent(start - at, 0));
                }
                extents.add(new Extent(stop - start, CHANGED | (range.zero() ? ZERO : 0)));
                at = stop;
            }
            if (at < end) {
                extents.add(new Extent(end - at, 0));
            }
            return extents;
        }
    }
}
