package io.cairn.nbd;

import io.cairn.io.StorageException;

/** Maps failures of an export call onto the NBD error values a client understands. */
final class NbdErrors {

    private NbdErrors() {
    }

    static int errorFor(Throwable failure) {
        return switch (failure) {
            case FastZeroUnsupportedException ignored -> NbdConstants.ENOTSUP;
            case StorageException storage -> switch (storage.code()) {
                case IO, CORRUPT -> NbdConstants.EIO;
                case NO_SPACE -> NbdConstants.ENOSPC;
                case READ_ONLY, LOCKED -> NbdConstants.EPERM;
                case CLOSED -> NbdConstants.ESHUTDOWN;
            };
            case IllegalArgumentException ignored -> NbdConstants.EINVAL;
            case OutOfMemoryError ignored -> NbdConstants.ENOMEM;
            default -> NbdConstants.EIO;
        };
    }

    static String describe(Throwable failure) {
        String message = failure.getMessage();
        return message == null ? failure.getClass().getSimpleName() : message;
    }
}
