/**
 * Space reports and change tracking, computed exactly from the radix trees and reference counts.
 *
 * <ul>
 *   <li>{@link io.cairn.space.SpaceAccounting}: bytes a tree references (mapped) and bytes only it
 *       references (exclusive: what deleting it frees); {@link io.cairn.space.DiskUsage} is the
 *       per-disk, per-snapshot report of {@code cairn du}.</li>
 *   <li>{@link io.cairn.space.ChangeWalk}: the changed blocks between two trees, walking both at once
 *       and skipping every subtree both share (cost follows the change, not the disk size);
 *       {@link io.cairn.space.Changes} applies it to named disks and snapshots ({@code cairn diff},
 *       the NBD context {@code cairn:changed-since:SNAP}).</li>
 *   <li>{@link io.cairn.space.DiffStreamWriter} and {@link io.cairn.space.DiffStreamReader}: the
 *       incremental backup stream of {@code export-diff} / {@code import-diff}
 *       (docs/DIFF-FORMAT.md).</li>
 * </ul>
 *
 * <p>Everything here reads the store through {@link io.cairn.volume.Store#inspect}, which holds off
 * every volume I/O and metadata change while a walk runs, so a walk sees one consistent state.
 * Counts are exact only when no removal is pending: callers that need exact exclusive figures commit
 * first (see {@link io.cairn.space.DiskUsage#report}).
 */
package io.cairn.space;
