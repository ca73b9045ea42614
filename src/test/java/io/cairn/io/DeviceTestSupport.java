package io.cairn.io;

import java.nio.ByteBuffer;
import java.util.Random;

/** Small helpers shared by the device tests. */
final class DeviceTestSupport {

    private DeviceTestSupport() {
    }

    static byte[] randomBytes(Random random, int lengthBytes) {
        byte[] bytes = new byte[lengthBytes];
        random.nextBytes(bytes);
        return bytes;
    }

    static byte[] filled(int lengthBytes, int value) {
        byte[] bytes = new byte[lengthBytes];
        java.util.Arrays.fill(bytes, (byte) value);
        return bytes;
    }

    static byte[] read(BlockDevice device, long offsetBytes, int lengthBytes) {
        ByteBuffer buffer = ByteBuffer.allocate(lengthBytes);
        device.read(offsetBytes, buffer);
        if (buffer.hasRemaining()) {
            throw new AssertionError("read left " + buffer.remaining() + " bytes unfilled");
        }
        return buffer.array();
    }

    static void write(BlockDevice device, long offsetBytes, byte[] data) {
        ByteBuffer buffer = ByteBuffer.wrap(data);
        device.write(offsetBytes, buffer);
        if (buffer.hasRemaining()) {
            throw new AssertionError("write left " + buffer.remaining() + " bytes unwritten");
        }
    }
}
