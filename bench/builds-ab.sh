#!/usr/bin/env bash
# One NBD figure for several Cairn builds and nbdkit's file plugin, run after run in turn.
#
#   bench/builds-ab.sh FIGURE JAR...
#
# FIGURE is randread or randwrite (4 KiB, QD16) or read or write (1 MiB sequential, QD16). Each JAR is a
# Cairn build's jar (the dependencies are taken from this checkout's target/lib; builds that need other
# libraries cannot be compared this way). Every round starts each server afresh on the same store (or,
# for nbdkit, the same raw image), after syncing and dropping the page cache (where not permitted, evicting
# both files from it; for read figures, reading them back once), warms up for 2 s, then runs fio's nbd engine for RUNTIME seconds.
# The rounds alternate the builds, which cancels slow drifts of a loaded machine's speed (not its bursts).
# Prints every run, then per server the median IOPS, the median server CPU per request (user + system
# time of the server process over the run, from /proc/PID/stat) and the ratio to nbdkit.
#
# Environment: RUNTIME=5 (s per run), REPS=4 (rounds), DISK_SIZE=1G, BENCH_DIR (default: fresh under /var/tmp).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
figure=${1:?usage: builds-ab.sh randread|randwrite|read|write JAR...}
shift
[[ $# -ge 1 ]] || { echo "builds-ab: give at least one Cairn jar" >&2; exit 2; }
case $figure in
    randread | randwrite) block=4k ;;
    read | write) block=1m ;;
    *) echo "builds-ab: unknown figure '$figure' (randread, randwrite, read, write)" >&2; exit 2 ;;
esac
for jar in "$@"; do
    [[ -f $jar ]] || { echo "builds-ab: no such jar: $jar" >&2; exit 2; }
done
for tool in fio nbdkit nbdinfo python3; do
    command -v "$tool" >/dev/null || { echo "builds-ab: $tool is not installed" >&2; exit 1; }
done
RUNTIME=${RUNTIME:-5}
REPS=${REPS:-4}
DISK_SIZE=${DISK_SIZE:-1G}
source "$repo_root/bin/lib/java.sh"
cairn_find_java
[[ -d $repo_root/target/lib ]] || "$repo_root/bin/cairn" --version >/dev/null

work=${BENCH_DIR:-$(mktemp -d /var/tmp/cairn-builds-ab.XXXXXX)}
mkdir -p "$work"
server_pid=
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    rm -f "$work"/store.cairn "$work"/image.raw "$work"/seed.img "$work"/*.json "$work"/*.log
    rmdir "$work" 2>/dev/null || true
}
trap cleanup EXIT

source "$repo_root/bench/lib/images.sh"
disk_bytes=$(bench_size_bytes "$DISK_SIZE")
bench_seed_image "$work/seed.img" "$disk_bytes"
"$repo_root/bin/cairn" format "$work/store.cairn" --size $((disk_bytes * 2 + (1 << 30))) >/dev/null
"$repo_root/bin/cairn" import "$work/store.cairn" disk0 "$work/seed.img" >/dev/null
cp --sparse=never "$work/seed.img" "$work/image.raw"
rm -f "$work/seed.img"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

settle() {
    sync
    # The whole clean page cache where this user may drop it (as root), as bench/nbd-peers.sh does; else both files.
    if ! (echo 1 >/proc/sys/vm/drop_caches) 2>/dev/null; then
        python3 - "$work/store.cairn" "$work/image.raw" <<'PY'
import os, sys
for path in sys.argv[1:]:
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
PY
    fi
    case $figure in *read) cat "$work/store.cairn" "$work/image.raw" >/dev/null ;; esac
}

run() { # name uri command...
    local name=$1 uri=$2 i before after
    shift 2
    settle
    "$@" >"$work/$name.log" 2>&1 &
    server_pid=$!
    for ((i = 0; i < 150; i++)); do
        nbdinfo --size "$uri" >/dev/null 2>&1 && break
        kill -0 "$server_pid" 2>/dev/null || { echo "builds-ab: server $name exited; see $work/$name.log" >&2; exit 1; }
        sleep 0.2
    done
    fio --name=warm --ioengine=nbd --uri="$uri" --rw="$figure" --bs=$block --iodepth=16 --size="$DISK_SIZE" \
        --time_based --runtime=2 --output-format=terse >/dev/null 2>&1
    before=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
    fio --name=run --ioengine=nbd --uri="$uri" --rw="$figure" --bs=$block --iodepth=16 --size="$DISK_SIZE" \
        --time_based --runtime="$RUNTIME" --randrepeat=0 --output-format=json 2>/dev/null | sed -n '/^{/,$p' >"$work/$name.json"
    after=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=
    python3 - "$work/$name.json" "$name" "$figure" "$before" "$after" "$(getconf CLK_TCK)" <<'PY'
import json, sys
path, name, figure, before, after, ticks = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:])
job = json.load(open(path))["jobs"][0]
side = job["write" if "write" in figure else "read"]
print(f"{name} {side['iops']:.0f} {(after - before) / ticks * 1e6 / side['total_ios']:.1f}")
PY
}

results=()
for ((rep = 1; rep <= REPS; rep++)); do
    for jar in "$@"; do
        name=$(basename "$jar" .jar)
        line=$(run "$name" "nbd://127.0.0.1:$port/disk0" "$JAVA" --enable-native-access=ALL-UNNAMED --add-exports java.base/sun.nio.ch=ALL-UNNAMED \
            -cp "$jar:$repo_root/target/lib/*" io.cairn.cli.Main serve "$work/store.cairn" --listen "127.0.0.1:$port")
        [[ -n $line ]] || exit 1
        echo "round $rep: $line" >&2
        results+=("$line")
    done
    line=$(run nbdkit "nbd://127.0.0.1:$port/" nbdkit -f -p "$port" -i 127.0.0.1 file "$work/image.raw")
    [[ -n $line ]] || exit 1
    echo "round $rep: $line" >&2
    results+=("$line")
done
printf '%s\n' "${results[@]}" | python3 -c '
import statistics, sys, collections
runs = collections.defaultdict(list)
for line in sys.stdin:
    name, iops, cpu = line.split()
    runs[name].append((float(iops), float(cpu)))
base = statistics.median(i for i, _ in runs["nbdkit"])
print("%-24s %12s %22s %10s" % ("server", "median IOPS", "server CPU us/request", "vs nbdkit"))
for name, values in runs.items():
    iops = statistics.median(i for i, _ in values)
    cpu = statistics.median(c for _, c in values)
    print(f"{name:<24} {iops:>12.0f} {cpu:>22.1f} {iops / base:>10.2f}")
'
