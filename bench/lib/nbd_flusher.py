"""Sends an NBD FLUSH every INTERVAL seconds over its own connection until stopped (SIGTERM), then
prints how many it sent. For benchmarks: the durability of continuous snapshots without the snapshots.

    python3 nbd_flusher.py HOST PORT EXPORT INTERVAL_SECONDS
"""
import signal
import socket
import struct
import sys
import time

from cairn_admin import read_exactly

NBD_FLAG_C_FIXED_NEWSTYLE = 1
NBD_FLAG_C_NO_ZEROES = 2
NBD_OPT_EXPORT_NAME = 1
NBD_CMD_FLUSH = 3
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698


def connect(host, port, export):
    sock = socket.create_connection((host, port))
    magic, option_magic, flags = struct.unpack(">8s8sH", read_exactly(sock, 18))
    if magic != b"NBDMAGIC" or option_magic != b"IHAVEOPT":
        raise ConnectionError("not a newstyle NBD server")
    sock.sendall(struct.pack(">I", NBD_FLAG_C_FIXED_NEWSTYLE | (flags & NBD_FLAG_C_NO_ZEROES)))
    name = export.encode()
    sock.sendall(b"IHAVEOPT" + struct.pack(">II", NBD_OPT_EXPORT_NAME, len(name)) + name)
    read_exactly(sock, 10 + (0 if flags & NBD_FLAG_C_NO_ZEROES else 124))
    return sock


def main():
    host, port, export, interval = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    sock = connect(host, port, export)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    sent = 0
    next_at = time.monotonic() + interval
    while not stopping:
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
            continue
        sock.sendall(struct.pack(">IHHQQI", REQUEST_MAGIC, 0, NBD_CMD_FLUSH, sent, 0, 0))
        magic, error, handle = struct.unpack(">IIQ", read_exactly(sock, 16))
        if magic != SIMPLE_REPLY_MAGIC or error != 0 or handle != sent:
            sys.exit("bad FLUSH reply: magic %x error %d handle %d" % (magic, error, handle))
        sent += 1
        next_at += interval
        if next_at < time.monotonic():
            next_at = time.monotonic() + interval  # late: skip, as the snapshot schedule does
    print(sent)


if __name__ == "__main__":
    main()
