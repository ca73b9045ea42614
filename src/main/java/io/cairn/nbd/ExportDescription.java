package io.cairn.nbd;

import java.util.Objects;

/**
 * What NBD_OPT_LIST tells a client about one export.
 *
 * @param name        the name a client passes to connect; UTF-8, at most 4096 bytes, no NUL
 * @param description free text for humans, may be empty
 */
public record ExportDescription(String name, String description) {

    public ExportDescription {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(description, "description");
    }
}
