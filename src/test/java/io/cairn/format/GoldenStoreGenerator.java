package io.cairn.format;

import io.cairn.volume.Store;
import io.cairn.volume.StoreOptions;
import io.cairn.volume.Volume;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.UUID;
import java.util.zip.GZIPOutputStream;

/**
 * Writes the golden images of format version 1, {@code src/test/resources/golden/store-v1.img.gz} (2-byte
 * counters, no incompatible feature: stores made before incompatible feature bit 0) and
 * {@code store-v1-narrow-counters.img.gz} (1-byte counters, incompatible feature bit 0: what new stores are),
 * and holds the model of what they contain ({@link GoldenStoreTest} checks each against the model). Both
 * hold the same disks, written by the same steps.
 *
 * <p>The image pins a released format: it is regenerated only when the generator itself was wrong,
 * never to make a format change pass. A new format version gets a new image (store-v2.img.gz, with its
 * own generator) and keeps this one, so that old stores stay readable. Regenerate from the repository
 * root with:
 * <pre>
 * ./mvnw -q -o test-compile
 * java -cp target/classes:target/test-classes io.cairn.format.GoldenStoreGenerator WIDE src/test/resources/golden/store-v1.img.gz
 * java -cp target/classes:target/test-classes io.cairn.format.GoldenStoreGenerator NARROW \
 *     src/test/resources/golden/store-v1-narrow-counters.img.gz
 * </pre>
 * The store id is fixed; the timestamps in the image are those of the run, so two runs produce the
 * same layout but different bytes.
 *
 * <p>Contents: a 4 MiB store with 64-block extents (16 extents, so extent boundaries are crossed),
 * <ul>
 *   <li>{@code alpha}, 1 MiB (tree height 1): blocks 0..3 written, a 3000-byte write at offset 10000;
 *       snapshot {@code alpha@v1} of that; then block 1 rewritten and 100 bytes written at the last
 *       byte offsets; a second snapshot {@code alpha@2} (label "tmp"), deleted again;</li>
 *   <li>{@code beta}, 3 MiB (height 2): 8 KiB at 2 MiB - 4 KiB, crossing from the first leaf node into the
 *       second, and the last block;</li>
 *   <li>{@code gamma}, a clone of {@code alpha@v1}, with block 2 rewritten and block 200 written;</li>
 *   <li>{@code doomed}, created, written, and deleted (a deleted VDI record).</li>
 * </ul>
 */
public final class GoldenStoreGenerator {

    /** A golden image: where it is, and the counter encoding its store was made with. */
    public enum Image {
        V1_WIDE_COUNTERS("/golden/store-v1.img.gz", CounterEncoding.WIDE),
        V1_NARROW_COUNTERS("/golden/store-v1-narrow-counters.img.gz", CounterEncoding.NARROW);

        public final String resource;
        public final CounterEncoding encoding;

        Image(String resource, CounterEncoding encoding) {
            this.resource = resource;
            this.encoding = encoding;
        }
    }
    public static final UUID STORE_ID = UUID.fromString("c0ffee00-ca12-4e00-8000-00000000f0a1");
    public static final long STORE_BYTES = 4L << 20;
    public static final int EXTENT_BLOCKS = 64;

    public static final long ALPHA_BYTES = 1L << 20;
    public static final long BETA_BYTES = 3L << 20;

