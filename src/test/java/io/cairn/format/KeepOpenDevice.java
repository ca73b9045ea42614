package io.cairn.format;

import io.cairn.io.ForwardingBlockDevice;
import io.cairn.io.MemoryBlockDevice;

/** A memory device that stays readable after a store closes it, so a test can keep the image. */
final class KeepOpenDevice extends ForwardingBlockDevice {

    final MemoryBlockDevice memory;

    KeepOpenDevice() {
        this(new MemoryBlockDevice());
    }

    private KeepOpenDevice(MemoryBlockDevice memory) {
        super(memory);
        this.memory = memory;
    }

    @Override
    public void close() {
    }
}
