package io.cairn.nbd;

import java.util.List;

/**
 * A metadata context a client can select with NBD_OPT_SET_META_CONTEXT and query with
 * NBD_CMD_BLOCK_STATUS, such as {@code base:allocation}. Register new ones with
 * {@link MetaContexts#with(MetaContext)}.
 *
 * <p>Called concurrently from request threads; implementations must be thread-safe.
 */
public interface MetaContext {

    /** Full name, {@code namespace:leaf}; UTF-8, at most 4096 bytes. */
    String name();

    /** Whether the context can be selected on this export; lets a context apply to some exports only. */
    default boolean availableFor(NbdExport export) {
        return true;
    }

    /**
     * Status of consecutive extents starting at {@code offsetBytes}, with flags defined by this
     * context. Same contract as {@link NbdExport#blockStatus}: non-empty, and may cover more or less
     * than asked. The range is already validated to lie inside the export.
     */
    List<Extent> status(NbdExport export, long offsetBytes, long lengthBytes);

    /** The namespace part of a context name or query: everything before the first colon. */
    static String namespaceOf(String name) {
        int colon = name.indexOf(':');
        return colon < 0 ? null : name.substring(0, colon);
    }
}
