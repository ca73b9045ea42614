package io.cairn.io;

import java.nio.file.Path;

/**
 * A second process for {@link StoreFileLockTest}: {@code StoreFileLockChild PATH exclusive|shared hold|try}.
 * "hold" takes the lock, prints {@code HELD}, and keeps it until stdin closes. "try" prints
 * {@code ACQUIRED} or {@code LOCKED <message>} and exits.
 */
public final class StoreFileLockChild {

    public static void main(String[] args) throws Exception {
        Path path = Path.of(args[0]);
        boolean shared = args[1].equals("shared");
        boolean hold = args[2].equals("hold");
        try (StoreFileLock lock = StoreFileLock.acquire(path, shared)) {
            if (hold) {
                System.out.println("HELD");
                System.out.flush();
                while (System.in.read() >= 0) {
                    // keep the lock until the parent closes our stdin or kills us
                }
            } else {
                System.out.println("ACQUIRED");
            }
        } catch (StorageException e) {
            System.out.println(e.code() + " " + e.getMessage());
        }
    }
}
