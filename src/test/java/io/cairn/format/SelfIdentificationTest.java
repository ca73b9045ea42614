package io.cairn.format;

import io.cairn.io.CorruptionException;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.ByteBuffer;
import java.util.Random;
import java.util.UUID;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Every metadata block identifies itself (STYLE 4): read at the wrong address, damaged in any single
 * bit, of the wrong type or of another format version, it fails its check with a CorruptionException
 * that names the block it was read from.
 */
class SelfIdentificationTest {

    /** The kinds of metadata block, each with an encoder and the check a reader applies. */
    enum Kind {
        RADIX_NODE {
            @Override
            ByteBuffer encode(Random random, long block) {
                long[] pointers = new long[Layout.POINTERS_PER_NODE];
                for (int i = 0; i < pointers.length; i++) {
                    long target = random.nextInt(4) == 0 ? 0 : random.nextLong() & Pointer.BLOCK_MASK;
                    pointers[i] = random.nextBoolean() ? Pointer.markReadOnly(target) : target;
                }
                return NodeCodec.encode(pointers, block, random.nextLong() & Long.MAX_VALUE, 2);
            }

            @Override
            void verify(ByteBuffer image, long block) {
                NodeCodec.decode(image, block, 2);
            }

            @Override
            void setVersion(ByteBuffer image, int version) {
                FormatImages.setNodeHeaderByte(image, Layout.HEADER_VERSION, version);
                FormatImages.setNodeHeaderByte(image, Layout.HEADER_VERSION + 1, version >>> 8);
                FormatImages.resealNode(image);
            }

            @Override
            void setMagic(ByteBuffer image, int magic) {
                for (int i = 0; i < 4; i++) {
                    FormatImages.setNodeHeaderByte(image, i, magic >>> (8 * i));
                }
                FormatImages.resealNode(image);
            }
        },
        VDI_TABLE_PAGE {
            @Override
            ByteBuffer encode(Random random, long block) {
                ByteBuffer page = BlockHeader.newImage();
                TablePageCodec.Kind kind = TablePageCodec.Kind.VDIS;
                for (int r = 0; r < kind.recordsPerPage(); r++) {
                    if (random.nextBoolean()) {
                        new VdiRecord(15 + r, random.nextLong(), random.nextLong() & Pointer.BLOCK_MASK, 1 + random.nextInt(4),
                                random.nextBoolean(), "disk-" + random.nextInt(1000), random.nextLong(), random.nextLong(),
                                random.nextLong(), 0, 0).encode(page, kind.offsetOf(r));
                    }
                }
                return TablePageCodec.seal(page, kind, block, random.nextLong() & Long.MAX_VALUE);
            }

            @Override
            void verify(ByteBuffer image, long block) {
                TablePageCodec.verify(image, TablePageCodec.Kind.VDIS, block);
            }
        },
        SNAPSHOT_TABLE_PAGE {
            @Override
            ByteBuffer encode(Random random, long block) {
                ByteBuffer page = BlockHeader.newImage();
                TablePageCodec.Kind kind = TablePageCodec.Kind.SNAPSHOTS;
                for (int r = 0; r < kind.recordsPerPage(); r++) {
                    if (random.nextBoolean()) {
                        new SnapshotRecord(31 + r, random.nextLong(), random.nextLong(), random.nextLong(), random.nextLong(),
                                random.nextLong(), 1 + random.nextInt(4), random.nextBoolean(), "label" + r)
                                .encode(page, kind.offsetOf(r));
                    }
                }
                return TablePageCodec.seal(page, kind, block, random.nextLong() & Long.MAX_VALUE);
            }

            @Override
            void verify(ByteBuffer image, long block) {
                TablePageCodec.verify(image, TablePageCodec.Kind.SNAPSHOTS, block);
            }
        },
        EXTENT_TABLE_PAGE {
            @Override
            ByteBuffer encode(Random random, long block) {
                ByteBuffer page = BlockHeader.newImage();
                TablePageCodec.Kind kind = TablePageCodec.Kind.EXTENTS;
                for (int r = 0; r < kind.recordsPerPage(); r++) {
                    new ExtentRecord(ExtentRecord.Type.values()[random.nextInt(4)], random.nextInt(), random.nextLong())
                            .encode(page, kind.offsetOf(r));
                }
                return TablePageCodec.seal(page, kind, block, random.nextLong() & Long.MAX_VALUE);
            }

            @Override
            void verify(ByteBuffer image, long block) {
                TablePageCodec.verify(image, TablePageCodec.Kind.EXTENTS, block);
            }
        },
        COUNTER_BLOCK {
            /** Either encoding: both are one block type, and the superblock, not the block, says which. */
            @Override
            ByteBuffer encode(Random random, long block) {
                return counterBlock(random.nextBoolean() ? CounterEncoding.WIDE : CounterEncoding.NARROW, random, block);
            }

            @Override
            void verify(ByteBuffer image, long block) {
                BlockHeader.verify(image, Layout.MAGIC_REFCOUNT, block);
            }
        },
        SUPERBLOCK {
            @Override
            long someBlock(Random random) {
                return random.nextInt(2);
            }

            @Override
            long otherBlock(long block) {
                return 1 - block;
            }

            @Override
            ByteBuffer encode(Random random, long block) {
                long generation = (random.nextLong() & (Long.MAX_VALUE - 1)) | block;
                return new Superblock(generation, 0, random.nextLong(), 256, 256L * (2 + random.nextInt(100)),
                        new UUID(random.nextLong(), random.nextLong()), 1 + random.nextInt(1000), 1 + random.nextInt(1000),
                        new Superblock.TableRoot(random.nextInt(1 << 20), 1), new Superblock.TableRoot(random.nextInt(1 << 20), 1),
                        new Superblock.TableRoot(random.nextInt(1 << 20), 2), random.nextLong()).encode();
            }

            @Override
            void verify(ByteBuffer image, long block) {
                Superblock.decode(image, block);
            }
        };

