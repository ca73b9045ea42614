package io.cairn.nbd;

/** The client asked for an export that the catalog does not have. */
public class NoSuchExportException extends Exception {

    private final String exportName;

    public NoSuchExportException(String exportName) {
        super("no such export: '" + exportName + "'");
        this.exportName = exportName;
    }

    public String exportName() {
        return exportName;
    }
}
