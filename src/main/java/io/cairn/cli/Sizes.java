package io.cairn.cli;

import java.math.BigInteger;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine;

/**
 * Sizes as people type and read them: {@code 512}, {@code 64M}, {@code 10GiB}, {@code 1 TB}. Every
 * suffix is a power of 1024 (disks are sized in binary units), whether or not it is written "iB".
 */
final class Sizes {

    private static final Pattern SIZE = Pattern.compile("([0-9]+)\\s*(?:([KMGTkmgt])(?:i?[Bb])?|[Bb])?");
    private static final String SUFFIXES = "KMGT";
    private static final String[] UNITS = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    private static final String HOW = "write a whole number of bytes, optionally followed by K, M, G or T"
            + " (powers of 1024), for example 64G or 512M";

    private Sizes() {
    }

    /** Parses a size; the message of the exception says what is wrong and how to write it instead. */
    static long parseBytes(String text) {
        if (text == null || text.isBlank()) {
            throw new IllegalArgumentException("a size must not be empty; " + HOW);
        }
        String trimmed = text.strip();
        if (trimmed.startsWith("-")) {
            throw new IllegalArgumentException("'" + text + "' is not a size: sizes cannot be negative");
        }
        Matcher matcher = SIZE.matcher(trimmed);
        if (!matcher.matches()) {
            throw new IllegalArgumentException("'" + text + "' is not a size; " + HOW);
        }
        int shiftBits = matcher.group(2) == null ? 0
                : 10 * (SUFFIXES.indexOf(Character.toUpperCase(matcher.group(2).charAt(0))) + 1);
        // BigInteger so that no number of digits can wrap around into a plausible size.
        BigInteger bytes = new BigInteger(matcher.group(1)).shiftLeft(shiftBits);
        if (bytes.bitLength() > 63) {
            throw new IllegalArgumentException("'" + text + "' is too large: sizes are limited to 2^63 - 1 bytes");
        }
        return bytes.longValueExact();
    }

    /** The size in the largest binary unit it reaches: {@code 10 GiB}, {@code 1.5 MiB}, {@code 512 B}. */
    static String human(long bytes) {
        if (bytes < 1024) {
            return bytes + " B";
        }
        int unit = (63 - Long.numberOfLeadingZeros(bytes)) / 10;
        long unitBytes = 1L << (10 * unit);
        if (bytes % unitBytes == 0) {
            return bytes / unitBytes + " " + UNITS[unit];
        }
        return String.format(Locale.ROOT, "%.1f %s", (double) bytes / unitBytes, UNITS[unit]);
    }

    /** Lets picocli options take sizes; a bad one becomes a usage error naming the option. */
    static final class Converter implements CommandLine.ITypeConverter<Long> {
        @Override
        public Long convert(String value) {
            try {
                return parseBytes(value);
            } catch (IllegalArgumentException problem) {
                throw new CommandLine.TypeConversionException(problem.getMessage());
            }
        }
    }
}
