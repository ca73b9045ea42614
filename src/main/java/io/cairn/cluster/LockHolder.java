package io.cairn.cluster;

import java.time.Duration;
import java.util.Map;

/**
 * Who holds a lock: the node's name, the fencing token of its lease, and the notes the holder attached
 * when it acquired it (what the lock guards, for people reading {@code cairn nodes}).
 *
 * @param lockName     the lock, e.g. {@code vdi/7}
 * @param node         the holder's node name
 * @param fencingToken the token of the holder's lease (strictly increasing per lock name)
 * @param notes        {@code key=value} pairs given to {@link LockManager#acquire(String, Duration, Map)}
 */
public record LockHolder(String lockName, String node, long fencingToken, Map<String, String> notes) {

    public LockHolder {
        notes = Map.copyOf(notes);
    }

    /** A holder whose lock carries no notes. */
    public LockHolder(String lockName, String node, long fencingToken) {
        this(lockName, node, fencingToken, Map.of());
    }
}