        abstract ByteBuffer encode(Random random, long block);

        /** Reads {@code image} as a block of this kind found at {@code block}; throws if it is not one. */
        abstract void verify(ByteBuffer image, long block);

        long someBlock(Random random) {
            return 2 + (random.nextLong() & (Pointer.BLOCK_MASK >>> 1));
        }

        long otherBlock(long block) {
            return block + 1;
        }

        void setVersion(ByteBuffer image, int version) {
            image.putShort(Layout.HEADER_VERSION, (short) version);
            FormatImages.resealHeader(image);
        }

        void setMagic(ByteBuffer image, int magic) {
            image.putInt(Layout.HEADER_MAGIC, magic);
            FormatImages.resealHeader(image);
        }

        /** A counter block full of random counters that {@code encoding} holds. */
        private static ByteBuffer counterBlock(CounterEncoding encoding, Random random, long block) {
            char[] counters = new char[encoding.countersPerBlock()];
            for (int i = 0; i < counters.length; i++) {
                counters[i] = (char) random.nextInt(encoding.maxCount() + 1);
            }
            return RefcountBlockCodec.encode(encoding, counters, 0, block, random.nextLong() & Long.MAX_VALUE, (int) (block & 1));
        }
    }

    @ParameterizedTest
    @EnumSource(Kind.class)
    void aValidBlockPassesItsCheck(Kind kind) {
        Random random = new Random(kind.ordinal());
        for (int i = 0; i < 20; i++) {
            long block = kind.someBlock(random);
            kind.verify(kind.encode(random, block), block);
        }
    }

    @ParameterizedTest
    @EnumSource(Kind.class)
    void readAtTheWrongBlockNumber(Kind kind) {
        Random random = new Random(100 + kind.ordinal());
        long block = kind.someBlock(random);
        ByteBuffer image = kind.encode(random, block);
        long readAt = kind.otherBlock(block);
        CorruptionException failure = assertCorrupt(readAt, () -> kind.verify(image, readAt));
        assertTrue(failure.getMessage().contains("claims to be block " + block + ": misdirected write"), failure.getMessage());
    }

