package io.cairn.space;

import java.io.IOException;

/** A diff stream that is corrupt, truncated, or not a diff stream, with the byte where it went wrong. */
public final class DiffStreamException extends IOException {

    public DiffStreamException(String message) {
        super(message);
    }

    public DiffStreamException(String message, Throwable cause) {
        super(message, cause);
    }
}
