package io.cairn.nbd;

import java.util.Optional;

/** The client asked for an export that the catalog does not have, or cannot open now. */
public class NoSuchExportException extends Exception {

    private final String exportName;
    private final String reason;

    public NoSuchExportException(String exportName) {
        super("no such export: '" + exportName + "'");
        this.exportName = exportName;
        this.reason = null;
    }

    /** @param reason why the export cannot be opened, for the client's error reply */
    public NoSuchExportException(String exportName, String reason) {
        super(reason);
        this.exportName = exportName;
        this.reason = reason;
    }

    public String exportName() {
        return exportName;
    }

    /** Why the export cannot be opened, if the catalog said more than that it has no such export. */
    public Optional<String> reason() {
        return Optional.ofNullable(reason);
    }
}
