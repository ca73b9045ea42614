package io.cairn.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;

class TableTest {

    @Test
    void alignsColumnsTwoSpacesApartWithoutTrailingSpaces() {
        StringWriter out = new StringWriter();
        new Table("NAME", "ID", "LABEL").alignRight(1)
                .row("base", 1, "gold")
                .row("a-longer-name", 123, "")
                .print(new PrintWriter(out, true));
        assertEquals("""
                NAME            ID  LABEL
                base             1  gold
                a-longer-name  123
                """, out.toString().replace(System.lineSeparator(), "\n"));
    }

    @Test
    void refusesRowsOfTheWrongWidth() {
        assertThrows(IllegalArgumentException.class, () -> new Table("A", "B").row("only one"));
    }
}
