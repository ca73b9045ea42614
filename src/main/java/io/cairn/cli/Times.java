package io.cairn.cli;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;

/** Timestamps as the CLI prints them: ISO-8601 in UTC to the second, so every one has the same width. */
final class Times {

    private static final DateTimeFormatter ISO_SECONDS =
            DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss'Z'").withZone(ZoneOffset.UTC);

    private Times() {
    }

    static String iso(long epochMillis) {
        return ISO_SECONDS.format(Instant.ofEpochMilli(epochMillis));
    }
}
