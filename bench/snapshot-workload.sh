#!/usr/bin/env bash
# What snapshots every 10 ms cost workloads a VM fleet really runs (Parallax measured 4% on "the
# decompression and build of a Linux 2.6 kernel", seed 003 Figure 5.8), in one run. The worst case,
# 4 KiB random overwrites spread uniformly over the whole disk, is bench/snapshot-latency.sh's.
#
# One server (bin/cairn serve STORE) and three workloads, each in phases of three modes:
#   off    no snapshots and no FLUSH from outside (ext4 still flushes when it commits its journal and
#          at the final sync)
#   flush  an NBD FLUSH every INTERVAL from a second connection (bench/lib/nbd_flusher.py): the
#          durability continuous snapshots give, without the snapshots
#   on     a snapshot every INTERVAL (cairn schedule STORE DISK --every INTERVAL --keep KEEP)
# REPS rounds, the order of the modes rotating every round; medians per mode. The workloads:
#   ext4   "decompress and build": ext4 on a Cairn disk through nbdfuse and a loop device (as
#          src/test/java/io/cairn/cli/Ext4IT.java), a source-like tree untarred into it (a tar of
#          TREE_DIRS made once per run in /tmp), then a "build" that reads every file and writes a
#          zlib-compressed object of it into a second tree, then sync. Figure: elapsed seconds (lower
#          is better). Skipped, saying why, where the machine cannot mount (no /dev/fuse, no loop device,
#          a tool missing).
#   seq    fio (nbd engine, one connection, QD16) sequential 64 KiB writes of fresh data over a whole
#          unwritten disk of SEQ_SIZE. Figure: MiB/s.
#   zipf   fio 4 KiB random writes, random_distribution=zipf:1.2 (a hot set), QD16, PHASE_SECONDS,
#          over a prefilled disk of ZIPF_SIZE. Figure: IOPS.
#
# Every phase starts from the same state:
#   ext4, seq  a fresh empty disk per phase (cairn create through the server), made, used and deleted
#              with its snapshots (cairn delete --with-snapshots); for ext4 mkfs.ext4 (inode tables and
#              journal written in full, so no lazy initialisation runs later) and the mount happen
#              before the clock starts.
#   zipf       one disk prefilled once (every block mapped, nothing shared); after an "on" phase the
#              schedule is stopped and the snapshots it kept are deleted (bench/lib/schedule_stop.py), so
#              every phase starts with every block mapped and owned by the disk alone, as the first did.
#   Between phases: sync and a pause of SETTLE_SECONDS (the deletions' reclamation runs in the background).
#
# Each phase also reports the server's CPU time (user + system, /proc/PID/stat; per write for fio, per
# phase for ext4; steadier than throughput on a loaded machine) and the copy-on-write the server did
# (cairn stats --json, "copy_on_write": leaves copied because a snapshot shared them, nodes moved after a
# commit): leaves copied per snapshot is the number of distinct 2 MiB leaf ranges the workload wrote per
# interval. Per workload, the schedule's snapshot count and its taken p50/p99 (cairn stats --json).
#
# Environment:
#   QUICK=1            smoke test (~2 min): TREE_DIRS=/usr/lib/python3.11, 1 GiB disks, 3 s zipf phases
#   TREE_DIRS="/usr/share/doc /usr/include /usr/lib/python3*"   what the source-like tar holds
#   EXT4_SIZE=2G       ext4 disk size
#   SEQ_SIZE=8G        seq disk size = bytes fio writes per phase
#   ZIPF_SIZE=4G       zipf disk size
#   PHASE_SECONDS=20   seconds per zipf phase
#   REPS=3             rounds of (off, flush, on) per workload
#   INTERVAL=10ms      snapshot and FLUSH interval
#   KEEP=100           snapshots the schedule keeps
#   WORKLOADS="ext4 seq zipf"
#   SETTLE_SECONDS=2   pause between phases
#   BENCH_DIR=DIR      where the store goes (default: a fresh directory under /var/tmp)
#   KEEP_FILES=1       keep the store, the tar and the logs afterwards
#
# Needs: fio with the nbd engine, nbdinfo, python3; for ext4 also nbdfuse, fusermount3, mkfs.ext4,
# mount, umount, losetup, tar, and root (or whoever may use loop devices).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ "${QUICK:-0}" == 1 ]]; then
    TREE_DIRS=${TREE_DIRS:-/usr/lib/python3.11}
    EXT4_SIZE=${EXT4_SIZE:-1G}
    SEQ_SIZE=${SEQ_SIZE:-1G}
    ZIPF_SIZE=${ZIPF_SIZE:-1G}
    PHASE_SECONDS=${PHASE_SECONDS:-3}
    SETTLE_SECONDS=${SETTLE_SECONDS:-1}
