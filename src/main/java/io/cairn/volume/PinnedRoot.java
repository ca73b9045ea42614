package io.cairn.volume;

import io.cairn.format.TablePageCodec;
import io.cairn.tree.LeafKind;
import io.cairn.tree.RootRef;

/**
 * An extra reference held on the root of a live tree by a scan that runs outside the store's locks
 * (the garbage collector). While it is held the tree can neither change nor be freed: every write
 * through a root whose counter is above 1 shadows by copying, and a counter that includes the pin
 * never reaches 0. See {@link Store.Internals#pinLiveRoots()}.
 *
 * @param root        the pinned block (the tree's root, or a copy of it if its counter was saturated) and height
 * @param table       the system table whose tree this is, or null for a disk or snapshot tree
 * @param description what the pinned tree was at the checkpoint, for findings ("VDI 3", "snapshot 7", ...)
 */
public record PinnedRoot(RootRef root, TablePageCodec.Kind table, String description) {

    /** What the leaves of the pinned tree name. */
    public LeafKind leafKind() {
        return table == null ? LeafKind.DATA : LeafKind.PAGE;
    }
}
