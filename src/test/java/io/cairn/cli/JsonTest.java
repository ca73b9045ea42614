package io.cairn.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class JsonTest {

    @Test
    void escapesQuotesBackslashesAndControlCharacters() {
        assertEquals("\"plain\"", Json.quote("plain"));
        assertEquals("\"say \\\"hi\\\"\"", Json.quote("say \"hi\""));
        assertEquals("\"C:\\\\disk\"", Json.quote("C:\\disk"));
        assertEquals("\"a\\nb\\rc\\td\\be\\ff\"", Json.quote("a\nb\rc\td\be\ff"));
        assertEquals("\"\\u0000\\u001f\\u007f\"", Json.quote("\u0000\u001f\u007f"));
        assertEquals("\"/ stays\"", Json.quote("/ stays"));
    }

    @Test
    void escapesEverythingOutsidePrintableAsciiSoAnyEncodingCarriesIt() {
        assertEquals("\"caf\\u00e9 \\u2028 \\ud83d\\ude00\"", Json.quote("café \u2028 \uD83D\uDE00"));
    }

    @Test
    void everyStringSurvivesARoundTripThroughAStrictParser() {
        StringBuilder all = new StringBuilder();
        for (char c = 0; c < 0x300; c++) {
            all.append(c);
        }
        all.append("\uD83D\uDE00\u2029\uFFFF");
        for (String text : List.of("", "\"", "\\", "\\\"", "label with spaces", all.toString())) {
            assertEquals(text, JsonParser.parse(Json.quote(text)));
        }
    }

    @Test
    void writerPlacesCommasAndNestsContainers() {
        String text = new Json().beginObject()
                .field("name", "a\"b")
                .field("size", 10L)
                .field("deleted", false)
                .field("parent", null)
                .name("empty").beginArray().endArray()
                .name("list").beginArray().value(1).value("two").beginObject().endObject().beginArray().value(true).endArray().endArray()
                .name("nested").beginObject().field("x", -1).endObject()
                .endObject().toString();
        assertEquals("{\"name\":\"a\\\"b\",\"size\":10,\"deleted\":false,\"parent\":null,\"empty\":[],"
                + "\"list\":[1,\"two\",{},[true]],\"nested\":{\"x\":-1}}", text);
        Map<String, Object> parsed = JsonParser.parseObject(text);
        assertEquals(Arrays.asList(1L, "two", Map.of(), List.of(true)), parsed.get("list"));
    }

    @Test
    void theTestParserIsStrict() {
        for (String bad : List.of("{\"a\":1,}", "[1,]", "{\"a\":1}x", "\"raw\ncontrol\"", "\"\\x\"", "{\"a\":1,\"a\":2}",
                "{a:1}", "01", "1.5", "", "[", "nul")) {
            assertThrows(IllegalArgumentException.class, () -> JsonParser.parse(bad), bad);
        }
    }
}