fi
TREE_DIRS=${TREE_DIRS:-"/usr/share/doc /usr/include $(echo /usr/lib/python3*)"}
EXT4_SIZE=${EXT4_SIZE:-2G}
SEQ_SIZE=${SEQ_SIZE:-8G}
ZIPF_SIZE=${ZIPF_SIZE:-4G}
PHASE_SECONDS=${PHASE_SECONDS:-20}
REPS=${REPS:-3}
INTERVAL=${INTERVAL:-10ms}
KEEP=${KEEP:-100}
WORKLOADS=${WORKLOADS:-"ext4 seq zipf"}
SETTLE_SECONDS=${SETTLE_SECONDS:-2}

source "$repo_root/bench/lib/images.sh"
source "$repo_root/bench/lib/serve.sh"
bench_require_tools snapshot-workload fio nbdinfo python3
ext4_bytes=$(bench_size_bytes "$EXT4_SIZE")
seq_bytes=$(bench_size_bytes "$SEQ_SIZE")
zipf_bytes=$(bench_size_bytes "$ZIPF_SIZE")

work=${BENCH_DIR:-$(mktemp -d /var/tmp/cairn-snapshot-workload.XXXXXX)}
mkdir -p "$work"
store=$work/store.cairn
# What cleanup undoes: the ext4 mount (mounted), nbdfuse (fuse_dir, nbdfuse_pid), processes, the tar.
mounted= fuse_dir= nbdfuse_pid=
server_pid= fio_pid= flusher_pid=
tree_tar=

# Unmounts what an ext4 phase mounted: the file system (the loop device goes with it), then nbdfuse.
ext4_unmount() {
    if [[ -n "$mounted" ]]; then
        umount "$mounted" || umount -l "$mounted"
        mounted=
    fi
    if [[ -n "$fuse_dir" ]]; then
        fusermount3 -u "$fuse_dir" || fusermount3 -uz "$fuse_dir"
        [[ -n "$nbdfuse_pid" ]] && { wait "$nbdfuse_pid" 2>/dev/null || true; }
        nbdfuse_pid=
        fuse_dir=
    fi
}

cleanup() {
    [[ -n "$fio_pid" ]] && kill "$fio_pid" 2>/dev/null || true
    [[ -n "$flusher_pid" ]] && kill "$flusher_pid" 2>/dev/null || true
    ext4_unmount 2>/dev/null || true
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ "${KEEP_FILES:-0}" != 1 ]]; then
        [[ -n "$tree_tar" ]] && rm -f "$tree_tar"
        rm -rf "$work/fio" "$work/mnt" "$work/fuse" "$store" "$work"/*.log "$work/seed.img" "$work"/*.csv \
            "$work"/*.json "$work"/*.txt "$work/flusher.out" "$work/nbdfuse.pid"
        rmdir "$work" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- can ext4 run here? ----

ext4_skip=
if [[ " $WORKLOADS " == *" ext4 "* ]]; then
    if [[ ! -r /dev/fuse || ! -w /dev/fuse ]]; then
        ext4_skip="/dev/fuse is not available"
    fi
    for tool in nbdfuse fusermount3 mkfs.ext4 mount umount losetup tar; do
        [[ -z "$ext4_skip" ]] && ! command -v "$tool" >/dev/null && ext4_skip="$tool is not installed"
    done
    if [[ -z "$ext4_skip" ]] && ! losetup -f >/dev/null 2>&1; then
        ext4_skip="no free loop device (or not allowed to use one)"
    fi
    if [[ -n "$ext4_skip" ]]; then
        echo "snapshot-workload: skipping the ext4 workload: $ext4_skip" >&2
        WORKLOADS=$(echo " $WORKLOADS " | sed 's/ ext4 / /; s/^ *//; s/ *$//')
    fi
