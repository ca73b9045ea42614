package io.cairn.volume;

import io.cairn.format.SnapshotRecord;

import java.nio.charset.StandardCharsets;
import java.util.regex.Pattern;

/** What makes a valid VDI name and snapshot label, with messages that say why one is not. */
public final class Names {

    private Names() {
    }

    public static final int MAX_NAME_CHARS = 64;
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9._+-]*");
    private static final Pattern DIGITS = Pattern.compile("[0-9]+");

    public static void checkVdiName(String name) {
        if (name == null || name.isEmpty()) {
            throw new IllegalArgumentException("a disk name must not be empty");
        }
        if (name.length() > MAX_NAME_CHARS) {
            throw new IllegalArgumentException("disk name '" + name + "' is longer than " + MAX_NAME_CHARS + " characters");
        }
        if (!NAME.matcher(name).matches()) {
            throw new IllegalArgumentException("disk name '" + name + "' may only contain letters, digits and . _ + -"
                    + " and must start with a letter, digit or _");
        }
    }

    public static void checkLabel(String label) {
        if (label == null) {
            throw new IllegalArgumentException("a label must not be null");
        }
        if (label.getBytes(StandardCharsets.UTF_8).length > SnapshotRecord.MAX_LABEL_BYTES) {
            throw new IllegalArgumentException("label '" + label + "' is longer than " + SnapshotRecord.MAX_LABEL_BYTES
                    + " bytes");
        }
        if (DIGITS.matcher(label).matches()) {
            throw new IllegalArgumentException("label '" + label + "' is all digits, which would read as a snapshot id");
        }
        if (label.contains("@") || label.contains("/") || label.chars().anyMatch(Character::isISOControl)) {
            throw new IllegalArgumentException("label '" + label + "' must not contain '@', '/' or control characters");
        }
    }

    /** True if the part after '@' names a snapshot by id. */
    static boolean isSnapshotId(String text) {
        return DIGITS.matcher(text).matches();
    }
}
