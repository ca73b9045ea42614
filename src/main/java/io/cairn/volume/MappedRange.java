package io.cairn.volume;

/** A run of a volume's address space that is either mapped to blocks or a hole (reads as zeros). */
public record MappedRange(long offsetBytes, long lengthBytes, boolean mapped) {
}
