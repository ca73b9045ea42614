package io.cairn.io;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Objects;
import java.util.Random;

/**
 * A {@link BlockDevice} that loses power on command: the disk with a volatile write cache that
 * {@link BlockDevice} describes, made adversarial for crash tests.
 *
 * <p>Design notes.
 * <ol>
 *   <li>Two images: the <em>durable</em> image (what the platters hold) and the <em>current</em> image
 *       (what reads see). A write goes to the current image and to the ordered list of pending writes,
 *       the volatile cache; {@link #flush()} applies the pending writes to the durable image in order
 *       and empties the list. Invariant: until a crash, the current image equals the durable image with
 *       every pending write applied in order.</li>
 *   <li>{@link #crash(Random)} is the power cut. It returns a new durable image in which each pending
 *       write independently was dropped, applied, or torn (a random subset of its 512-byte sectors
 *       applied), or, with {@link #misdirectProbability(double) a small probability}, landed whole at a
 *       wrong block-aligned offset. Fates are drawn in write order from the given {@link Random} only,
 *       so a seed replays a crash exactly. Later surviving writes overwrite earlier ones, as the disk
 *       would; a dropped later write may reveal an earlier one.</li>
 *   <li>{@link #crashAtWrite(long)} arms a crash: the k-th write (counted from 1 over the device's
 *       life) is still in flight when the power goes, so it joins the pending writes and may land,
 *       tear or vanish; it and every later operation throw {@link SimulatedCrashException}.</li>
 *   <li>{@link #crash(Random)} does not consume the pending writes, so a test may draw several
 *       outcomes of one crash. After a crash only {@link #crash(Random)}, {@link #close()} and the
 *       inspection methods work.</li>
 *   <li>{@link #discard} keeps the old content: callers must not rely on discarded data reading as
 *       zeros, and this device makes them see the other legal outcome.</li>
 *   <li>{@link #flipBit} rots one bit of the durable image, as media decay would; a pending write over
 *       the same byte still wins in the current image.</li>
 * </ol>
 *
 * <p>Threading: all methods are synchronized; this is test infrastructure, not a fast path.
 */
public final class FaultInjectingBlockDevice implements BlockDevice {

    /** Block size for misdirected writes: they land at the wrong block, keeping their offset within it. */
    public static final int BLOCK_BYTES = 4096;

    /** What the power cut did to one pending write. */
    public enum Fate { DROPPED, APPLIED, TORN, MISDIRECTED }

    /**
     * The fate of one pending write in the last crash. Sector {@code i} of the write is the part of it
     * inside the i-th 512-byte device sector it touches; {@code appliedSectors} has bit i set when that
     * part reached the image (all for APPLIED and MISDIRECTED, none for DROPPED, some for TORN).
     */
    public record WriteOutcome(long writeNumber, long offsetBytes, int lengthBytes, Fate fate,
                               long landedAtOffsetBytes, BitSet appliedSectors) {

        public boolean sectorApplied(int sectorIndex) {
            return appliedSectors.get(sectorIndex);
        }

        /** Number of device sectors the write touches, counting partial ones. */
        public int sectorCount() {
            return FaultInjectingBlockDevice.sectorCount(offsetBytes, lengthBytes);
        }
    }

    private record PendingWrite(long writeNumber, long offsetBytes, byte[] data) {
    }

    private final MemoryBlockDevice durableImage;
    private final MemoryBlockDevice currentImage;
    private final List<PendingWrite> pendingWrites = new ArrayList<>();
    private long writeCount;
    private long flushCount;
    private long crashAtWriteNumber = Long.MAX_VALUE;
    private double misdirectProbability;
    private String crashReason;
    private List<WriteOutcome> lastCrashOutcomes = List.of();
    private boolean closed;

    /**
     * Puts a volatile cache in front of {@code durableImage}, which this device then owns: it is
     * changed by {@link #flush()} and {@link #flipBit}, and must not be written by anyone else.
     */
    public FaultInjectingBlockDevice(MemoryBlockDevice durableImage) {
        this.durableImage = Objects.requireNonNull(durableImage, "durableImage");
        this.currentImage = durableImage.copy();
    }

    // ---- BlockDevice ----

    @Override
    public synchronized void read(long offsetBytes, ByteBuffer buffer) {
        checkUsable();
        currentImage.read(offsetBytes, buffer);
    }

