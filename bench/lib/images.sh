# Sourced by the bench scripts: sizes and the prefilled disk image they serve.

# Bytes in a size such as 4G, 512M, 1GiB or 4096.
bench_size_bytes() {
    python3 - "$1" <<'PY'
import sys
s = sys.argv[1].strip().upper().removesuffix("IB").removesuffix("B")
mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
print(int(s[:-1]) * mult[s[-1]] if s[-1] in mult else int(s))
PY
}

# Writes a raw image of BYTES random bytes to PATH, every MiB different (its number in its first 8 bytes),
# so no two blocks are equal and a store cannot share any.
bench_seed_image() { # PATH BYTES
    python3 - "$1" "$2" <<'PY'
import os, sys
path, size = sys.argv[1], int(sys.argv[2])
chunk = os.urandom(1 << 20)
with open(path, "wb") as f:
    for i in range(size // len(chunk)):
        f.write(i.to_bytes(8, "little") + chunk[8:])
PY
}