    /** Every one of the 32768 single-bit flips of a block is detected. */
    @ParameterizedTest
    @EnumSource(Kind.class)
    void everySingleBitFlipIsDetected(Kind kind) {
        Random random = new Random(200 + kind.ordinal());
        long block = kind.someBlock(random);
        ByteBuffer image = kind.encode(random, block);
        for (int bit = 0; bit < Layout.BLOCK_BYTES * 8; bit++) {
            FormatImages.flipBit(image, bit);
            try {
                kind.verify(image, block);
                fail(kind + ": flipping bit " + bit + " (byte " + (bit >>> 3) + ") went unnoticed");
            } catch (CorruptionException expected) {
                if (expected.blockNumber() != block) {
                    fail(kind + ": flip of bit " + bit + " blamed block " + expected.blockNumber() + " instead of " + block);
                }
            }
            FormatImages.flipBit(image, bit);
        }
        kind.verify(image, block);
    }

    @Property(tries = 400)
    void aFlippedBitAnywhereInAnyBlockIsDetected(@ForAll("kinds") Kind kind, @ForAll long seed,
                                                 @ForAll @IntRange(min = 0, max = Layout.BLOCK_BYTES * 8 - 1) int bit) {
        Random random = new Random(seed);
        long block = kind.someBlock(random);
        ByteBuffer image = kind.encode(random, block);
        FormatImages.flipBit(image, bit);
        assertCorrupt(block, () -> kind.verify(image, block));
    }

    @Provide
    Arbitrary<Kind> kinds() {
        return Arbitraries.of(Kind.class);
    }

    @ParameterizedTest
    @EnumSource(Kind.class)
    void wrongMagic(Kind kind) {
        Random random = new Random(300 + kind.ordinal());
        long block = kind.someBlock(random);
        ByteBuffer image = kind.encode(random, block);
        kind.setMagic(image, Layout.magic("CXYZ"));
        CorruptionException failure = assertCorrupt(block, () -> kind.verify(image, block));
        assertTrue(failure.getMessage().contains("found magic CXYZ"), failure.getMessage());
    }

    /** A valid block of every other kind, at the right address, is refused for its type. */
    @ParameterizedTest
    @EnumSource(Kind.class)
    void aBlockOfAnotherKindIsRefused(Kind kind) {
        Random random = new Random(400 + kind.ordinal());
        long block = kind.someBlock(random);
        for (Kind other : Kind.values()) {
            if (other != kind) {
                ByteBuffer image = other.encode(random, block);
                assertCorrupt(block, () -> kind.verify(image, block));
            }
        }
        assertCorrupt(block, () -> kind.verify(BlockHeader.newImage(), block)); // never written: all zeros
    }

    @ParameterizedTest
    @EnumSource(Kind.class)
    void anotherFormatVersionIsRefused(Kind kind) {
        Random random = new Random(500 + kind.ordinal());
        long block = kind.someBlock(random);
        for (int version : new int[] {0, 2, 0xFFFF}) {
            ByteBuffer image = kind.encode(random, block);
            kind.setVersion(image, version);
            CorruptionException failure = assertCorrupt(block, () -> kind.verify(image, block));
            assertTrue(failure.getMessage().contains("version " + version), failure.getMessage());
        }
    }

    @org.junit.jupiter.api.Test
    void aRadixNodeAtTheWrongLevelIsRefused() {
        ByteBuffer image = NodeCodec.encode(new long[Layout.POINTERS_PER_NODE], 77, 5, 3);
        CorruptionException failure = assertCorrupt(77, () -> NodeCodec.decode(image, 77, 2));
        assertTrue(failure.getMessage().contains("level 3, expected 2"), failure.getMessage());
    }

    @org.junit.jupiter.api.Test
    void aTablePageOfAnotherTableIsRefused() {
        ByteBuffer page = TablePageCodec.seal(BlockHeader.newImage(), TablePageCodec.Kind.SNAPSHOTS, 9, 1);
        CorruptionException failure = assertCorrupt(9, () -> TablePageCodec.verify(page, TablePageCodec.Kind.VDIS, 9));
        assertTrue(failure.getMessage().contains("kind 3 where kind 2 (VDIS) was expected"), failure.getMessage());
    }

