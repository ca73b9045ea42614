package io.cairn.volume;

import io.cairn.format.Layout;

/**
 * How a store is opened.
 *
 * @param nodeCacheBytes memory for cached radix nodes (64 MiB covers a 32 GiB working set)
 * @param readOnly       refuse every change
 * @param maxRefcount    counter value beyond which sharing copies; the format's limit unless a test lowers it
 * @param sketchWorker   compute and store the space sketches of new snapshots in a background thread (a
 *                       server wants this; short-lived commands and deterministic tests do not: a snapshot
 *                       without a stored sketch simply gets one computed when a report needs it)
 */
public record StoreOptions(long nodeCacheBytes, boolean readOnly, int maxRefcount, boolean sketchWorker) {

    public static final long DEFAULT_NODE_CACHE_BYTES = 64L << 20;

    public StoreOptions(long nodeCacheBytes, boolean readOnly, int maxRefcount) {
        this(nodeCacheBytes, readOnly, maxRefcount, false);
    }

    public static StoreOptions defaults() {
        return new StoreOptions(DEFAULT_NODE_CACHE_BYTES, false, Layout.MAX_REFCOUNT, false);
    }

    public StoreOptions withReadOnly(boolean value) {
        return new StoreOptions(nodeCacheBytes, value, maxRefcount, sketchWorker);
    }

    public StoreOptions withNodeCacheBytes(long value) {
        return new StoreOptions(value, readOnly, maxRefcount, sketchWorker);
    }

    public StoreOptions withMaxRefcount(int value) {
        return new StoreOptions(nodeCacheBytes, readOnly, value, sketchWorker);
    }

    public StoreOptions withSketchWorker(boolean value) {
        return new StoreOptions(nodeCacheBytes, readOnly, maxRefcount, value);
    }
}
