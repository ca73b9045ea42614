package io.cairn.cli;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The admin socket's wire format (docs/ADMIN.md): the client sends the command line it was given, the
 * server runs it against the live store and sends back what the command printed and its exit code.
 *
 * <pre>
 * request:  u32 magic "CADM", u32 argument count (at most 4096), each argument as a string
 * response: u32 exit code, string stdout, string stderr
 * string:   u32 byte length (at most 64 MiB), UTF-8 bytes
 * </pre>
 * All integers big-endian.
 */
final class AdminProtocol {

    private AdminProtocol() {
    }

    static final int MAGIC = 0x4341444D; // "CADM"
    private static final int MAX_ARGUMENTS = 4096;
    private static final int MAX_STRING_BYTES = 64 << 20;

    record Response(int exitCode, String out, String err) {
    }

    static void writeRequest(DataOutputStream out, List<String> arguments) throws IOException {
        out.writeInt(MAGIC);
        out.writeInt(arguments.size());
        for (String argument : arguments) {
            writeString(out, argument);
        }
        out.flush();
    }

    static List<String> readRequest(DataInputStream in) throws IOException {
        if (in.readInt() != MAGIC) {
            throw new IOException("not an admin request (bad magic)");
        }
        int count = in.readInt();
        if (count < 0 || count > MAX_ARGUMENTS) {
            throw new IOException("admin request with " + count + " arguments");
        }
        List<String> arguments = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            arguments.add(readString(in));
        }
        return arguments;
    }

    static void writeResponse(DataOutputStream out, Response response) throws IOException {
        out.writeInt(response.exitCode());
        writeString(out, response.out());
        writeString(out, response.err());
        out.flush();
    }

    static Response readResponse(DataInputStream in) throws IOException {
        return new Response(in.readInt(), readString(in), readString(in));
    }

    private static void writeString(DataOutputStream out, String text) throws IOException {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        out.writeInt(bytes.length);
        out.write(bytes);
    }

    private static String readString(DataInputStream in) throws IOException {
        int length = in.readInt();
        if (length < 0 || length > MAX_STRING_BYTES) {
            throw new IOException("admin string of " + length + " bytes");
        }
        return new String(in.readNBytes(length), StandardCharsets.UTF_8);
    }
}
