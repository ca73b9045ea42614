package io.cairn.tree;

/** A tree's root block and height, updated when a write shadows the root. */
public final class RootRef {
    private long root;
    private final int height;

    public RootRef(long root, int height) {
        this.root = root;
        this.height = height;
    }

    public long root() {
        return root;
    }

    public int height() {
        return height;
    }

    void setRoot(long newRoot) {
        this.root = newRoot;
    }

    @Override
    public String toString() {
        return "root " + root + " height " + height;
    }
}
