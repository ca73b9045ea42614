package io.cairn.tree;

/** What the pointers of a tree's leaf nodes name. */
public enum LeafKind {
    /** Virtual-disk data blocks: raw bytes, may be shared by snapshots and clones. */
    DATA,
    /** Pages of a system table: metadata blocks with a header, shared only while a collection pins the table. */
    PAGE
}
