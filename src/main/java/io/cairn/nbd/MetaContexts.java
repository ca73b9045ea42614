package io.cairn.nbd;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * The metadata contexts a server offers, and the query rules of NBD_OPT_LIST_META_CONTEXT and
 * NBD_OPT_SET_META_CONTEXT. Immutable; {@link #with} returns an extended copy.
 *
 * <p>Query rules (spec, "Metadata querying"): a query is {@code namespace:leaf}. When listing,
 * {@code namespace:} (empty leaf) is a wildcard for every context of that namespace; when setting, it
 * selects nothing. Otherwise a query selects the context of exactly that name. Queries naming an
 * unknown namespace or leaf are ignored, as the spec requires.
 */
public final class MetaContexts {

    /** {@code base:allocation}: holes and zeroes, straight from {@link NbdExport#blockStatus}. */
    public static final MetaContext BASE_ALLOCATION = new MetaContext() {
        @Override
        public String name() {
            return "base:allocation";
        }

        @Override
        public List<Extent> status(NbdExport export, long offsetBytes, long lengthBytes) {
            return export.blockStatus(offsetBytes, lengthBytes);
        }
    };

    private final List<MetaContext> contexts;

    private MetaContexts(List<MetaContext> contexts) {
        this.contexts = List.copyOf(contexts);
    }

    /** The contexts of the spec's {@code base:} namespace. */
    public static MetaContexts standard() {
        return new MetaContexts(List.of(BASE_ALLOCATION));
    }

    /** A copy that also offers {@code context}. */
    public MetaContexts with(MetaContext context) {
        Objects.requireNonNull(context, "context");
        String name = context.name();
        if (MetaContext.namespaceOf(name) == null || MetaContext.namespaceOf(name).isEmpty()) {
            throw new IllegalArgumentException("context name needs a namespace and a colon: " + name);
        }
        for (MetaContext existing : contexts) {
            if (existing.name().equals(name)) {
                throw new IllegalArgumentException("context registered twice: " + name);
            }
        }
        List<MetaContext> extended = new ArrayList<>(contexts);
        extended.add(context);
        return new MetaContexts(extended);
    }

    /** Every registered context. */
    public List<MetaContext> all() {
        return contexts;
    }

    /** Contexts an NBD_OPT_LIST_META_CONTEXT query matches on the export. */
    List<MetaContext> matchForList(String query, NbdExport export) {
        String namespace = MetaContext.namespaceOf(query);
        boolean wildcard = query.length() == namespace.length() + 1;
        List<MetaContext> matches = new ArrayList<>();
        for (MetaContext context : contexts) {
            boolean matches_ = wildcard
                    ? namespace.equals(MetaContext.namespaceOf(context.name()))
                    : context.name().equals(query);
            if (matches_ && context.availableFor(export)) {
                matches.add(context);
            }
        }
        return matches;
    }

    /** The context an NBD_OPT_SET_META_CONTEXT query selects on the export, or null. */
    MetaContext matchForSet(String query, NbdExport export) {
        for (MetaContext context : contexts) {
            if (context.name().equals(query) && context.availableFor(export)) {
                return context;
            }
        }
        return null;
    }

    /** Context ids are 1-based positions in the registry: unique, stable, and never the reserved 0. */
    int idOf(MetaContext context) {
        return contexts.indexOf(context) + 1;
    }
}
