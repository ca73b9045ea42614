package io.cairn.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import picocli.CommandLine;

class SizesTest {

    @ParameterizedTest
    @CsvSource({
        "0, 0",
        "512, 512",
        "512B, 512",
        "1K, 1024",
        "1k, 1024",
        "4KiB, 4096",
        "64M, 67108864",
        "64MB, 67108864",
        "10G, 10737418240",
        "10 GiB, 10737418240",
        "10gib, 10737418240",
        "2T, 2199023255552",
        "8388607T, 9223370937343148032",
        "9223372036854775807, 9223372036854775807",
        "' 7G ', 7516192768",
    })
    void parsesPlainBytesAndBinarySuffixes(String text, long expectedBytes) {
        assertEquals(expectedBytes, Sizes.parseBytes(text));
    }

    @ParameterizedTest
    @ValueSource(strings = {"12Q", "G", "1.5G", "10 G B", "0x10", "ten", "1GiBs", "1iB", "1 2", "+5"})
    void rejectsJunkWithAnExplanation(String text) {
        IllegalArgumentException problem = assertThrows(IllegalArgumentException.class, () -> Sizes.parseBytes(text));
        assertEquals("'" + text + "' is not a size; write a whole number of bytes, optionally followed by K, M, G or T"
                + " (powers of 1024), for example 64G or 512M", problem.getMessage());
    }

    @org.junit.jupiter.api.Test
    void rejectsNegativeEmptyAndOverflowingSizes() {
        assertEquals("'-1' is not a size: sizes cannot be negative",
                assertThrows(IllegalArgumentException.class, () -> Sizes.parseBytes("-1")).getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Sizes.parseBytes(""))
                .getMessage().startsWith("a size must not be empty"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Sizes.parseBytes(null))
                .getMessage().startsWith("a size must not be empty"));
        for (String tooLarge : new String[] {"8388608T", "9223372036854775808", "99999999999999999999999999G"}) {
            assertEquals("'" + tooLarge + "' is too large: sizes are limited to 2^63 - 1 bytes",
                    assertThrows(IllegalArgumentException.class, () -> Sizes.parseBytes(tooLarge)).getMessage());
        }
    }

    @org.junit.jupiter.api.Test
    void converterTurnsErrorsIntoPicocliConversionErrors() {
        Sizes.Converter converter = new Sizes.Converter();
        assertEquals(1L << 30, converter.convert("1G"));
        assertThrows(CommandLine.TypeConversionException.class, () -> converter.convert("12Q"));
    }

    @ParameterizedTest
    @CsvSource({
        "0, 0 B",
        "1023, 1023 B",
        "1024, 1 KiB",
        "1536, 1.5 KiB",
        "268435456, 256 MiB",
        "10737418240, 10 GiB",
        "1649267441664, 1.5 TiB",
        "268320768, 255.9 MiB",
        "9223372036854775807, 8.0 EiB",
    })
    void printsSizesInTheLargestBinaryUnit(long bytes, String expected) {
        assertEquals(expected, Sizes.human(bytes));
    }

    @org.junit.jupiter.api.Test
    void humanAndParseAgreeOnWholeUnits() {
        for (String text : new String[] {"1 KiB", "256 MiB", "10 GiB", "3 TiB"}) {
            assertEquals(text, Sizes.human(Sizes.parseBytes(text)));
        }
    }
}
