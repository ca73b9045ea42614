#!/usr/bin/env bash
# Several node processes on one store (serve --cluster) against one process serving the same disks.
#
# Formats one store with DISKS disks and measures, with fio's nbd engine (QD16, one job per disk, all
# disks at once, REPS interleaved repetitions, medians):
#   single   one `bin/cairn serve STORE` serving every disk
#   cluster  DISKS `bin/cairn serve STORE --cluster ZK --node nI` processes, disk I moved to node I
# for 4 KiB random writes, plain (`randwrite`) and with a FLUSH every 16 writes (`randwrite-flush`, which
# makes every node commit often: the host-wide commit lock and the rebase of other nodes' records).
# Prints aggregate IOPS per setup and the ratio cluster/single.
#
# Environment: DISKS=3, DISK_SIZE=1G, RUNTIME=10, RAMP=2, REPS=3, FIGURES="randwrite randwrite-flush",
#              BENCH_DIR=DIR (default: fresh directory under /var/tmp), KEEP=1 keeps it.
# Needs: fio with the nbd engine, nbdinfo, python3.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
# shellcheck source=../bin/lib/java.sh
source "$repo_root/bin/lib/java.sh"
cairn_find_java || exit 1
# shellcheck source=lib/classpath.sh
source bench/lib/classpath.sh

DISKS=${DISKS:-3}
DISK_SIZE=${DISK_SIZE:-1G}
RUNTIME=${RUNTIME:-10}
RAMP=${RAMP:-2}
REPS=${REPS:-3}
FIGURES=${FIGURES:-"randwrite randwrite-flush"}
for tool in fio nbdinfo python3; do
    command -v "$tool" >/dev/null || { echo "cluster: $tool is not installed" >&2; exit 1; }
done

work=${BENCH_DIR:-$(mktemp -d /var/tmp/cairn-cluster.XXXXXX)}
mkdir -p "$work"
store=$work/store.cairn
pids=()
log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
stop_servers() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}
cleanup() {
    stop_servers
    [[ -n "${zk_pid:-}" ]] && { exec 9>&-; wait "$zk_pid" 2>/dev/null || true; }
    [[ "${KEEP:-0}" == 1 ]] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_uri() {
    local i
    for ((i = 0; i < 300; i++)); do nbdinfo --size "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done
    echo "cluster: $1 did not come up" >&2; exit 1
}

log "building; store in $work"
cairn_bench_classpath
bin/cairn format "$store" --size $(( ${DISK_SIZE%G} * DISKS + 2 ))G >/dev/null
for ((i = 1; i <= DISKS; i++)); do bin/cairn create "$store" "d$i" --size "$DISK_SIZE" >/dev/null; done

# ZooKeeper: the tests' in-process server, on its own; it stops when fd 9 closes.
coproc ZK { "$JAVA" -cp "$classpath" io.cairn.bench.StandaloneZooKeeper; }
zk_pid=$ZK_PID
exec 9>&"${ZK[1]}"
read -r zk_connect <&"${ZK[0]}"
log "ZooKeeper at $zk_connect"

declare -A uri
start_single() {
    local port; port=$(free_port)
    bin/cairn serve "$store" --listen "127.0.0.1:$port" >"$work/single.log" 2>&1 &
    pids+=($!)
    for ((i = 1; i <= DISKS; i++)); do uri[$i]="nbd://127.0.0.1:$port/d$i"; done
    wait_uri "${uri[1]}"
}
start_cluster() {
    local port
    for ((i = 1; i <= DISKS; i++)); do
        port=$(free_port)
        bin/cairn serve "$store" --cluster "$zk_connect" --node "n$i" --listen "127.0.0.1:$port" >"$work/n$i.log" 2>&1 &
        pids+=($!)
        uri[$i]="nbd://127.0.0.1:$port/d$i"
    done
    for ((i = 1; i <= DISKS; i++)); do
        local tries
        for ((tries = 0; tries < 600; tries++)); do
            grep -q "Cairn is serving" "$work/n$i.log" && break
            sleep 0.1
        done
    done
    for ((i = 1; i <= DISKS; i++)); do
        # A disk created offline has no holder: move it to its node (from the second repetition on, the
        # node takes it back by itself and migrate says it is there already).
        bin/cairn migrate "$store" "d$i" --to "n$i" >/dev/null 2>&1 || true
        wait_uri "${uri[$i]}"
    done
}

run_figure() { # figure -> aggregate IOPS
    local figure=$1 extra=() i fios=()
    [[ $figure == randwrite-flush ]] && extra=(--fsync=16)
    for ((i = 1; i <= DISKS; i++)); do
        fio --name="d$i" --ioengine=nbd --uri="${uri[$i]}" --rw=randwrite --bs=4k --iodepth=16 \
            --time_based --runtime="$RUNTIME" --ramp_time="$RAMP" --randrepeat=0 --norandommap \
            "${extra[@]}" --output-format=json --output="$work/fio-$i.json" >/dev/null &
        fios+=($!)
    done
    wait "${fios[@]}"
    python3 - "$work" "$DISKS" <<'PY'
import json, sys
work, disks = sys.argv[1], int(sys.argv[2])
total = 0
for i in range(1, disks + 1):
    text = open(f"{work}/fio-{i}.json").read()
    total += json.loads(text[text.index("{"):])["jobs"][0]["write"]["iops"]
print(int(total))
PY
}

results=$work/results.txt
: >"$results"
for ((rep = 1; rep <= REPS; rep++)); do
    for setup in single cluster; do
        "start_$setup"
        for figure in $FIGURES; do
            iops=$(run_figure "$figure")
            log "rep $rep $setup $figure: $iops IOPS"
            echo "$setup $figure $iops" >>"$results"
        done
        stop_servers
    done
done

python3 - "$DISKS" "$FIGURES" "$results" <<'PY'
import collections, statistics, sys
disks, figures = int(sys.argv[1]), sys.argv[2].split()
results = collections.defaultdict(list)
for line in open(sys.argv[3]):
    setup, figure, iops = line.split()
    results[f"{setup},{figure}"].append(int(iops))
print(f"{disks} disks, fio QD16 4 KiB per disk, all at once; medians of aggregate IOPS")
print(f"{'figure':18s} {'single':>10s} {'cluster':>10s} {'cluster/single':>15s}")
for figure in figures:
    single = statistics.median(results[f"single,{figure}"])
    cluster = statistics.median(results[f"cluster,{figure}"])
    print(f"{figure:18s} {single:10.0f} {cluster:10.0f} {cluster / single:15.2f}")
PY
