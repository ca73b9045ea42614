package io.cairn.nbd;

import java.util.List;
import java.util.Optional;

/**
 * The exports a server offers. Called concurrently by every connection's handshake.
 */
public interface ExportCatalog {

    /** Exports to advertise in answer to NBD_OPT_LIST. */
    List<ExportDescription> list();

    /**
     * Opens an export for one connection; the connection closes it when it ends.
     *
     * @throws NoSuchExportException if there is no export by that name
     */
    NbdExport open(String name) throws NoSuchExportException;

    /** The export a client gets when it asks for the empty name, if any. */
    default Optional<String> defaultExportName() {
        return Optional.empty();
    }

    /** Human-readable description of one export; by default looked up in {@link #list()}. */
    default String description(String name) {
        for (ExportDescription export : list()) {
            if (export.name().equals(name)) {
                return export.description();
            }
        }
        return "";
    }
}
