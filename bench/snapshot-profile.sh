#!/usr/bin/env bash
# Where the server's CPU goes per write while fio writes and a snapshot is taken every INTERVAL: the workload of
# bench/snapshot-latency.sh's "on" phases (a prefilled disk, 4 KiB random writes at QD16 over the nbd engine, a
# snapshot schedule keeping KEEP), sampled with perf for SECONDS, and the hottest symbols in microseconds of CPU
# per write (JIT-compiled methods named through the JVM's perf map).
#
#   bench/snapshot-profile.sh                  1 GiB disk, 10 s
#   TOP=60 bench/snapshot-profile.sh           more symbols
#
# Environment: DISK_SIZE=1G, SECONDS_SAMPLED=10, INTERVAL=10ms, KEEP=100, TOP=40, BENCH_DIR (default: a fresh
# directory under /var/tmp, removed afterwards). Needs fio with the nbd engine, nbdinfo, python3 and perf (with
# permission to sample the server: root, or kernel.perf_event_paranoid <= 1). The per-write figures are perf's
# samples of the server process divided by its writes; compare two builds in alternating runs, as the machine's
# load moves them.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DISK_SIZE=${DISK_SIZE:-1G}
SECONDS_SAMPLED=${SECONDS_SAMPLED:-10}
INTERVAL=${INTERVAL:-10ms}
KEEP=${KEEP:-100}
TOP=${TOP:-40}
FREQUENCY=999

source "$repo_root/bench/lib/images.sh"
source "$repo_root/bench/lib/serve.sh"
source "$repo_root/bin/lib/java.sh"
bench_require_tools snapshot-profile fio nbdinfo python3 perf
cairn_find_java
disk_bytes=$(bench_size_bytes "$DISK_SIZE")

work=${BENCH_DIR:-$(mktemp -d /var/tmp/cairn-snapshot-profile.XXXXXX)}
mkdir -p "$work"
store=$work/store.cairn
server_pid=
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$store" "$work"/*.json "$work"/*.log "$work/perf.data" "$work/seed.img"
    rmdir "$work" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_seed_image "$work/seed.img" "$disk_bytes"
"$repo_root/bin/cairn" format "$store" --size $((disk_bytes * 3 + (1 << 30))) >/dev/null
"$repo_root/bin/cairn" import "$store" disk0 "$work/seed.img" >/dev/null
rm -f "$work/seed.img"
bench_serve "$store" "$work/server.log" disk0
uri="nbd://127.0.0.1:$port/disk0"

fio_run() { # NAME SECONDS
    fio --name="$1" --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --iodepth=16 --numjobs=1 \
        --size="$disk_bytes" --time_based --runtime="$2" --randrepeat=0 --output-format=json \
        --output="$work/$1.json" >/dev/null
}

# Warm-up (JIT, node cache) with snapshots, then the schedule again from a disk that shares nothing.
admin schedule "$store" disk0 --every "$INTERVAL" --keep "$KEEP" >/dev/null
fio_run warmup 5
python3 "$repo_root/bench/lib/schedule_stop.py" "$store" disk0 >/dev/null
admin schedule "$store" disk0 --every "$INTERVAL" --keep "$KEEP" >/dev/null
fio_run settle 3

cpu_before=$(server_cpu_ticks)
perf record -F "$FREQUENCY" -p "$server_pid" -o "$work/perf.data" -- sleep "$SECONDS_SAMPLED" >/dev/null 2>&1 &
perf_pid=$!
fio_run sampled "$SECONDS_SAMPLED"
wait "$perf_pid" || true
cpu_ticks=$(($(server_cpu_ticks) - cpu_before))
"$(dirname "$JAVA")/jcmd" "$server_pid" Compiler.perfmap >/dev/null
writes=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["jobs"][0]["write"]["total_ios"])' \
    "$work/sampled.json")
python3 -c 'import sys; t, hz, n, s = map(int, sys.argv[1:]); print("%d writes in %d s (%d IOPS), server CPU %.1f us per write, load %s" % (n, s, n // s, t / hz * 1e6 / n, open("/proc/loadavg").read().split()[0]))' \
    "$cpu_ticks" "$(getconf CLK_TCK)" "$writes" "$SECONDS_SAMPLED"
perf report -i "$work/perf.data" --no-children --sort dso,symbol --stdio -n 2>/dev/null | grep -E '^ +[0-9]' \
    | head -"$TOP" | awk -v n="$writes" -v hz="$FREQUENCY" '{ c = $2; $1 = ""; $2 = ""; printf "%7.2f us/write %s\n", c / hz * 1e6 / n, $0 }'