fi

log "uptime before: $(uptime)"
uptime >"$work/uptime-before.txt"

# ---- the source-like tree, once per run ----

if [[ " $WORKLOADS " == *" ext4 "* ]]; then
    tree_tar=$(mktemp /tmp/cairn-workload-tree.XXXXXX.tar)
    # tar exits 1 when a file changed while it was read (a live system): the tar is still complete.
    tar -cf "$tree_tar" $TREE_DIRS 2>"$work/tar.log" || [[ $? == 1 ]]
    tree_files=$(tar -tf "$tree_tar" | grep -vc '/$' || true)
    tree_mib=$(($(stat -c %s "$tree_tar") >> 20))
    log "source-like tree: $tree_tar, $tree_mib MiB, $tree_files files and links ($TREE_DIRS)"
fi

# ---- the store: the zipf disk prefilled, the others made per phase ----

store_bytes=$((ext4_bytes * 2 + seq_bytes * 2 + zipf_bytes * 3 + (1 << 30)))
log "store in $work ($(df -T "$work" | awk 'NR == 2 { print $2 }')), $((store_bytes >> 30)) GiB sparse"
"$repo_root/bin/cairn" format "$store" --size "$store_bytes" >/dev/null
if [[ " $WORKLOADS " == *" zipf "* ]]; then
    bench_seed_image "$work/seed.img" "$zipf_bytes"
    "$repo_root/bin/cairn" import "$store" zipf "$work/seed.img" >/dev/null
    rm -f "$work/seed.img"
fi
"$repo_root/bin/cairn" create "$store" warmup --size "$seq_bytes" >/dev/null
sync

bench_serve "$store" "$work/server.log" warmup
log "serving nbd://127.0.0.1:$port/ (pid $server_pid)"
mkdir -p "$work/fio"
clock_ticks_per_second=$(getconf CLK_TCK)
interval_seconds=$(python3 -c '
import re, sys
amount, unit = re.fullmatch(r"([0-9]+)(us|ms|s)", sys.argv[1]).groups()
print(int(amount) / {"us": 1e6, "ms": 1e3, "s": 1}[unit])' "$INTERVAL")

# fio against export DISK: NAME DISK ARG... (runs in the foreground; JSON to fio/NAME.json)
fio_run() {
    local name=$1 disk=$2
    shift 2
    (cd "$work/fio" && fio --name="$name" --ioengine=nbd --uri="nbd://127.0.0.1:$port/$disk" --iodepth=16 \
        --numjobs=1 --output-format=json --output="$name.json" "$@" >/dev/null)
}
seq_args=(--rw=write --bs=64k --size="$seq_bytes")
zipf_args=(--rw=randwrite --bs=4k --random_distribution=zipf:1.2 --size="$zipf_bytes" --time_based
    --runtime="$PHASE_SECONDS" --randrepeat=0)

# The copy-on-write counts so far: "LEAVES_COPIED INNER_COPIED NODES_MOVED".
shadow_counts() {
    admin stats "$store" --json | python3 -c '
import json, sys
c = json.load(sys.stdin)["copy_on_write"]
print(c["leavesCopied"], c["innerNodesCopied"], c["nodesMoved"])'
}

# Starts MODE's companion on DISK (the schedule, or the flusher).
start_mode() { # MODE DISK
    case $1 in
        on) admin schedule "$store" "$2" --every "$INTERVAL" --keep "$KEEP" >/dev/null ;;
        flush)
            python3 "$repo_root/bench/lib/nbd_flusher.py" 127.0.0.1 "$port" "$2" "$interval_seconds" >"$work/flusher.out" &
            flusher_pid=$!
            ;;
    esac
}
# Stops MODE's companion on DISK; sets mode_count to the snapshots or FLUSHes it did (0 for off). Runs in
# this shell, not in a $(...), so that it can wait for the flusher it started.
stop_mode() { # MODE DISK
    case $1 in
        on) mode_count=$(python3 "$repo_root/bench/lib/schedule_stop.py" "$store" "$2") ;;
        flush)
            kill -TERM "$flusher_pid"
            wait "$flusher_pid"
            flusher_pid=
            mode_count=$(cat "$work/flusher.out")
            ;;
        off) mode_count=0 ;;
    esac
}