    @Override
    public synchronized void write(long offsetBytes, ByteBuffer buffer) {
        checkUsable();
        if (offsetBytes < 0 || offsetBytes + buffer.remaining() < offsetBytes) {
            throw new IllegalArgumentException("bad range: offsetBytes=" + offsetBytes + " lengthBytes=" + buffer.remaining());
        }
        writeCount++;
        byte[] data = new byte[buffer.remaining()];
        buffer.get(data);
        pendingWrites.add(new PendingWrite(writeCount, offsetBytes, data));
        if (writeCount == crashAtWriteNumber) {
            crashReason = "simulated power cut at write " + writeCount + " (" + data.length + " bytes at offset " + offsetBytes + ")";
            throw new SimulatedCrashException(crashReason);
        }
        currentImage.write(offsetBytes, ByteBuffer.wrap(data));
    }

    @Override
    public synchronized void flush() {
        checkUsable();
        for (PendingWrite pending : pendingWrites) {
            durableImage.write(pending.offsetBytes, ByteBuffer.wrap(pending.data));
        }
        pendingWrites.clear();
        flushCount++;
    }

    @Override
    public synchronized long sizeBytes() {
        checkUsable();
        return currentImage.sizeBytes();
    }

    /** Keeps the old content (design note 5). */
    @Override
    public synchronized void discard(long offsetBytes, long lengthBytes) {
        checkUsable();
    }

    /** Marks the device closed. Pending writes stay pending, so a crash after close can still lose them. */
    @Override
    public synchronized void close() {
        closed = true;
    }

    // ---- fault injection ----

    /**
     * Arms a power cut at the {@code writeNumber}-th write (counted from 1 since this device was made).
     *
     * @throws IllegalArgumentException if that write has already happened
     */
    public synchronized void crashAtWrite(long writeNumber) {
        if (writeNumber <= writeCount) {
            throw new IllegalArgumentException("write " + writeNumber + " has already happened; writeCount=" + writeCount);
        }
        crashAtWriteNumber = writeNumber;
    }

    /** Sets the probability in [0, 1] that a crash lands a pending write at a wrong block. Default 0. */
    public synchronized void misdirectProbability(double probability) {
        if (!(probability >= 0 && probability <= 1)) {
            throw new IllegalArgumentException("probability must be in [0, 1]: " + probability);
        }
        misdirectProbability = probability;
    }

    /**
     * Cuts the power: returns the durable image as it would be found after a reboot, drawing each
     * pending write's fate from {@code random} (design note 2). This device fails every later I/O.
     */
    public synchronized MemoryBlockDevice crash(Random random) {
        Objects.requireNonNull(random, "random");
        if (crashReason == null) {
            crashReason = "simulated power cut after write " + writeCount;
        }
        MemoryBlockDevice image = durableImage.copy();
        long imageBlocks = Math.max(image.sizeBytes(), currentImage.sizeBytes()) / BLOCK_BYTES;
        List<WriteOutcome> outcomes = new ArrayList<>(pendingWrites.size());
        for (PendingWrite pending : pendingWrites) {
            WriteOutcome outcome = drawFate(pending, random, imageBlocks);
            land(image, pending, outcome);
            outcomes.add(outcome);
        }
        lastCrashOutcomes = List.copyOf(outcomes);
        return image;
    }

    /** Flips bit {@code bit} (0 = least significant) of the durable byte at {@code offsetBytes}. */
    public synchronized void flipBit(long offsetBytes, int bit) {
        if (bit < 0 || bit > 7) {
            throw new IllegalArgumentException("bit must be in [0, 7]: " + bit);
        }
        ByteBuffer oneByte = ByteBuffer.allocate(1);
        durableImage.read(offsetBytes, oneByte);
        byte flipped = (byte) (oneByte.get(0) ^ (1 << bit));
        durableImage.write(offsetBytes, ByteBuffer.wrap(new byte[] {flipped}));
        if (!coveredByPendingWrite(offsetBytes)) {
            currentImage.write(offsetBytes, ByteBuffer.wrap(new byte[] {flipped}));
        }
    }

    // ---- inspection ----

    /** Writes issued so far, including one that triggered an armed crash. */
    public synchronized long writeCount() {
        return writeCount;
    }

    /** Flushes completed so far. */
    public synchronized long flushCount() {
        return flushCount;
    }

    /** Writes in the volatile cache: issued since the last flush. */
    public synchronized int pendingWriteCount() {
        return pendingWrites.size();
    }

    /** True once an armed crash fired or {@link #crash(Random)} was called. */
    public synchronized boolean crashed() {
        return crashReason != null;
    }

