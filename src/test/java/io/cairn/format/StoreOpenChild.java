package io.cairn.format;

import io.cairn.io.StorageException;
import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;

import java.nio.file.Path;

/**
 * A second process for {@link BadStoreFileTest}: {@code StoreOpenChild PATH [read-only]} opens the
 * store, prints {@code OPENED} or {@code <code> <message>}, and exits.
 */
public final class StoreOpenChild {

    public static void main(String[] args) {
        boolean readOnly = args.length > 1 && args[1].equals("read-only");
        try (Store store = Store.openFile(Path.of(args[0]), StoreOptions.defaults().withReadOnly(readOnly))) {
            System.out.println("OPENED " + store.listVdis(false).size());
        } catch (StorageException e) {
            System.out.println(e.code() + " " + e.getMessage());
        }
    }
}
