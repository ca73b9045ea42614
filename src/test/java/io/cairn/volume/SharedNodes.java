package io.cairn.volume;

import io.cairn.io.FileBlockDevice;

import java.nio.file.Path;
import java.time.Duration;

/** Node stores of one process serving one store file together, as tests open them (Store design note 10). */
public final class SharedNodes {

    private SharedNodes() {
    }

    /**
     * Node {@code id} of the store in {@code storeFile}, attached to the shared counters in {@code countersFile},
     * with the default options and a collection barrier that waits {@code barrierWait} for the other nodes.
     */
    public static Store open(Path storeFile, Path countersFile, int id, Duration barrierWait) {
        return open(storeFile, countersFile, id, barrierWait, StoreOptions.defaults());
    }

    /** {@link #open(Path, Path, int, Duration)} with {@code options}. */
    public static Store open(Path storeFile, Path countersFile, int id, Duration barrierWait, StoreOptions options) {
        return Store.openShared(FileBlockDevice.open(storeFile, false), null, options, id, countersFile, barrierWait);
    }
}
