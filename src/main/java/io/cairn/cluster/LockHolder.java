package io.cairn.cluster;

/**
 * Who holds a lock: the node's name and the fencing token of its lease.
 *
 * @param lockName     the lock, e.g. {@code vdi/7}
 * @param node         the holder's node name
 * @param fencingToken the token of the holder's lease (strictly increasing per lock name)
 */
public record LockHolder(String lockName, String node, long fencingToken) {
}
