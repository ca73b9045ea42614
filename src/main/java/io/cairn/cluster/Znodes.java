package io.cairn.cluster;

import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.TreeMap;

/**
 * Where a store's coordination state lives in ZooKeeper, and how znode data is encoded. The layout
 * (docs/CLUSTER.md) is:
 *
 * <pre>
 * /cairn/STORE_ID/members/NODE        ephemeral, one per live node; data: its attributes
 * /cairn/STORE_ID/locks/LOCK          ephemeral, one per held lock ("vdi/7" is "vdi:7"); data: node=NODE
 *                                     czxid = the lease's fencing token
 * /cairn/STORE_ID/elections/ROLE/...  Curator LeaderLatch candidates; data: the candidate's node name
 * </pre>
 *
 * Data is UTF-8 text, one {@code key=value} per line, keys sorted: readable with {@code zkCli.sh get}.
 */
final class Znodes {

    static final String ROOT = "/cairn";
    static final String MEMBERS = "members";
    static final String LOCKS = "locks";
    static final String ELECTIONS = "elections";
    /** The key naming the holder in a lock znode's data. */
    static final String NODE_KEY = "node";

    private Znodes() {
    }

    static String store(String storeId) {
        return ROOT + "/" + Names.storeId(storeId);
    }

    static String members(String storeId) {
        return store(storeId) + "/" + MEMBERS;
    }

    static String member(String storeId, String node) {
        return members(storeId) + "/" + Names.node(node);
    }

    static String locks(String storeId) {
        return store(storeId) + "/" + LOCKS;
    }

    static String lock(String storeId, String lockName) {
        return locks(storeId) + "/" + Names.lockSegment(lockName);
    }

    static String elections(String storeId) {
        return store(storeId) + "/" + ELECTIONS;
    }

    static String election(String storeId, String role) {
        return elections(storeId) + "/" + Names.role(role);
    }

    static byte[] encode(Map<String, String> values) {
        StringBuilder text = new StringBuilder();
        new TreeMap<>(values).forEach((key, value) -> text.append(key).append('=').append(value).append('\n'));
        return text.toString().getBytes(StandardCharsets.UTF_8);
    }

    /** The inverse of {@link #encode}; lines without '=' (written by something else) are skipped. */
    static Map<String, String> decode(byte[] data) {
        Map<String, String> values = new TreeMap<>();
        if (data == null) {
            return values;
        }
        for (String line : new String(data, StandardCharsets.UTF_8).split("\n")) {
            int equals = line.indexOf('=');
            if (equals > 0) {
                values.put(line.substring(0, equals), line.substring(equals + 1));
            }
        }
        return values;
    }
}
