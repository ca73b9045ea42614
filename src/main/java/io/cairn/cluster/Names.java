package io.cairn.cluster;

import java.util.regex.Pattern;

/**
 * The names the coordination layer accepts, checked before anything reaches ZooKeeper, so bad input
 * gets a message that says what is allowed rather than a ZooKeeper path error.
 *
 * <p>Every name becomes one znode path segment (lock names after {@link #lockSegment}), so none may
 * contain {@code /} there, and none may be {@code .} or {@code ..}; all are ASCII so a name reads the
 * same in every log and terminal.
 */
public final class Names {

    /** Node names: like a host name label, plus '_' and '.'. */
    private static final Pattern NODE = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,62}");
    /** One segment of a lock name, a role or a store id. */
    private static final Pattern SEGMENT = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,62}");
    /** Attribute keys of a member: lower-case words joined by '-' or '.'. */
    private static final Pattern ATTRIBUTE_KEY = Pattern.compile("[a-z][a-z0-9.-]{0,62}");
    /** One server of an ensemble: a host name, IPv4 address or bracketed IPv6 address, and an optional port. */
    private static final Pattern SERVER = Pattern.compile("(?:[A-Za-z0-9][A-Za-z0-9.-]*|\\[[0-9A-Fa-f:.]+\\])(?::(\\d{1,5}))?");
    /** Lock names are up to this many segments ("vdi/7", "extent/data/12"). */
    private static final int MAX_LOCK_SEGMENTS = 4;
    /** Separator of lock-name segments inside the znode name; never allowed in a segment. */
    static final char LOCK_SEGMENT_SEPARATOR = ':';

    private Names() {
    }

    /** {@code name} if it is a valid node name; else an IllegalArgumentException saying what is allowed. */
    public static String node(String name) {
        if (name == null || !NODE.matcher(name).matches()) {
            throw new IllegalArgumentException("invalid node name " + quoted(name)
                    + ": use 1 to 63 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit");
        }
        return name;
    }

    /** {@code name} if it is a valid lock name such as {@code vdi/7} or {@code gc}. */
    public static String lock(String name) {
        if (name == null || name.isEmpty() || name.startsWith("/") || name.endsWith("/")) {
            throw invalidLock(name);
        }
        String[] segments = name.split("/", -1);
        if (segments.length > MAX_LOCK_SEGMENTS) {
            throw invalidLock(name);
        }
        for (String segment : segments) {
            if (!SEGMENT.matcher(segment).matches()) {
                throw invalidLock(name);
            }
        }
        return name;
    }

    /** {@code role} if it is a valid election role such as {@code gc}. */
    public static String role(String role) {
        if (role == null || !SEGMENT.matcher(role).matches()) {
            throw new IllegalArgumentException("invalid role " + quoted(role)
                    + ": use 1 to 63 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit");
        }
        return role;
    }

    /** {@code id} if it can name a store's coordination root (the store's UUID in practice). */
    public static String storeId(String id) {
        if (id == null || !SEGMENT.matcher(id).matches()) {
            throw new IllegalArgumentException("invalid store id " + quoted(id)
                    + ": use 1 to 63 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit");
        }
        return id;
    }

    /** {@code connectString} if it is a ZooKeeper ensemble, {@code HOST[:PORT][,HOST[:PORT]...]} (port 2181 if left out). */
    public static String connectString(String connectString) {
        String problem = null;
        if (connectString == null || connectString.isBlank()) {
            problem = "none given";
        } else {
            for (String server : connectString.split(",", -1)) {
                java.util.regex.Matcher matcher = SERVER.matcher(server.strip());
                if (!matcher.matches()) {
                    problem = "'" + server.strip() + "' is not HOST:PORT";
                    break;
                }
                if (matcher.group(1) != null && (Integer.parseInt(matcher.group(1)) < 1 || Integer.parseInt(matcher.group(1)) > 65535)) {
                    problem = "port " + matcher.group(1) + " is out of range";
                    break;
                }
            }
        }
        if (problem != null) {
            throw new IllegalArgumentException("invalid ZooKeeper address " + quoted(connectString) + ": " + problem
                    + " (expected HOST:PORT[,HOST:PORT...])");
        }
        return connectString.strip();
    }

    /** Checks one member attribute: a lower-case key, and a value on one line. */
    public static void attribute(String key, String value) {
        if (key == null || !ATTRIBUTE_KEY.matcher(key).matches()) {
            throw new IllegalArgumentException("invalid attribute name " + quoted(key)
                    + ": use lower-case letters, digits, '.' and '-', starting with a letter");
        }
        if (value == null || value.chars().anyMatch(c -> c < 0x20 || c == 0x7f)) {
            throw new IllegalArgumentException("invalid value for attribute " + key + ": " + quoted(value)
                    + " (one line of printable text)");
        }
    }

    /** The znode name of a lock: its segments joined by {@link #LOCK_SEGMENT_SEPARATOR}. */
    static String lockSegment(String lockName) {
        return lock(lockName).replace('/', LOCK_SEGMENT_SEPARATOR);
    }

    /** The lock name a znode name stands for; the inverse of {@link #lockSegment}. */
    static String lockFromSegment(String segment) {
        return segment.replace(LOCK_SEGMENT_SEPARATOR, '/');
    }

    private static IllegalArgumentException invalidLock(String name) {
        return new IllegalArgumentException("invalid lock name " + quoted(name) + ": use 1 to " + MAX_LOCK_SEGMENTS
                + " segments joined by '/' (e.g. vdi/7), each 1 to 63 characters from A-Z a-z 0-9 . _ -,"
                + " starting with a letter or digit");
    }

    private static String quoted(String text) {
        return text == null ? "(none)" : "'" + text + "'";
    }
}