    private GoldenStoreGenerator() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 2) {
            throw new IllegalArgumentException("usage: GoldenStoreGenerator WIDE|NARROW OUTPUT.img.gz");
        }
        CounterEncoding encoding = CounterEncoding.valueOf(args[0]);
        Path output = Path.of(args[1]);
        byte[] image = generate(encoding);
        Files.createDirectories(output.toAbsolutePath().getParent());
        try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(output))) {
            out.write(image);
        }
        System.out.println("wrote " + output + ": " + image.length + " bytes, " + Files.size(output) + " compressed");
    }

    /** Builds the store in memory and returns its bytes. */
    static byte[] generate(CounterEncoding encoding) {
        KeepOpenDevice device = new KeepOpenDevice();
        Store store = Store.format(device, STORE_BYTES, EXTENT_BLOCKS, StoreOptions.defaults(), STORE_ID, encoding);
        store.create("alpha", ALPHA_BYTES);
        store.create("beta", BETA_BYTES);
        store.create("doomed", 64 << 10);
        write(store, "doomed", 0, pattern("doomed", 0, 8192));
        store.commit();

        write(store, "alpha", 0, pattern("alpha", 0, 4 * 4096));
        write(store, "alpha", 10000, pattern("alpha-odd", 10000, 3000));
        store.snapshot("alpha", "v1");
        write(store, "alpha", 4096, pattern("alpha-new", 4096, 4096));
        write(store, "alpha", ALPHA_BYTES - 100, pattern("alpha-tail", ALPHA_BYTES - 100, 100));
        store.snapshot("alpha", "tmp");
        store.deleteSnapshot("alpha@tmp");

        write(store, "beta", (2L << 20) - 4096, pattern("beta", (2L << 20) - 4096, 8192));
        write(store, "beta", BETA_BYTES - 4096, pattern("beta-end", BETA_BYTES - 4096, 4096));

        store.clone("gamma", "alpha@v1");
        write(store, "gamma", 2 * 4096, pattern("gamma", 2 * 4096, 4096));
        write(store, "gamma", 200 * 4096, pattern("gamma", 200 * 4096, 4096));

        store.deleteVdi("doomed", false);
        store.close();
        byte[] bytes = new byte[(int) STORE_BYTES];
        device.memory.read(0, ByteBuffer.wrap(bytes));
        return bytes;
    }

    /** Expected content of every export of the golden store, by export name. */
    public static Map<String, byte[]> expectedContent() {
        byte[] alphaV1 = new byte[(int) ALPHA_BYTES];
        put(alphaV1, 0, pattern("alpha", 0, 4 * 4096));
        put(alphaV1, 10000, pattern("alpha-odd", 10000, 3000));
        byte[] alpha = alphaV1.clone();
        put(alpha, 4096, pattern("alpha-new", 4096, 4096));
        put(alpha, ALPHA_BYTES - 100, pattern("alpha-tail", ALPHA_BYTES - 100, 100));
        byte[] beta = new byte[(int) BETA_BYTES];
        put(beta, (2L << 20) - 4096, pattern("beta", (2L << 20) - 4096, 8192));
        put(beta, BETA_BYTES - 4096, pattern("beta-end", BETA_BYTES - 4096, 4096));
        byte[] gamma = alphaV1.clone();
        put(gamma, 2 * 4096, pattern("gamma", 2 * 4096, 4096));
        put(gamma, 200 * 4096, pattern("gamma", 200 * 4096, 4096));
        Map<String, byte[]> content = new LinkedHashMap<>();
        content.put("alpha", alpha);
        content.put("alpha@v1", alphaV1);
        content.put("beta", beta);
        content.put("gamma", gamma);
        return content;
    }

    /**
     * Recognisable, compressible bytes: 32-byte lines naming the writer and the byte offset, so a block
     * read from the wrong place shows where it came from.
     */
    public static byte[] pattern(String writer, long offsetBytes, int lengthBytes) {
        byte[] bytes = new byte[lengthBytes];
        long lastLine = -1;
        byte[] text = null;
        for (int i = 0; i < lengthBytes; i++) {
            long at = offsetBytes + i;
            if (at / 32 != lastLine) {
                lastLine = at / 32;
                text = String.format("%-10.10s @%08x ----------\n", writer, lastLine * 32).getBytes(StandardCharsets.US_ASCII);
            }
            bytes[i] = text[(int) (at % 32)];
        }
        return bytes;
    }

    private static void put(byte[] target, long offset, byte[] bytes) {
        System.arraycopy(bytes, 0, target, (int) offset, bytes.length);
    }

    private static void write(Store store, String name, long offset, byte[] bytes) {
        try (Volume volume = store.openVolume(name)) {
            volume.write(offset, ByteBuffer.wrap(bytes), false);
        }
    }
}