    /** The fate of each pending write in the last {@link #crash(Random)}, in write order. */
    public synchronized List<WriteOutcome> lastCrashOutcomes() {
        return lastCrashOutcomes;
    }

    /** A copy of the durable image: what a crash that drops every pending write would leave. */
    public synchronized MemoryBlockDevice durableImageCopy() {
        return durableImage.copy();
    }

    // ---- internals ----

    private WriteOutcome drawFate(PendingWrite pending, Random random, long imageBlocks) {
        int sectors = sectorCount(pending.offsetBytes, pending.data.length);
        BitSet allSectors = new BitSet(sectors);
        allSectors.set(0, sectors);
        int lengthBytes = pending.data.length;
        if (misdirectProbability > 0 && random.nextDouble() < misdirectProbability) {
            long landedAt = misdirectedOffset(pending, random, imageBlocks);
            if (landedAt >= 0) {
                return new WriteOutcome(pending.writeNumber, pending.offsetBytes, lengthBytes, Fate.MISDIRECTED, landedAt, allSectors);
            }
        }
        return switch (random.nextInt(3)) {
            case 0 -> new WriteOutcome(pending.writeNumber, pending.offsetBytes, lengthBytes, Fate.DROPPED, pending.offsetBytes, new BitSet());
            case 1 -> new WriteOutcome(pending.writeNumber, pending.offsetBytes, lengthBytes, Fate.APPLIED, pending.offsetBytes, allSectors);
            default -> {
                BitSet appliedSectors = new BitSet(sectors);
                for (int sector = 0; sector < sectors; sector++) {
                    if (random.nextBoolean()) {
                        appliedSectors.set(sector);
                    }
                }
                yield new WriteOutcome(pending.writeNumber, pending.offsetBytes, lengthBytes, Fate.TORN, pending.offsetBytes, appliedSectors);
            }
        };
    }

    /** A different block, same offset within the block, still inside the image; -1 if there is none. */
    private static long misdirectedOffset(PendingWrite pending, Random random, long imageBlocks) {
        long originalBlock = pending.offsetBytes / BLOCK_BYTES;
        long offsetInBlock = pending.offsetBytes % BLOCK_BYTES;
        long spannedBlocks = (offsetInBlock + pending.data.length + BLOCK_BYTES - 1) / BLOCK_BYTES;
        long candidateBlocks = imageBlocks - spannedBlocks + 1; // first blocks where the write still fits
        boolean originalIsCandidate = originalBlock < candidateBlocks;
        long wrongBlocks = originalIsCandidate ? candidateBlocks - 1 : candidateBlocks;
        if (wrongBlocks < 1) {
            return -1;
        }
        long block = random.nextLong(wrongBlocks);
        if (originalIsCandidate && block >= originalBlock) {
            block++; // skip the right block, keeping the draw uniform over the wrong ones
        }
        return block * BLOCK_BYTES + offsetInBlock;
    }

    private static void land(MemoryBlockDevice image, PendingWrite pending, WriteOutcome outcome) {
        long shift = outcome.landedAtOffsetBytes() - pending.offsetBytes;
        long end = pending.offsetBytes + pending.data.length;
        long pieceStart = pending.offsetBytes;
        for (int sector = 0; pieceStart < end; sector++) {
            long pieceEnd = Math.min(end, (pieceStart / SECTOR_BYTES + 1) * SECTOR_BYTES);
            if (outcome.appliedSectors().get(sector)) {
                int from = (int) (pieceStart - pending.offsetBytes);
                image.write(pieceStart + shift, ByteBuffer.wrap(pending.data, from, (int) (pieceEnd - pieceStart)));
            }
            pieceStart = pieceEnd;
        }
    }

    static int sectorCount(long offsetBytes, int lengthBytes) {
        if (lengthBytes == 0) {
            return 0;
        }
        long firstSector = offsetBytes / SECTOR_BYTES;
        long lastSector = (offsetBytes + lengthBytes - 1) / SECTOR_BYTES;
        return (int) (lastSector - firstSector + 1);
    }

    private boolean coveredByPendingWrite(long offsetBytes) {
        for (PendingWrite pending : pendingWrites) {
            if (offsetBytes >= pending.offsetBytes && offsetBytes < pending.offsetBytes + pending.data.length) {
                return true;
            }
        }
        return false;
    }

    private void checkUsable() {
        if (crashReason != null) {
            throw new SimulatedCrashException("device is down: " + crashReason);
        }
        if (closed) {
            throw new StorageException(StorageException.Code.CLOSED, "fault-injecting device is closed");
        }
    }
}
