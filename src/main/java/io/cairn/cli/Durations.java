package io.cairn.cli;

import java.time.Duration;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine;

/** Intervals as people type and read them: {@code 10ms}, {@code 250us}, {@code 2s}, {@code 5m}, {@code 1h}. */
final class Durations {

    private static final Pattern DURATION = Pattern.compile("([0-9]{1,12})\\s*(us|ms|s|m|h)");
    private static final String HOW = "write a whole number followed by us, ms, s, m or h, for example 10ms or 5m";

    private Durations() {
    }

    static Duration parse(String text) {
        if (text == null || text.isBlank()) {
            throw new IllegalArgumentException("an interval must not be empty; " + HOW);
        }
        Matcher matcher = DURATION.matcher(text.strip().toLowerCase(Locale.ROOT));
        if (!matcher.matches()) {
            throw new IllegalArgumentException("'" + text + "' is not an interval; " + HOW);
        }
        long amount = Long.parseLong(matcher.group(1));
        return switch (matcher.group(2)) {
            case "us" -> Duration.ofNanos(amount * 1000);
            case "ms" -> Duration.ofMillis(amount);
            case "s" -> Duration.ofSeconds(amount);
            case "m" -> Duration.ofMinutes(amount);
            default -> Duration.ofHours(amount);
        };
    }

    /** The interval in the largest unit that divides it: {@code 10ms}, {@code 2s}, {@code 250us}. */
    static String human(Duration duration) {
        long nanos = duration.toNanos();
        long[] unitNanos = {3_600_000_000_000L, 60_000_000_000L, 1_000_000_000L, 1_000_000L, 1_000L};
        String[] units = {"h", "m", "s", "ms", "us"};
        for (int i = 0; i < units.length; i++) {
            if (nanos >= unitNanos[i] && nanos % unitNanos[i] == 0) {
                return nanos / unitNanos[i] + units[i];
            }
        }
        return nanos + "ns";
    }

    /** Lets picocli options take intervals; a bad one becomes a usage error naming the option. */
    static final class Converter implements CommandLine.ITypeConverter<Duration> {
        @Override
        public Duration convert(String value) {
            try {
                return parse(value);
            } catch (IllegalArgumentException problem) {
                throw new CommandLine.TypeConversionException(problem.getMessage());
            }
        }
    }
}
