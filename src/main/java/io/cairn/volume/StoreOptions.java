package io.cairn.volume;

import io.cairn.format.Layout;

/**
 * How a store is opened.
 *
 * @param nodeCacheBytes memory for cached radix nodes (64 MiB covers a 32 GiB working set)
 * @param readOnly       refuse every change
 * @param maxRefcount    counter value beyond which sharing copies; the format's limit unless a test lowers it
 */
public record StoreOptions(long nodeCacheBytes, boolean readOnly, int maxRefcount) {

    public static final long DEFAULT_NODE_CACHE_BYTES = 64L << 20;

    public static StoreOptions defaults() {
        return new StoreOptions(DEFAULT_NODE_CACHE_BYTES, false, Layout.MAX_REFCOUNT);
    }

    public StoreOptions withReadOnly(boolean value) {
        return new StoreOptions(nodeCacheBytes, value, maxRefcount);
    }

    public StoreOptions withNodeCacheBytes(long value) {
        return new StoreOptions(value, readOnly, maxRefcount);
    }

    public StoreOptions withMaxRefcount(int value) {
        return new StoreOptions(nodeCacheBytes, readOnly, value);
    }
}
