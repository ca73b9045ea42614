#!/usr/bin/env bash
# Snapshot and clone latency at the server while fio writes at full speed, and what continuous
# snapshots cost in throughput.
#
# Serves a prefilled disk with bin/cairn serve and runs fio's nbd engine (libnbd, one connection,
# 4 KiB random writes, QD16, no flushes) against it in phases of PHASE_SECONDS each:
#   off    no snapshots, no flushes (the writes stay in the page cache: no durability at all)
#   flush  an NBD FLUSH every INTERVAL from a second connection (bench/lib/nbd_flusher.py): the
#          durability continuous snapshots give, without the snapshots
#   on     a snapshot every INTERVAL (cairn schedule STORE disk0 --every INTERVAL --keep KEEP),
#          each committed in the background (group commits)
# REPS rounds, the order of the modes rotating every round, every phase after a sync. Each phase also
# reports the server's CPU time (user + system, /proc/PID/stat) per write fio completed: on a loaded
# machine IOPS swing with the load, CPU per write much less. Then, with fio writing
# and the schedule on again, CLONES clones of one snapshot, one after another, each command returning
# once its clone is taken (--no-wait; the server commits them in the background and still measures
# when each became durable).
#
# During every "on" phase a probe in another process (bench/lib/SchedulingProbe.java) wakes every INTERVAL
# and times 50 us of CPU work: its p99 is the floor any short operation measured in those minutes has from
# preemption alone (the machine's load), printed beside the snapshot latencies.
#
# Latencies are the server's own (cairn stats: from the call into the store to the moment the change
# is made = "taken", and to the end of the commit that made it durable = "durable"); the commands
# travel over the admin socket from one Python process (bench/lib/cairn_admin.py), so no JVM start
# is in any figure.
#
# Environment:
#   QUICK=1            smoke test: 1 GiB disk, 3 rounds of 5 s phases (~1,500 snapshots), 100 clones
#   DISK_SIZE=4G       disk size
#   PHASE_SECONDS=35   seconds per fio phase (3 "on" phases of 35 s at 10 ms = ~10,500 snapshots)
#   REPS=3             rounds of (off, flush, on)
#   INTERVAL=10ms      snapshot interval
#   KEEP=100           snapshots the schedule keeps
#   CLONES=1000        clones in the clone phase
#   BENCH_DIR=DIR      where the store goes (default: a fresh directory under /var/tmp)
#   KEEP_FILES=1       keep the store and logs afterwards
#   JDK_JAVA_OPTIONS   passed to the server as usual (e.g. -XX:StartFlightRecording; on one machine
#                      that option crashed the JVM at start when given in JAVA_TOOL_OPTIONS, not here)
#   JFR_DUMP=FILE      dump the server's flight recording there before stopping it (needs JAVA_HOME), and
#                      say what overlapped each snapshot and clone over 0.5 ms (bench/lib/change_tail.py:
#                      the collector's pauses, metadata-lock holds and where they were let go)
#
# Needs: fio with the nbd engine, nbdinfo, python3.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ "${QUICK:-0}" == 1 ]]; then
    DISK_SIZE=${DISK_SIZE:-1G}
    PHASE_SECONDS=${PHASE_SECONDS:-5}
    CLONES=${CLONES:-100}
fi
DISK_SIZE=${DISK_SIZE:-4G}
PHASE_SECONDS=${PHASE_SECONDS:-35}
REPS=${REPS:-3}
INTERVAL=${INTERVAL:-10ms}
KEEP=${KEEP:-100}
CLONES=${CLONES:-1000}

source "$repo_root/bench/lib/images.sh"
source "$repo_root/bench/lib/serve.sh"
bench_require_tools snapshot-latency fio nbdinfo python3
disk_bytes=$(bench_size_bytes "$DISK_SIZE")

work=${BENCH_DIR:-}
if [[ -z "$work" ]]; then
    work=$(mktemp -d /var/tmp/cairn-snapshot-latency.XXXXXX)
else
    mkdir -p "$work"
fi
store=$work/store.cairn
server_pid=
fio_pid=
flusher_pid=
probe_pid=