# ext4 on DISK through nbdfuse and a loop device, mounted at $work/mnt; sets mounted, fuse_dir, nbdfuse_pid.
ext4_mount() { # DISK
    fuse_dir=$work/fuse
    mkdir -p "$fuse_dir" "$work/mnt"
    rm -f "$work/nbdfuse.pid"
    nbdfuse -P "$work/nbdfuse.pid" "$fuse_dir" "nbd://127.0.0.1:$port/$1" </dev/null >"$work/nbdfuse.log" 2>&1 &
    nbdfuse_pid=$!
    local i
    for ((i = 0; i < 300; i++)); do
        [[ -e "$work/nbdfuse.pid" && -e "$fuse_dir/nbd" ]] && break
        kill -0 "$nbdfuse_pid" 2>/dev/null || { cat "$work/nbdfuse.log" >&2; return 1; }
        sleep 0.1
    done
    mkfs.ext4 -F -q -E lazy_itable_init=0,lazy_journal_init=0,nodiscard "$fuse_dir/nbd"
    mount -o loop "$fuse_dir/nbd" "$work/mnt"
    mounted=$work/mnt
}

# The "build": every file of src read and written zlib-compressed (level 1) to the same path under obj.
ext4_build() { # MOUNTPOINT
    python3 - "$1" <<'PY'
import os, sys, zlib
root = sys.argv[1]
for directory, _, files in os.walk(os.path.join(root, "src")):
    target = os.path.join(root, "obj", os.path.relpath(directory, os.path.join(root, "src")))
    os.makedirs(target, exist_ok=True)
    for name in files:
        path = os.path.join(directory, name)
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        with open(path, "rb") as source, open(os.path.join(target, name + ".z"), "wb") as out:
            out.write(zlib.compress(source.read(), 1))
PY
}

# One phase of WORKLOAD in MODE, round REP: appends a row to phases.csv.
run_phase() { # WORKLOAD MODE REP
    local workload=$1 mode=$2 rep=$3 disk figure cpu_before cpu_ticks start_ns end_ns before after ops
    case $workload in
        zipf) disk=zipf ;;
        ext4) disk=ext4-$rep-$mode; admin create "$store" "$disk" --size "$ext4_bytes" >/dev/null ;;
        seq) disk=seq-$rep-$mode; admin create "$store" "$disk" --size "$seq_bytes" >/dev/null ;;
    esac
    [[ $workload == ext4 ]] && ext4_mount "$disk"
    sync
    before=$(shadow_counts)
    start_mode "$mode" "$disk"
    cpu_before=$(server_cpu_ticks)
    start_ns=$(date +%s%N)
    case $workload in
        ext4)
            mkdir "$mounted/src" "$mounted/obj"
            tar -C "$mounted/src" -xf "$tree_tar"
            ext4_build "$mounted"
            sync -f "$mounted"
            sync "$fuse_dir/nbd"
            ;;
        seq) fio_run "$workload-$mode-$rep" "$disk" "${seq_args[@]}" ;;
        zipf) fio_run "$workload-$mode-$rep" "$disk" "${zipf_args[@]}" ;;
    esac
    end_ns=$(date +%s%N)
    cpu_ticks=$(($(server_cpu_ticks) - cpu_before))
    stop_mode "$mode" "$disk"
    after=$(shadow_counts)
    if [[ $workload == ext4 ]]; then
        ext4_unmount
    fi
    [[ $workload != zipf ]] && admin delete "$store" "$disk" --with-snapshots >/dev/null
    if [[ $workload == ext4 ]]; then
        figure=$(python3 -c 'import sys; print("%.2f" % ((int(sys.argv[2]) - int(sys.argv[1])) / 1e9))' "$start_ns" "$end_ns")
        ops=0
    else
        read -r figure ops < <(python3 -c '
import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0]
if job.get("error"):
    sys.exit("fio error %s" % job["error"])
