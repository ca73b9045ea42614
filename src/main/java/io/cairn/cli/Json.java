package io.cairn.cli;

/**
 * A small streaming JSON writer for the {@code --json} listings. Commas and nesting are tracked here,
 * so commands only say what to write. Every character outside printable ASCII is escaped, so the
 * output is valid JSON whatever encoding the terminal or pipe uses.
 */
final class Json {

    private static final char[] HEX = "0123456789abcdef".toCharArray();

    private final StringBuilder text = new StringBuilder();
    /** True until the first value of the innermost open object or array. */
    private boolean firstInContainer = true;
    /** True between a name and its value, which takes no comma. */
    private boolean afterName;

    Json beginObject() {
        beforeValue();
        text.append('{');
        firstInContainer = true;
        return this;
    }

    Json endObject() {
        text.append('}');
        firstInContainer = false;
        return this;
    }

    Json beginArray() {
        beforeValue();
        text.append('[');
        firstInContainer = true;
        return this;
    }

    Json endArray() {
        text.append(']');
        firstInContainer = false;
        return this;
    }

    Json name(String name) {
        beforeValue();
        quote(name, text);
        text.append(':');
        afterName = true;
        return this;
    }

    Json value(String value) {
        beforeValue();
        if (value == null) {
            text.append("null");
        } else {
            quote(value, text);
        }
        return this;
    }

    Json value(long value) {
        beforeValue();
        text.append(value);
        return this;
    }

    Json value(boolean value) {
        beforeValue();
        text.append(value);
        return this;
    }

    Json field(String name, String value) {
        return name(name).value(value);
    }

    Json field(String name, long value) {
        return name(name).value(value);
    }

    Json field(String name, boolean value) {
        return name(name).value(value);
    }

    @Override
    public String toString() {
        return text.toString();
    }

    private void beforeValue() {
        if (afterName) {
            afterName = false;
            return;
        }
        if (!firstInContainer) {
            text.append(',');
        }
        firstInContainer = false;
    }

    /** {@code value} as a JSON string literal, quotes included. */
    static String quote(String value) {
        StringBuilder out = new StringBuilder(value.length() + 2);
        quote(value, out);
        return out.toString();
    }

    private static void quote(String value, StringBuilder out) {
        out.append('"');
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                default -> {
                    if (c < 0x20 || c > 0x7e) {
                        out.append("\\u").append(HEX[c >> 12]).append(HEX[(c >> 8) & 0xf])
                                .append(HEX[(c >> 4) & 0xf]).append(HEX[c & 0xf]);
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        out.append('"');
    }
}
