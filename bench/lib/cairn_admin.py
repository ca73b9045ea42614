"""A client of a running Cairn server's admin socket (docs/ADMIN.md), for benchmarks that send many
commands: one Python process instead of one JVM start per command.

    python3 cairn_admin.py STORE ARG...          runs `cairn ARG...` in the server, prints its output
    import cairn_admin; cairn_admin.run(store, ["snapshot", store, "disk0"])
"""
import hashlib
import os
import socket
import struct
import sys
import tempfile

MAGIC = 0x4341444D  # "CADM"


def socket_path(store):
    """The same path AdminEndpoint.socketFor computes."""
    real = os.path.realpath(store)
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    directory = runtime if runtime and os.path.isdir(runtime) else tempfile.gettempdir()
    return os.path.join(directory, "cairn-" + hashlib.sha256(real.encode()).hexdigest()[:16] + ".sock")


def read_exactly(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("the server closed the admin connection early")
        data += chunk
    return data


def _read_string(sock):
    (length,) = struct.unpack(">I", read_exactly(sock, 4))
    return read_exactly(sock, length).decode()


def run(store, arguments):
    """Runs one command line in the server of STORE: (exit code, stdout, stderr)."""
    request = struct.pack(">II", MAGIC, len(arguments))
    for argument in arguments:
        data = argument.encode()
        request += struct.pack(">I", len(data)) + data
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(socket_path(store))
        sock.sendall(request)
        (code,) = struct.unpack(">I", read_exactly(sock, 4))
        return code, _read_string(sock), _read_string(sock)


def run_ok(store, arguments):
    code, out, err = run(store, arguments)
    if code != 0:
        raise RuntimeError("cairn %s: exit %d: %s" % (" ".join(arguments), code, err.strip()))
    return out


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: cairn_admin.py STORE ARG...")
    code, out, err = run(sys.argv[1], sys.argv[2:])
    sys.stdout.write(out)
    sys.stderr.write(err)
    sys.exit(code)