cleanup() {
    [[ -n "$fio_pid" ]] && kill "$fio_pid" 2>/dev/null || true
    [[ -n "$flusher_pid" ]] && kill "$flusher_pid" 2>/dev/null || true
    [[ -n "$probe_pid" ]] && kill "$probe_pid" 2>/dev/null || true
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ "${KEEP_FILES:-0}" != 1 ]]; then
        rm -rf "$work/fio" "$work/probe" "$store" "$work"/*.log "$work/seed.img" "$work"/*.csv "$work"/*.json "$work"/*.txt \
            "$work/flusher.out"
        rmdir "$work" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- a prefilled disk: every block mapped, so writes overwrite (in place, or copy-on-write after a snapshot) ----

log "store in $work ($(df -T "$work" | awk 'NR == 2 { print $2 }')), disk $DISK_SIZE"
bench_seed_image "$work/seed.img" "$disk_bytes"
"$repo_root/bin/cairn" format "$store" --size $((disk_bytes * 3 + (1 << 30))) >/dev/null
"$repo_root/bin/cairn" import "$store" disk0 "$work/seed.img" >/dev/null
rm -f "$work/seed.img"
sync

bench_serve "$store" "$work/server.log" disk0
uri="nbd://127.0.0.1:$port/disk0"
log "serving $uri (pid $server_pid)"

mkdir -p "$work/fio" "$work/probe"
source "$repo_root/bin/lib/java.sh"
cairn_find_java
"$(dirname "$JAVA")/javac" -d "$work/probe" "$repo_root/bench/lib/SchedulingProbe.java"
fio_job() { # name seconds -> runs fio in the background, sets fio_pid
    (cd "$work/fio" && exec fio --name="$1" --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --iodepth=16 \
        --numjobs=1 --size="$disk_bytes" --time_based --runtime="$2" --randrepeat=0 \
        --output-format=json --output="$1.json" >/dev/null) &
    fio_pid=$!
}
clock_ticks_per_second=$(getconf CLK_TCK)
fio_writes() { python3 -c '
import json, sys
print(json.load(open(sys.argv[1]))["jobs"][0]["write"]["total_ios"])' "$work/fio/$1.json"; }
fio_iops() { python3 -c '
import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0]
if job.get("error"):
    sys.exit("fio error %s" % job["error"])
print("%.1f" % job["write"]["iops"])' "$work/fio/$1.json"; }

# Stops the schedule and deletes the snapshots it kept, so that every phase starts from a disk that
# shares nothing (else the next phase would copy-on-write every block, and the store would fill up).
# Prints how many snapshots the schedule took.
stop_schedule() { python3 "$repo_root/bench/lib/schedule_stop.py" "$store" disk0; }

# Warm-up (JIT, node cache), with snapshots so that path is compiled too; not counted.
admin schedule "$store" disk0 --every "$INTERVAL" --keep "$KEEP" >/dev/null
fio_job warmup 5
wait "$fio_pid"
fio_pid=
stop_schedule >/dev/null
admin stats "$store" --reset >/dev/null

interval_seconds=$(python3 -c '
import re, sys
amount, unit = re.fullmatch(r"([0-9]+)(us|ms|s)", sys.argv[1]).groups()
print(int(amount) / {"us": 1e6, "ms": 1e3, "s": 1}[unit])' "$INTERVAL")

# ---- throughput: rounds of (off, flush, on), the order rotating ----

: >"$work/phases.csv"
snapshots_taken=0
modes=(off flush on)
for ((rep = 1; rep <= REPS; rep++)); do
    for ((k = 0; k < 3; k++)); do
        mode=${modes[$(((k + rep - 1) % 3))]}
        note=
        sync
        case $mode in
            on)
                "$JAVA" -Xmx32m -XX:+UseSerialGC -cp "$work/probe" SchedulingProbe \
                    "$(python3 -c 'import sys; print(round(float(sys.argv[1]) * 1e6))' "$interval_seconds")" 50 \
                    "$work/probe-$rep.json" &
                probe_pid=$!
                admin schedule "$store" disk0 --every "$INTERVAL" --keep "$KEEP" >/dev/null
                ;;
            flush)
                python3 "$repo_root/bench/lib/nbd_flusher.py" 127.0.0.1 "$port" disk0 "$interval_seconds" \
                    >"$work/flusher.out" &
                flusher_pid=$!
                ;;
        esac
        cpu_before=$(server_cpu_ticks)
        fio_job "$mode-$rep" "$PHASE_SECONDS"
        wait "$fio_pid"
        fio_pid=
        cpu_ticks=$(($(server_cpu_ticks) - cpu_before))
        case $mode in
            on)
                kill -TERM "$probe_pid"
                wait "$probe_pid" || true
                probe_pid=
                taken=$(stop_schedule)
                snapshots_taken=$((snapshots_taken + taken))
                note=", $taken snapshots"
                ;;
            flush)
                kill -TERM "$flusher_pid"
                wait "$flusher_pid"
                flusher_pid=
                note=", $(cat "$work/flusher.out") flushes"
                ;;
        esac
        iops=$(fio_iops "$mode-$rep")
        cpu_us_per_write=$(python3 -c 'import sys; print("%.1f" % (int(sys.argv[1]) / int(sys.argv[2]) * 1e6 / int(sys.argv[3])))' \
            "$cpu_ticks" "$clock_ticks_per_second" "$(fio_writes "$mode-$rep")")
        echo "$mode,$rep,$iops,$cpu_us_per_write" >>"$work/phases.csv"
        log "rep $rep $mode: $iops IOPS, server CPU $cpu_us_per_write us/write$note"
    done
done
admin stats "$store" --json --reset >"$work/snapshot-stats.json"
admin stats "$store" >"$work/snapshot-stats.txt"

# ---- clones: one snapshot cloned CLONES times while fio writes and the schedule runs ----

admin snapshot "$store" disk0 --label base >/dev/null
admin schedule "$store" disk0 --every "$INTERVAL" --keep "$KEEP" >/dev/null
fio_job clones 3600
python3 - "$repo_root/bench/lib" "$store" "$CLONES" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import cairn_admin
store, count = sys.argv[2], int(sys.argv[3])
for i in range(count):
    cairn_admin.run_ok(store, ["create", store, "clone-%d" % i, "--from", "disk0@base", "--no-wait"])
PY
kill "$fio_pid" 2>/dev/null || true
wait "$fio_pid" 2>/dev/null || true
fio_pid=
admin schedule "$store" disk0 --stop >/dev/null
admin stats "$store" --json >"$work/clone-stats.json"
if [[ -n "${JFR_DUMP:-}" ]]; then
    # The server's recording (JDK_JAVA_OPTIONS=-XX:StartFlightRecording) is dumped here: a server stopped
    # by a signal halts without the dump at exit.
    "$JAVA_HOME/bin/jcmd" "$server_pid" JFR.dump filename="$JFR_DUMP" >/dev/null
fi

# ---- report ----

python3 - "$work/phases.csv" "$work/snapshot-stats.json" "$work/clone-stats.json" "$snapshots_taken" \
    "$INTERVAL" "$KEEP" "$PHASE_SECONDS" "$REPS" "$DISK_SIZE" "$CLONES" "$work" <<'PY'
import csv, json, os, statistics, sys
phases, snap_path, clone_path, taken, interval, keep, seconds, reps, disk, clones, work = sys.argv[1:12]
rows = list(csv.reader(open(phases)))
runs = {mode: [float(r[2]) for r in rows if r[0] == mode] for mode in ("off", "flush", "on")}
median = {mode: statistics.median(values) for mode, values in runs.items()}
cpu = {mode: [float(r[3]) for r in rows if r[0] == mode] for mode in ("off", "flush", "on")}
snap = json.load(open(snap_path))
clone = json.load(open(clone_path))
def ms(n):
    return "%.3f ms" % (n / 1e6)
def line(title, s):
    if s["count"] == 0:
        return "| %s | 0 | - | - | - | - | - |" % title
    return "| %s | %d | %s | %s | %s | %s | %s |" % (title, s["count"], ms(s["p50Nanos"]), ms(s["p90Nanos"]),
                                                    ms(s["p99Nanos"]), ms(s["p999Nanos"]), ms(s["maxNanos"]))
print()
print("fio randwrite 4K QD16 (nbd engine, no flushes), disk %s, %s phases of %s s; snapshot every %s, keep %s"
      % (disk, reps, seconds, interval, keep))
print()
print("| fio IOPS | runs | median | server CPU per write (median) |")
print("|---|---|---:|---:|")
titles = {"off": "no snapshots, no flushes", "flush": "a FLUSH every %s" % interval,
          "on": "a snapshot every %s" % interval}
for mode in ("off", "flush", "on"):
    print("| %s | %s | %.0f | %.1f us |" % (titles[mode], " ".join("%.0f" % v for v in runs[mode]), median[mode],
                                          statistics.median(cpu[mode])))
print()
for base in ("flush", "off"):
    ratio = median["on"] / median[base]
    print("snapshots / %s: %.3f (cost %.1f%%)" % (titles[base], ratio, (1 - ratio) * 100))
print("server CPU per write, snapshots / %s: %.2f" % (titles["flush"], statistics.median(cpu["on"]) / statistics.median(cpu["flush"])))
print("%s snapshots taken" % taken)
print()
print("| at the server | count | p50 | p90 | p99 | p99.9 | max |")
print("|---|---:|---:|---:|---:|---:|---:|")
print(line("snapshot taken", snap["snapshot_taken"]))
print(line("of that, waiting for the metadata lock", snap["snapshot_lock_wait"]))
print(line("snapshot durable", snap["snapshot_durable"]))
print(line("commit (every commit of the throughput phases)", snap["commit"]))
print(line("clone taken (%s clones)" % clones, clone["clone_taken"]))
print(line("of that, waiting for the metadata lock", clone["clone_lock_wait"]))
print(line("clone durable", clone["clone_durable"]))
print()
print("The floor: 50 us of CPU work every %s in another process during the snapshot phases (preemption alone):" % interval)
print()
print("| probe | count | p50 | p90 | p99 | p99.9 | max |")
print("|---|---:|---:|---:|---:|---:|---:|")
for rep in range(1, int(reps) + 1):
    path = os.path.join(work, "probe-%d.json" % rep)
    if os.path.exists(path):
        probe = json.load(open(path))
        print(line("round %d: 50 us of work took" % rep, probe["work"]))
        print(line("round %d: woke late by" % rep, probe["late"]))
PY
if [[ -n "${JFR_DUMP:-}" ]]; then
    echo
    echo "Snapshots and clones over 0.5 ms in the recording, and what overlapped them (bench/lib/change_tail.py):"
    echo
    python3 "$repo_root/bench/lib/change_tail.py" "$JFR_DUMP" --over-ms 0.5 | tail -n 12
fi
