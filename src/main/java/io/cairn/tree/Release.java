package io.cairn.tree;

/**
 * A reference removed in the open transaction, to be subtracted once the commit that removed it is
 * durable. {@code level} 0 names a leaf target (data block or table page); a node's children are
 * released in turn when its count reaches 0, unless it was {@code moved} (shadowed with its
 * references handed to the copy).
 */
public record Release(long block, int level, LeafKind leafKind, boolean moved) {
}
