package io.cairn.nbd;

import java.util.List;

/**
 * Metadata contexts whose names carry a parameter after a fixed prefix, such as
 * {@code cairn:changed-since:SNAP}: one context per value, resolved when a client names it. Register
 * with {@link MetaContexts#with(MetaContextFamily)}.
 *
 * <p>Called concurrently from handshake threads; implementations must be thread-safe.
 */
public interface MetaContextFamily {

    /** {@code namespace:leaf-prefix}, e.g. {@code cairn:changed-since:}; a name is the prefix and a parameter. */
    String prefix();

    /**
     * The context {@code name} (which starts with {@link #prefix()}) stands for on {@code export}, or null
     * if its parameter names nothing there (the query is then ignored, as the spec requires). Contexts
     * for the same name must be equal.
     */
    MetaContext resolve(String name, NbdExport export);

    /** Contexts to offer when a client lists the namespace or everything; may be empty. */
    List<MetaContext> listFor(NbdExport export);
}
