package io.cairn.cli;

import io.cairn.volume.Store;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Stores this process serves. A command run by the admin server for a client asks here first and
 * borrows the live store instead of opening the file (which the server holds locked). Each served store
 * has its snapshot schedules, which only a server runs.
 */
final class LiveStores {

    private LiveStores() {
    }

    /** A store this process serves, with its snapshot schedules, and its cluster node if it serves it with others (else null). */
    record Served(Store store, Schedules schedules, ClusterServing cluster) {
    }

    private static final Map<Path, Served> SERVED = new ConcurrentHashMap<>();

    static void register(Path path, Store store) {
        register(path, store, null);
    }

    static void register(Path path, Store store, ClusterServing cluster) {
        SERVED.put(key(path), new Served(store, new Schedules(store), cluster));
    }

    /** Stops the store's schedules (before its owner commits and closes it) and forgets it. */
    static void unregister(Path path) {
        Served served = SERVED.remove(key(path));
        if (served != null) {
            served.schedules().stopAll();
        }
    }

    /** The live store at {@code path}, lent to the caller (its close commits), or null. */
    static Store borrow(Path path) {
        Served served = SERVED.get(key(path));
        return served == null ? null : served.store().lend();
    }

    /**
     * The store served at {@code path}, not lent (for commands that only use what the server keeps in memory);
     * a usage error saying that {@code command} needs a server if this process does not serve it.
     */
    static Served requireServed(Path path, String command) {
        Served served = SERVED.get(key(path));
        if (served == null) {
            throw CommandFailure.usage(command + " needs a running server, and none serves " + path
                    + ": start one with: cairn serve " + path);
        }
        return served;
    }

    /** The cluster node of the store this process serves at {@code path}, or null (not served, or served alone). */
    static ClusterServing clusterOf(Path path) {
        Served served = SERVED.get(key(path));
        return served == null ? null : served.cluster();
    }

    private static Path key(Path path) {
        try {
            return path.toRealPath();
        } catch (IOException missing) {
            return path.toAbsolutePath().normalize();
        }
    }
}
