package io.cairn.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Families of parameterised contexts in the registry's query rules. */
class MetaContextFamilyTest {

    private record Numbered(String name) implements MetaContext {
        @Override
        public List<Extent> status(NbdExport export, long offsetBytes, long lengthBytes) {
            return List.of(new Extent(lengthBytes, 0));
        }
    }

    /** test:n:K for K in 1..3 exists; anything else does not. */
    private static final MetaContextFamily NUMBERS = new MetaContextFamily() {
        @Override
        public String prefix() {
            return "test:n:";
        }

        @Override
        public MetaContext resolve(String name, NbdExport export) {
            return List.of("test:n:1", "test:n:2", "test:n:3").contains(name) ? new Numbered(name) : null;
        }

        @Override
        public List<MetaContext> listFor(NbdExport export) {
            return List.of(new Numbered("test:n:1"), new Numbered("test:n:2"), new Numbered("test:n:3"));
        }
    };

    private final MetaContexts contexts = MetaContexts.standard().with(NUMBERS);

    @Test
    void setResolvesNamesAndIgnoresUnknownOnes() {
        assertEquals(new Numbered("test:n:2"), contexts.matchForSet("test:n:2", null));
        assertNull(contexts.matchForSet("test:n:9", null));
        assertNull(contexts.matchForSet("test:n:", null), "an empty parameter selects nothing");
        assertEquals(MetaContexts.BASE_ALLOCATION, contexts.matchForSet("base:allocation", null));
        assertEquals(0, contexts.idOf(new Numbered("test:n:2")), "numbered by the handshake");
        assertEquals(2, contexts.firstFamilyId());
    }

    @Test
    void listingTheNamespaceOrEverythingOffersTheFamily() {
        assertEquals(3, contexts.matchForList("test:", null).size());
        assertEquals(List.of(new Numbered("test:n:3")), contexts.matchForList("test:n:3", null));
        assertEquals(List.of(), contexts.matchForList("test:n:7", null));
        assertEquals(4, contexts.allFor(null).size());
        assertEquals(List.of(MetaContexts.BASE_ALLOCATION), contexts.matchForList("base:", null));
    }

    @Test
    void aFamilyNeedsANamespace() {
        MetaContextFamily bad = new MetaContextFamily() {
            @Override
            public String prefix() {
                return "nonamespace";
            }

            @Override
            public MetaContext resolve(String name, NbdExport export) {
                return null;
            }

            @Override
            public List<MetaContext> listFor(NbdExport export) {
                return List.of();
            }
        };
        assertThrows(IllegalArgumentException.class, () -> MetaContexts.standard().with(bad));
    }
}
