#!/usr/bin/env bash
# NBD throughput of Cairn against peer servers, in one run, on one filesystem.
#
# Serves an equally prefilled disk with:
#   cairn        bin/cairn serve STORE            (the disk imported into a fresh store)
#   nbdkit       nbdkit file FILE.raw
#   qemu-raw     qemu-nbd -f raw FILE.raw
#   qemu-qcow2   qemu-nbd -f qcow2 FILE.qcow2     (fully allocated by qemu-img convert)
# and runs fio's nbd engine (libnbd, one connection, QD16) against each for four figures:
#   4 KiB random read, 4 KiB random write, 1 MiB sequential read, 1 MiB sequential write.
# Every figure is repeated REPS times, interleaved across servers (the server order rotates
# every repetition), and the table shows medians: IOPS for 4 KiB, MiB/s for 1 MiB; a second table
# shows Cairn's ratio to each peer within every repetition (runs back to back) and the median of
# those; a third the CPU time per request of the server process and of fio (the client). Every run
# starts from the same page-cache state (see settle_cache): its image synced and evicted, and for
# read figures read back once.
#
# Environment:
#   QUICK=1          smoke test: 1 GiB disk, 3 s runs (unless set below)
#   DISK_SIZE=4G     disk size (each server gets its own prefilled copy; all live in BENCH_DIR)
#   RUNTIME=10       seconds per fio run (after RAMP seconds of ramp-up)
#   RAMP=2           fio ramp_time in seconds
#   REPS=3           repetitions of every (figure, server)
#   SERVERS="cairn nbdkit qemu-raw qemu-qcow2"   subset/order of servers to run
#   FIGURES="randread randwrite seqread seqwrite"
#   CAIRN_SERVE_ARGS="..."   extra options for the "cairn" server (not for cairn-base)
#   CAIRN_BASE=DIR   also serve with another Cairn build ("cairn-base" column): DIR holds
#                    cairn-*.jar and lib/ (e.g. a copy of an older target/); for before/after
#   BENCH_DIR=DIR    where the images go (default: a fresh directory under /var/tmp)
#   RESULTS=FILE     also write every single result as CSV here
#   KEEP=1           keep the images afterwards
#   JAVA_TOOL_OPTIONS is passed to Cairn as usual (e.g. for JFR).
#
# Needs: fio with the nbd engine, nbdkit, qemu-nbd, qemu-img, nbdinfo, python3.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ "${QUICK:-0}" == 1 ]]; then
    DISK_SIZE=${DISK_SIZE:-1G}
    RUNTIME=${RUNTIME:-3}
    RAMP=${RAMP:-1}
fi
DISK_SIZE=${DISK_SIZE:-4G}
RUNTIME=${RUNTIME:-10}
RAMP=${RAMP:-2}
REPS=${REPS:-3}
SERVERS=${SERVERS:-"cairn nbdkit qemu-raw qemu-qcow2"}
FIGURES=${FIGURES:-"randread randwrite seqread seqwrite"}
[[ -n "${CAIRN_BASE:-}" && " $SERVERS " != *" cairn-base "* ]] && SERVERS="$SERVERS cairn-base"

for tool in fio nbdkit qemu-nbd qemu-img nbdinfo python3; do
    command -v "$tool" >/dev/null || { echo "nbd-peers: $tool is not installed" >&2; exit 1; }
done

source "$repo_root/bench/lib/images.sh"
disk_bytes=$(bench_size_bytes "$DISK_SIZE")

work=${BENCH_DIR:-}
if [[ -z "$work" ]]; then
    work=$(mktemp -d /var/tmp/cairn-nbd-peers.XXXXXX)
else
    mkdir -p "$work"
