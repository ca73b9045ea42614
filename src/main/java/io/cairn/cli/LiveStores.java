package io.cairn.cli;

import io.cairn.volume.Store;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Stores this process serves. A command run by the admin server for a client asks here first and
 * borrows the live store instead of opening the file (which the server holds locked).
 */
final class LiveStores {

    private LiveStores() {
    }

    private static final Map<Path, Store> SERVED = new ConcurrentHashMap<>();

    static void register(Path path, Store store) {
        SERVED.put(key(path), store);
    }

    static void unregister(Path path) {
        SERVED.remove(key(path));
    }

    /** The live store at {@code path}, lent to the caller (its close commits), or null. */
    static Store borrow(Path path) {
        Store store = SERVED.get(key(path));
        return store == null ? null : store.lend();
    }

    private static Path key(Path path) {
        try {
            return path.toRealPath();
        } catch (IOException missing) {
            return path.toAbsolutePath().normalize();
        }
    }
}