    @org.junit.jupiter.api.Test
    void recordsThatCannotBeTrueAreRefused() {
        ByteBuffer page = BlockHeader.newImage();
        new VdiRecord(20, 4096, 100, 1, false, "a", 0, 0, 0, 0, 0).encode(page, 32);
        assertTrue(assertCorrupt(9, () -> VdiRecord.decode(page, 32, 9, 21)).getMessage().contains("holds id 20 where id 21 belongs"));
        page.put(32 + 24, (byte) 5);
        assertTrue(assertCorrupt(9, () -> VdiRecord.decode(page, 32, 9, 20)).getMessage().contains("height 5"));
        new SnapshotRecord(20, 1, 100, 0, 0, 4096, 1, false, "").encode(page, 32);
        page.put(32 + 50, (byte) 65);
        assertTrue(assertCorrupt(9, () -> SnapshotRecord.decode(page, 32, 9, 20)).getMessage().contains("label length 65"));
        page.put(32, (byte) 4);
        assertTrue(assertCorrupt(9, () -> ExtentRecord.decode(page, 32, 9)).getMessage().contains("unknown type 4"));
    }

    @org.junit.jupiter.api.Test
    void superblockFieldsThatCannotBeTrueAreRefused() {
        Superblock valid = new Superblock(4, 0, 0, 256, 1024, new UUID(1, 2), 1, 1,
                Superblock.TableRoot.EMPTY, Superblock.TableRoot.EMPTY, Superblock.TableRoot.EMPTY, 0);
        assertSuperblockRefused(valid, 32, 0x1234L, "signature is wrong");
        assertSuperblockRefused(valid, 56, 8192, "block size 8192 is not 4096");
        assertSuperblockRefused(valid, 60, 100, "extent size 100 blocks is not a power of two >= 64");
        assertSuperblockRefused(valid, 60, 32, "extent size 32 blocks");
        assertSuperblockRefused(valid, 64, 1000, "store size 1000 blocks is not a whole number of extents");
        assertSuperblockRefused(valid, 64, 1L << 48, "store size");
    }

    @org.junit.jupiter.api.Test
    void unknownIncompatibleFeaturesAskForAnUpgrade() {
        Superblock withFeature = new Superblock(4, 1L << 5, 0, 256, 1024, new UUID(1, 2), 1, 1,
                Superblock.TableRoot.EMPTY, Superblock.TableRoot.EMPTY, Superblock.TableRoot.EMPTY, 0);
        UnsupportedFormatException failure = assertThrows(UnsupportedFormatException.class,
                () -> Superblock.decode(withFeature.encode(), 0));
        assertTrue(failure.getMessage().contains("incompatible features 0x20"), failure.getMessage());
        assertTrue(failure.getMessage().contains("upgrade Cairn"), failure.getMessage());
        Superblock compatible = new Superblock(4, 0, -1L, 256, 1024, new UUID(1, 2), 1, 1,
                Superblock.TableRoot.EMPTY, Superblock.TableRoot.EMPTY, Superblock.TableRoot.EMPTY, 0);
        assertEquals(compatible, Superblock.decode(compatible.encode(), 0), "unknown compatible features are ignored");
    }

    private static void assertSuperblockRefused(Superblock valid, int offset, long value, String expected) {
        ByteBuffer image = valid.encode();
        if (offset == 56 || offset == 60) {
            image.putInt(offset, (int) value);
        } else {
            image.putLong(offset, value);
        }
        FormatImages.resealHeader(image);
        CorruptionException failure = assertCorrupt(0, () -> Superblock.decode(image, 0));
        assertTrue(failure.getMessage().contains(expected), failure.getMessage());
    }

    private static CorruptionException assertCorrupt(long block, Executable read) {
        CorruptionException failure = assertThrows(CorruptionException.class, read);
        assertEquals(block, failure.blockNumber(), failure.getMessage());
        assertTrue(failure.getMessage().startsWith("corrupt metadata in block " + block + ": "), failure.getMessage());
        return failure;
    }
}