fi
declare -A pid port
log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cleanup() {
    local name
    for name in "${!pid[@]}"; do
        kill "${pid[$name]}" 2>/dev/null || true
    done
    for name in "${!pid[@]}"; do
        wait "${pid[$name]}" 2>/dev/null || true
    done
    if [[ "${KEEP:-0}" != 1 ]]; then
        rm -f "$work"/*.raw "$work"/*.qcow2 "$work"/*.cairn "$work"/*.log "$work"/seed.img
        rm -rf "$work/fio"
        rmdir "$work" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_ready() { # name uri
    local i
    for ((i = 0; i < 300; i++)); do
        if nbdinfo --size "$2" >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "${pid[$1]}" 2>/dev/null; then
            echo "nbd-peers: server $1 exited; see $work/$1.log" >&2
            cat "$work/$1.log" >&2 || true
            exit 1
        fi
        sleep 0.2
    done
    echo "nbd-peers: server $1 did not come up; see $work/$1.log" >&2
    exit 1
}

uri_of() { echo "nbd://127.0.0.1:${port[$1]}/${2:-}"; }

# ---- images: one random seed, copied for every server so all read and overwrite real blocks ----

log "images in $work ($(df -T "$work" | awk 'NR == 2 { print $2 }')), disk $DISK_SIZE"
seed=$work/seed.img
bench_seed_image "$seed" "$disk_bytes"

have() { [[ " $SERVERS " == *" $1 "* ]]; }

have nbdkit && cp --sparse=never "$seed" "$work/nbdkit.raw"
have qemu-raw && cp --sparse=never "$seed" "$work/qemu.raw"
have qemu-qcow2 && qemu-img convert -q -f raw -O qcow2 "$seed" "$work/qemu.qcow2"
store_bytes=$((disk_bytes * 2 + (1 << 30)))
for name in cairn cairn-base; do
    have "$name" || continue
    "$repo_root/bin/cairn" format "$work/$name.cairn" --size "$store_bytes" >/dev/null
    "$repo_root/bin/cairn" import "$work/$name.cairn" disk0 "$seed" >/dev/null
done
rm -f "$seed"
sync

# ---- servers ----

java_cmd() { # build dir -> java command line prefix for io.cairn.cli.Main
    local dir=$1 jar
    jar=$(ls "$dir"/cairn-*.jar | grep -v -e '-sources' -e '-tests' -e '-javadoc' | head -n 1)
    # shellcheck source=../bin/lib/java.sh
    source "$repo_root/bin/lib/java.sh"
    cairn_find_java
    echo "$JAVA --enable-native-access=ALL-UNNAMED --add-exports java.base/sun.nio.ch=ALL-UNNAMED -cp $jar:$dir/lib/* io.cairn.cli.Main"
}

for name in $SERVERS; do
    port[$name]=$(free_port)
    case $name in
        cairn)
            # shellcheck disable=SC2086
            "$repo_root/bin/cairn" serve "$work/cairn.cairn" --listen "127.0.0.1:${port[$name]}" ${CAIRN_SERVE_ARGS:-} \
                >"$work/$name.log" 2>&1 &
            ;;
        cairn-base)
            # shellcheck disable=SC2046
            $(java_cmd "$CAIRN_BASE") serve "$work/cairn-base.cairn" --listen "127.0.0.1:${port[$name]}" \
                >"$work/$name.log" 2>&1 &
            ;;
        nbdkit)
            nbdkit -f --exit-with-parent -i 127.0.0.1 -p "${port[$name]}" file "$work/nbdkit.raw" \
                >"$work/$name.log" 2>&1 &
            ;;
        qemu-raw)
            qemu-nbd -f raw -b 127.0.0.1 -p "${port[$name]}" -x '' --persistent --shared=8 "$work/qemu.raw" \
                >"$work/$name.log" 2>&1 &
            ;;
        qemu-qcow2)
            qemu-nbd -f qcow2 -b 127.0.0.1 -p "${port[$name]}" -x '' --persistent --shared=8 "$work/qemu.qcow2" \
                >"$work/$name.log" 2>&1 &
            ;;
        *) echo "nbd-peers: unknown server $name" >&2; exit 2 ;;
    esac
    pid[$name]=$!
done
for name in $SERVERS; do
    case $name in cairn | cairn-base) uri=$(uri_of "$name" disk0) ;; *) uri=$(uri_of "$name") ;; esac
    wait_ready "$name" "$uri"
    log "$name serving on port ${port[$name]}"
done

# ---- fio ----

mkdir -p "$work/fio"
results=$work/fio/results.csv
: >"$results"

cpu_ticks() { # pid -> user+system clock ticks of the process so far
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

run_fio() { # server figure seconds ramp -> prints "iops bw_bytes server_us_per_request client_us_per_request"
    local name=$1 figure=$2 seconds=$3 ramp=$4 uri rw bs ticks_before ticks_after
    case $name in cairn | cairn-base) uri=$(uri_of "$name" disk0) ;; *) uri=$(uri_of "$name") ;; esac
    case $figure in
        randread) rw=randread bs=4k ;;
        randwrite) rw=randwrite bs=4k ;;
        seqread) rw=read bs=1m ;;
        seqwrite) rw=write bs=1m ;;
        *) echo "nbd-peers: unknown figure $figure" >&2; exit 2 ;;
    esac
    ticks_before=$(cpu_ticks "${pid[$name]}")
    # fio writes state files into its working directory; keep them out of the repository.
    (cd "$work/fio" && fio --name="$name-$figure" --ioengine=nbd --uri="$uri" --rw="$rw" --bs="$bs" \
        --iodepth=16 --numjobs=1 --size="$disk_bytes" --time_based --runtime="$seconds" \
        --ramp_time="$ramp" --randrepeat=0 --output-format=json --output="$name-$figure.json" >/dev/null)
    ticks_after=$(cpu_ticks "${pid[$name]}")
    python3 - "$work/fio/$name-$figure.json" "$rw" "$((ticks_after - ticks_before))" "$(getconf CLK_TCK)" \
        "$seconds" "$ramp" <<'EOF'
import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0]
side = job["write" if "write" in sys.argv[2] else "read"]
if job.get("error"):
    sys.exit("fio error %s" % job["error"])
ticks, hz, seconds, ramp = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
# The server's CPU covers the ramp too; count the requests of the ramp at the measured rate.
requests = side["iops"] * (seconds + ramp)
server_us = ticks / hz * 1e6 / requests if requests else 0
# fio's own CPU (usr + sys, percent of the measured time): what the client spends on the same requests.
client_us = (job["usr_cpu"] + job["sys_cpu"]) / 100 * job["job_runtime"] * 1000 / side["total_ios"] if side["total_ios"] else 0
print("%.1f %d %.1f %.1f" % (side["iops"], side["bw_bytes"], server_us, client_us))
EOF
}

image_of() { # server -> its image file
    case $1 in
        cairn | cairn-base) echo "$work/$1.cairn" ;;
        nbdkit) echo "$work/nbdkit.raw" ;;
        qemu-raw) echo "$work/qemu.raw" ;;
        qemu-qcow2) echo "$work/qemu.qcow2" ;;
    esac
}

# Every run starts from the same page-cache state, whatever created the image or ran before:
#  - no dirty pages (sync), so no run pays for the writeback of the one before;
#  - nothing of any image in the page cache: the whole clean cache dropped where this user may
#    (/proc/sys/vm/drop_caches, as root), else every server's image evicted (posix_fadvise), so free
#    memory is the same for every run too; then, for read figures, the run's image read once sequentially.
# Why: how a file's pages entered the cache decides what a 4 KiB overwrite costs. After large
# sequential I/O (an import, cp, a sequential read) the kernel keeps large folios, and each 4 KiB
# write into one then costs ~30 us of ext4_block_write_begin instead of ~2 us: measured here,
# nbdkit-file 4K random writes fall from 48-68k to 15-18k IOPS after one `cat` of its image. Without
# this step the server whose image was written last by large writes loses for that reason alone.
# Evicting only the run's own image left the others cached: nbdkit's 4 KiB writes still swung
# 23,553-67,309 IOPS (45.8-14.1 us server CPU per write) within one run (session 10).
if (echo 1 >/proc/sys/vm/drop_caches) 2>/dev/null; then
    cache_reset=drop_caches
else
    cache_reset=fadvise
fi
echo "nbd-peers: page cache reset before every run: $cache_reset" >&2
settle_cache() { # server figure
    local image name
    image=$(image_of "$1")
    sync
    if [[ $cache_reset == drop_caches ]]; then
        echo 1 >/proc/sys/vm/drop_caches
    else
        for name in $SERVERS; do
            python3 - "$(image_of "$name")" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
os.close(fd)
EOF
        done
    fi
    case $2 in randread | seqread) cat "$image" >/dev/null ;; esac
}

# Warm-up: one short mixed pass per server (JIT, caches), not counted.
for name in $SERVERS; do
    for figure in randwrite randread; do
        run_fio "$name" "$figure" 2 0 >/dev/null
    done
done

read -r -a server_list <<<"$SERVERS"
count=${#server_list[@]}
for ((rep = 1; rep <= REPS; rep++)); do
    for figure in $FIGURES; do
        for ((k = 0; k < count; k++)); do
            name=${server_list[$(((k + rep - 1) % count))]}
            settle_cache "$name" "$figure"
            read -r iops bw server_us client_us < <(run_fio "$name" "$figure" "$RUNTIME" "$RAMP")
            echo "$figure,$name,$rep,$iops,$bw,$server_us,$client_us" >>"$results"
            log "rep $rep $figure $name: $iops IOPS, $((bw / 1048576)) MiB/s," \
                "CPU per request: server $server_us us, client (fio) $client_us us"
        done
    done
done
[[ -n "${RESULTS:-}" ]] && cp "$results" "$RESULTS"

# ---- table ----

python3 - "$results" "$SERVERS" "$FIGURES" "$REPS" "$RUNTIME" "$DISK_SIZE" <<'EOF'
import csv, statistics, sys
path, servers, figures, reps, runtime, disk = sys.argv[1:7]
servers, figures = servers.split(), figures.split()
rows = list(csv.reader(open(path)))
label = {"randread": "4K rand read QD16 (IOPS)", "randwrite": "4K rand write QD16 (IOPS)",
         "seqread": "1M seq read QD16 (MiB/s)", "seqwrite": "1M seq write QD16 (MiB/s)"}
def value(figure, row):
    return float(row[3]) if figure.startswith("rand") else int(row[4]) / 1048576
median = {}
for figure in figures:
    for server in servers:
        vals = [value(figure, r) for r in rows if r[0] == figure and r[1] == server]
        median[figure, server] = statistics.median(vals) if vals else None
cols = ["figure"] + servers
ratios = []
if "cairn" in servers:
    for peer, title in (("nbdkit", "cairn/nbdkit"), ("qemu-raw", "cairn/qemu-raw"), ("cairn-base", "cairn/cairn-base")):
        if peer in servers:
            ratios.append((peer, title))
cols += [t for _, t in ratios]
print(f"\nMedians of {reps} runs of {runtime} s each, disk {disk}, fio nbd engine, 1 job, QD16\n")
print("| " + " | ".join(cols) + " |")
print("|" + "|".join(["---"] + ["---:"] * (len(cols) - 1)) + "|")
for figure in figures:
    cells = [label[figure]]
    for server in servers:
        m = median[figure, server]
        cells.append("-" if m is None else f"{m:,.0f}")
    for peer, _ in ratios:
        a, b = median[figure, "cairn"], median[figure, peer]
        cells.append("-" if not a or not b else f"{a / b:.2f}")
    print("| " + " | ".join(cells) + " |")
# Paired ratios: within one repetition a figure runs on every server back to back, so the ratio of two
# servers' runs in the same repetition shares most of the machine's slow drifts; their median is steadier
# than the ratio of two medians when other jobs come and go.
if ratios:
    print("\nPaired ratios: per repetition (servers run back to back), and their median\n")
    print("| figure | " + " | ".join(f"{t} per repetition" for _, t in ratios) + " | " + " | ".join(f"{t} median" for _, t in ratios) + " |")
    print("|" + "|".join(["---"] + ["---"] * len(ratios) + ["---:"] * len(ratios)) + "|")
    for figure in figures:
        per_rep, medians = [], []
        for peer, _ in ratios:
            pairs = []
            for rep in sorted({r[2] for r in rows if r[0] == figure}, key=int):
                a = [value(figure, r) for r in rows if r[0] == figure and r[1] == "cairn" and r[2] == rep]
                b = [value(figure, r) for r in rows if r[0] == figure and r[1] == peer and r[2] == rep]
                if a and b and b[0] > 0:
                    pairs.append(a[0] / b[0])
            per_rep.append(" ".join(f"{x:.2f}" for x in pairs) or "-")
            medians.append(f"{statistics.median(pairs):.2f}" if pairs else "-")
        print("| " + " | ".join([label[figure]] + per_rep + medians) + " |")
# CPU per request: on a small machine server and client share the processors, so throughput follows
# the sum of both, not the server's share alone.
print("\nCPU per request, µs (medians): server + client (fio) = sum\n")
print("| figure | " + " | ".join(servers) + " |")
print("|" + "|".join(["---"] + ["---:"] * len(servers)) + "|")
for figure in figures:
    cells = [label[figure]]
    for server in servers:
        picked = [r for r in rows if r[0] == figure and r[1] == server and len(r) >= 7]
        if not picked:
            cells.append("-")
            continue
        srv = statistics.median(float(r[5]) for r in picked)
        cli = statistics.median(float(r[6]) for r in picked)
        cells.append(f"{srv:.1f} + {cli:.1f} = {srv + cli:.1f}")
    print("| " + " | ".join(cells) + " |")
EOF
