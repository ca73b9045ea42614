#!/usr/bin/env bash
# Reads must not slow down with snapshot or clone depth (issue 7, target 2): 4 KiB random reads at QD16
# through NBD on a disk with 0, 64 and 1,000 snapshots in its history and on a clone at the end of a
# 64-deep clone chain, against the same shape in qcow2 (a backing chain of 0 and 64 layers under
# qemu-nbd). Prints medians of REPS interleaved runs and each figure as a ratio of depth 0.
#
#   bench/depth.sh                 1 GiB disks, 10 s runs, 3 repetitions, files in target/depth
#   DISK_MIB=256 RUNTIME=3 REPS=1 bench/depth.sh     quick smoke run
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../bin/lib/java.sh
source "$repo_root/bin/lib/java.sh"
cairn_find_java || exit 1
cd "$repo_root"

disk_mib=${DISK_MIB:-1024} runtime=${RUNTIME:-10} reps=${REPS:-3}
work=target/depth
rm -rf "$work" && mkdir -p "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=lib/classpath.sh
source bench/lib/classpath.sh
cairn_bench_classpath
[[ -e target/classes/io/cairn/cli/Main.class ]] || ./mvnw -q -B -o package -DskipTests >&2
"$JAVA" -Xmx2g --enable-native-access=ALL-UNNAMED -cp "$classpath" io.cairn.bench.DepthFixture "$work/store.cairn" "$disk_mib"

# qcow2: a base image with the same kind of data, and a 64-layer backing chain on top of it.
head -c $((disk_mib << 20)) /dev/urandom > "$work/base.raw"
qemu-img convert -q -f raw -O qcow2 "$work/base.raw" "$work/layer0.qcow2"
for i in $(seq 1 64); do
    qemu-img create -q -f qcow2 -b "layer$((i - 1)).qcow2" -F qcow2 "$work/layer$i.qcow2"
    qemu-io -f qcow2 -c "write -P $((i % 250)) $(( (RANDOM * 4096) % (disk_mib << 20) )) 64k" "$work/layer$i.qcow2" >/dev/null
done

cairn_port=10911
bin/cairn serve "$work/store.cairn" --listen 127.0.0.1:$cairn_port >"$work/cairn.log" 2>&1 &
pids+=($!)
qemu-nbd -f qcow2 -r -p 10912 -x top --persistent "$work/layer64.qcow2" >"$work/qemu64.log" 2>&1 &
pids+=($!)
qemu-nbd -f qcow2 -r -p 10913 -x top --persistent "$work/layer0.qcow2" >"$work/qemu0.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    grep -q "Cairn is serving" "$work/cairn.log" 2>/dev/null && break
    sleep 0.2
done
sleep 1

declare -A uri=(
    [cairn-0]="nbd://127.0.0.1:$cairn_port/depth0"
    [cairn-64]="nbd://127.0.0.1:$cairn_port/depth64"
    [cairn-1000]="nbd://127.0.0.1:$cairn_port/depth1000"
    [cairn-clone64]="nbd://127.0.0.1:$cairn_port/chain64"
    [qcow2-0]="nbd://127.0.0.1:10913/top"
    [qcow2-64]="nbd://127.0.0.1:10912/top"
)
order=(cairn-0 cairn-64 cairn-1000 cairn-clone64 qcow2-0 qcow2-64)
for name in "${order[@]}"; do   # warm-up: JIT, page cache and node cache, not measured
    fio --name=warm --ioengine=nbd --uri="${uri[$name]}" --rw=randread --bs=4k --iodepth=16 --time_based \
        --runtime=3 --size=$((disk_mib << 20)) >/dev/null 2>&1
done
for rep in $(seq 1 "$reps"); do
    for name in "${order[@]}"; do
        sync
        fio --name=depth --ioengine=nbd --uri="${uri[$name]}" --rw=randread --bs=4k --iodepth=16 --numjobs=1 \
            --time_based --runtime="$runtime" --size=$((disk_mib << 20)) --output-format=json \
            --output="$work/$name.$rep.json" >/dev/null 2>&1
    done
    order=("${order[@]:1}" "${order[0]}")   # rotate the order between repetitions
done

python3 - "$work" "$reps" <<'PY'
import json, statistics, sys
work, reps = sys.argv[1], int(sys.argv[2])
def iops(name):
    values = [json.load(open(f"{work}/{name}.{r}.json"))["jobs"][0]["read"]["iops"] for r in range(1, reps + 1)]
    return statistics.median(values)
rows = [("cairn", "0", "cairn-0"), ("cairn", "64 snapshots", "cairn-64"), ("cairn", "1000 snapshots", "cairn-1000"),
        ("cairn", "clone, chain of 64", "cairn-clone64"), ("qcow2", "0", "qcow2-0"), ("qcow2", "backing chain of 64", "qcow2-64")]
base = {"cairn": iops("cairn-0"), "qcow2": iops("qcow2-0")}
print(f"{'server':8} {'depth':22} {'4K randread IOPS':>17} {'vs depth 0':>11}")
for server, depth, name in rows:
    value = iops(name)
    print(f"{server:8} {depth:22} {value:17.0f} {value / base[server]:11.2f}")
PY
