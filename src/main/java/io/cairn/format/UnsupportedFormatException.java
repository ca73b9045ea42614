package io.cairn.format;

/** The store is valid but written with features or a version this code does not support. */
public class UnsupportedFormatException extends RuntimeException {
    public UnsupportedFormatException(String message) {
        super(message);
    }
}