w = job["write"]
print("%.1f %d" % (w["bw_bytes"] / 1048576 if sys.argv[2] == "seq" else w["iops"], w["total_ios"]))' \
            "$work/fio/$workload-$mode-$rep.json" "$workload")
    fi
    echo "$workload,$mode,$rep,$figure,$cpu_ticks,$ops,$mode_count,$(echo $before | tr ' ' ','),$(echo $after | tr ' ' ','),$start_ns,$end_ns" \
        >>"$work/phases.csv"
    log "$workload round $rep $mode: $figure $(case $workload in ext4) echo s ;; seq) echo MiB/s ;; zipf) echo IOPS ;; esac)," \
        "server CPU $((cpu_ticks * 1000 / clock_ticks_per_second)) ms, $mode_count $(case $mode in on) echo snapshots ;; flush) echo FLUSHes ;; off) echo - ;; esac)," \
        "shadows before/after: $before / $after"
    sync
    sleep "$SETTLE_SECONDS"
}

# ---- warm-up (JIT, node cache; the tar into the page cache), with snapshots: not counted ----
# The warm-up disk is written in full once: the first phase that wrote beyond the store's high-water mark
# ran at a quarter of the speed of the others, with four times their server CPU (the sparse store file
# growing), so every measured phase writes where the store has been before.

admin schedule "$store" warmup --every "$INTERVAL" --keep "$KEEP" >/dev/null
fio_run warmup warmup "${seq_args[@]}"
python3 "$repo_root/bench/lib/schedule_stop.py" "$store" warmup >/dev/null
admin delete "$store" warmup --with-snapshots >/dev/null
[[ -n "$tree_tar" ]] && cat "$tree_tar" >/dev/null
sync

# ---- the phases ----

: >"$work/phases.csv"
modes=(off flush on)
for workload in $WORKLOADS; do
    admin stats "$store" --reset >/dev/null
    for ((rep = 1; rep <= REPS; rep++)); do
        for ((k = 0; k < 3; k++)); do
            run_phase "$workload" "${modes[$(((k + rep - 1) % 3))]}" "$rep"
        done
    done
    admin stats "$store" --json >"$work/stats-$workload.json"
done
uptime >"$work/uptime-after.txt"
log "uptime after: $(cat "$work/uptime-after.txt")"

# ---- report ----

python3 - "$work" "$INTERVAL" "$KEEP" "$REPS" "$clock_ticks_per_second" "$interval_seconds" "$WORKLOADS" \
    "${tree_tar:+$tree_mib MiB, $tree_files files and links of $TREE_DIRS}" "$EXT4_SIZE" "$SEQ_SIZE" "$ZIPF_SIZE" \
    "$PHASE_SECONDS" "${ext4_skip}" <<'PY'
import csv, json, os, statistics, sys
(work, interval, keep, reps, ticks, interval_s, workloads, tree, ext4_size, seq_size, zipf_size, phase_s,
 ext4_skip) = sys.argv[1:14]
ticks, interval_s = int(ticks), float(interval_s)
rows = list(csv.reader(open(os.path.join(work, "phases.csv"))))
titles = {"off": "off (no snapshots, no FLUSH)", "flush": "a FLUSH every %s" % interval,
          "on": "a snapshot every %s" % interval}
described = {
    "ext4": ("ext4 over nbdfuse + loop, a fresh %s disk per phase: nbdfuse FUSE nbd://127.0.0.1:PORT/DISK; "
             "mkfs.ext4 -F -q -E lazy_itable_init=0,lazy_journal_init=0,nodiscard FUSE/nbd; mount -o loop FUSE/nbd MNT; "
             "timed: tar -C MNT/src -xf TREE.tar (%s); build (every file read, written zlib level 1 to MNT/obj); "
             "sync -f MNT; sync FUSE/nbd" % (ext4_size, tree), "elapsed s (lower is better)", "server CPU per phase"),
    "seq": ("fio --rw=write --bs=64k --iodepth=16 over a fresh %s disk (nbd engine)" % seq_size, "MiB/s",
            "server CPU per 64 KiB write"),
    "zipf": ("fio --rw=randwrite --bs=4k --random_distribution=zipf:1.2 --iodepth=16 --runtime=%s over a "
             "prefilled %s disk (nbd engine)" % (phase_s, zipf_size), "IOPS", "server CPU per 4 KiB write"),
}
print()
print("Snapshot every %s (--keep %s) against off and a FLUSH every %s; %s rounds, medians." % (interval, keep, interval, reps))
if ext4_skip:
    print("ext4 workload skipped: %s" % ext4_skip)
