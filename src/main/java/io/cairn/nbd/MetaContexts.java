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
    private final List<MetaContextFamily> families;

    private MetaContexts(List<MetaContext> contexts, List<MetaContextFamily> families) {
        this.contexts = List.copyOf(contexts);
        this.families = List.copyOf(families);
    }

    /** The contexts of the spec's {@code base:} namespace. */
    public static MetaContexts standard() {
        return new MetaContexts(List.of(BASE_ALLOCATION), List.of());
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
        return new MetaContexts(extended, families);
    }

    /** A copy that also offers the contexts of {@code family}. */
    public MetaContexts with(MetaContextFamily family) {
        Objects.requireNonNull(family, "family");
        String namespace = MetaContext.namespaceOf(family.prefix());
        if (namespace == null || namespace.isEmpty()) {
            throw new IllegalArgumentException("context prefix needs a namespace and a colon: " + family.prefix());
        }
        List<MetaContextFamily> extended = new ArrayList<>(families);
        extended.add(family);
        return new MetaContexts(contexts, extended);
    }

    /** Every registered context (families not included). */
    public List<MetaContext> all() {
        return contexts;
    }

    /** Every context offered on the export: the registered ones and those families list for it. */
    List<MetaContext> allFor(NbdExport export) {
        List<MetaContext> offered = new ArrayList<>();
        for (MetaContext context : contexts) {
            if (context.availableFor(export)) {
                offered.add(context);
            }
        }
        for (MetaContextFamily family : families) {
            offered.addAll(family.listFor(export));
        }
        return offered;
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
        for (MetaContextFamily family : families) {
            if (wildcard && namespace.equals(MetaContext.namespaceOf(family.prefix()))) {
                matches.addAll(family.listFor(export));
            } else if (!wildcard && query.startsWith(family.prefix())) {
                MetaContext context = family.resolve(query, export);
                if (context != null) {
                    matches.add(context);
                }
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
        for (MetaContextFamily family : families) {
            if (query.startsWith(family.prefix()) && query.length() > family.prefix().length()) {
                MetaContext context = family.resolve(query, export);
                if (context != null) {
                    return context;
                }
            }
        }
        return null;
    }

    /**
     * Context ids of registered contexts are 1-based positions in the registry: unique, stable, and
     * never the reserved 0. A context from a family has none here (0); the handshake numbers those
     * from {@link #firstFamilyId()} on.
     */
    int idOf(MetaContext context) {
        return contexts.indexOf(context) + 1;
    }

    /** The first id the handshake may give a context from a family. */
    int firstFamilyId() {
        return contexts.size() + 1;
    }
}
