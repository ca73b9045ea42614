package io.cairn.cluster;

import java.util.Map;
import java.util.TreeMap;

/**
 * A live node of a store's cluster, as it registered itself.
 *
 * @param name       the node's name, unique among live members
 * @param attributes what it published about itself (e.g. {@code nbd}, {@code admin}, {@code pid}), sorted by key
 */
public record Member(String name, Map<String, String> attributes) {

    public Member {
        attributes = java.util.Collections.unmodifiableMap(new TreeMap<>(attributes));
    }
}