print("The uniform 4 KiB random overwrite case: bench/snapshot-latency.sh (docs/BENCHMARKS.md).")
summary = []
for workload in workloads.split():
    mine = [r for r in rows if r[0] == workload]
    if not mine:
        continue
    text, unit, cpu_title = described[workload]
    print()
    print("### %s" % workload)
    print(text)
    print()
    print("| mode | %s, runs | median | %s (median) | server CPU s per s | leaves copied / interval | nodes moved / interval |"
          % (unit, cpu_title))
    print("|---|---|---:|---:|---:|---:|---:|")
    median, cpu, copies, cores = {}, {}, {}, {}
    for mode in ("off", "flush", "on"):
        phases = [r for r in mine if r[1] == mode]
        figures = [float(r[3]) for r in phases]
        if workload == "ext4":
            cpus = [int(r[4]) / ticks for r in phases]
            cpu_text = "%.2f s" % statistics.median(cpus)
        else:
            cpus = [int(r[4]) / ticks * 1e6 / max(1, int(r[5])) for r in phases]
            cpu_text = "%.1f us" % statistics.median(cpus)
        leaves, moved, busy = [], [], []
        for r in phases:
            seconds = (int(r[14]) - int(r[13])) / 1e9
            busy.append(int(r[4]) / ticks / seconds)
            n = seconds / interval_s  # intervals in the phase
            leaves.append((int(r[10]) - int(r[7])) / n)
            moved.append((int(r[12]) - int(r[9])) / n)
        cores[mode] = statistics.median(busy)
        median[mode] = statistics.median(figures)
        cpu[mode] = statistics.median(cpus)
        copies[mode] = statistics.median(leaves)
        print("| %s | %s | %s | %s | %.2f | %.1f | %.1f |" % (titles[mode], " ".join("%g" % f for f in figures),
              "%g" % median[mode], cpu_text, statistics.median(busy), statistics.median(leaves), statistics.median(moved)))
    on_phases = [r for r in mine if r[1] == "on"]
    snapshots = sum(int(r[6]) for r in on_phases)
    leaves_on = sum(int(r[10]) - int(r[7]) for r in on_phases)
    writes_on = sum(int(r[5]) for r in on_phases)
    print()
    lower_better = workload == "ext4"
    for base in ("off", "flush"):
        ratio = median["on"] / median[base]
        cost = (ratio - 1) if lower_better else (1 - ratio)
        print("snapshots / %s: %.3f (%s; cost %.1f%%)" % (base, ratio, "time" if lower_better else "throughput", cost * 100))
        print("server CPU, snapshots / %s: %.2f" % (base, cpu["on"] / cpu[base]))
    stats = json.load(open(os.path.join(work, "stats-%s.json" % workload)))
    taken = stats["snapshot_taken"]
    print("%d snapshots taken by the schedule (%d counted by the server); taken p50 %.3f ms, p99 %.3f ms, max %.3f ms"
          % (snapshots, taken["count"], taken["p50Nanos"] / 1e6, taken["p99Nanos"] / 1e6, taken["maxNanos"] / 1e6))
    if snapshots:
        line = "leaves copied per snapshot: %.1f" % (leaves_on / snapshots)
        if writes_on:
            line += ("; per write: %.3f (each copy: 512 counter increments now, 512 decrements when the snapshot "
                     "is deleted: %.0f counter updates per write)" % (leaves_on / writes_on, leaves_on * 1024 / writes_on))
        print(line)
    print("server CPU beyond the FLUSH phases: %.2f ms per %s interval (%.2f against %.2f CPU s per s)"
          % ((cores["on"] - cores["flush"]) * interval_s * 1e3, interval, cores["on"], cores["flush"]))
    ratio_flush = median["on"] / median["flush"]
    summary.append((workload, (ratio_flush - 1) if lower_better else (1 - ratio_flush), copies["on"]))
print()
print("| workload | cost of snapshots every %s against FLUSH every %s | leaves copied per interval |" % (interval, interval))
print("|---|---:|---:|")
for workload, cost, leaves in summary:
    print("| %s | %.1f%% | %.1f |" % (workload, cost * 100, leaves))
print()
print("uptime before: %s" % open(os.path.join(work, "uptime-before.txt")).read().strip())
print("uptime after:  %s" % open(os.path.join(work, "uptime-after.txt")).read().strip())
PY
