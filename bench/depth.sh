#!/usr/bin/env bash
# Reads must not slow down with snapshot or clone depth (issue 7, target 2): 4 KiB random reads at QD16
# through NBD on a disk with 0, 64 and 1,000 snapshots in its history and on a clone at the end of a
# clone chain, against the same shape in qcow2 (an image at the top of a backing chain under qemu-nbd).
# Clone and backing chains are measured at depths 0, 8, 16, 32 and 64, so each forms a curve. Prints
# medians of REPS interleaved runs and each figure as a ratio of depth 0, and writes the medians as CSV
# (series,depth,iops_median,vs_depth0) for bench/plot-depth.sh.
#
#   bench/depth.sh                 1 GiB disks, 10 s runs, 3 repetitions, files in target/depth,
#                                  CSV in target/depth.csv (about 9 minutes)
#   QUICK=1 bench/depth.sh         smoke run: 256 MiB disks, 1 s runs, 1 repetition (about a minute)
#   DISK_MIB=256 RUNTIME=2 REPS=1 WARMUP=1 bench/depth.sh     any other settings
#   CSV=docs/img/depth.csv bench/depth.sh            CSV elsewhere
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../bin/lib/java.sh
source "$repo_root/bin/lib/java.sh"
cairn_find_java || exit 1
cd "$repo_root"

if [[ -n "${QUICK:-}" ]]; then
    disk_mib=${DISK_MIB:-256} runtime=${RUNTIME:-1} reps=${REPS:-1} warmup=${WARMUP:-1}
else
    disk_mib=${DISK_MIB:-1024} runtime=${RUNTIME:-10} reps=${REPS:-3} warmup=${WARMUP:-3}
fi
chain_depths="0 8 16 32 64"   # clone and backing chains are measured at each of these depths
csv=${CSV:-target/depth.csv}  # kept after the run; bench/plot-depth.sh draws it
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
declare -A uri=(
    [cairn-snap-0]="nbd://127.0.0.1:$cairn_port/depth0"
    [cairn-snap-64]="nbd://127.0.0.1:$cairn_port/depth64"
    [cairn-snap-1000]="nbd://127.0.0.1:$cairn_port/depth1000"
)
order=(cairn-snap-0 cairn-snap-64 cairn-snap-1000)
qemu_port=10912
for depth in $chain_depths; do   # chain0 is a plain disk and layer0 a qcow2 without a backing file
    uri[cairn-chain-$depth]="nbd://127.0.0.1:$cairn_port/chain$depth"
    qemu-nbd -f qcow2 -r -p $qemu_port -x top --persistent "$work/layer$depth.qcow2" >"$work/qemu$depth.log" 2>&1 &
    pids+=($!)
    uri[qcow2-chain-$depth]="nbd://127.0.0.1:$qemu_port/top"
    order+=("cairn-chain-$depth" "qcow2-chain-$depth")
    qemu_port=$((qemu_port + 1))
done
for _ in $(seq 1 100); do
    grep -q "Cairn is serving" "$work/cairn.log" 2>/dev/null && break
    sleep 0.2
done
sleep 1

for name in "${order[@]}"; do   # warm-up: JIT, page cache and node cache, not measured
    fio --name=warm --ioengine=nbd --uri="${uri[$name]}" --rw=randread --bs=4k --iodepth=16 --time_based \
        --runtime="$warmup" --size=$((disk_mib << 20)) >"$work/fio.log" 2>&1 \
        || { echo "depth: fio failed on $name (${uri[$name]}):" >&2; cat "$work/fio.log" >&2; exit 1; }
done
for rep in $(seq 1 "$reps"); do
    for name in "${order[@]}"; do
        sync
        fio --name=depth --ioengine=nbd --uri="${uri[$name]}" --rw=randread --bs=4k --iodepth=16 --numjobs=1 \
            --time_based --runtime="$runtime" --size=$((disk_mib << 20)) --output-format=json \
            --output="$work/$name.$rep.json" >"$work/fio.log" 2>&1 \
            || { echo "depth: fio failed on $name (${uri[$name]}):" >&2; cat "$work/fio.log" "$work/$name.$rep.json" >&2; exit 1; }
    done
    order=("${order[@]:1}" "${order[0]}")   # rotate the order between repetitions
done

python3 - "$work" "$reps" "$csv" $chain_depths <<'PY'
import json, statistics, sys
work, reps, csv_path, chain_depths = sys.argv[1], int(sys.argv[2]), sys.argv[3], [int(d) for d in sys.argv[4:]]
def iops(name):
    values = [json.load(open(f"{work}/{name}.{r}.json"))["jobs"][0]["read"]["iops"] for r in range(1, reps + 1)]
    return statistics.median(values)
# series, depth, export: "snapshots" = snapshots in one disk's history, "clone-chain" = a clone at the end of
# a chain of clones, "qcow2-chain" = a qcow2 image at the top of a backing chain of that many layers.
rows = [("cairn-snapshots", d, f"cairn-snap-{d}") for d in (0, 64, 1000)]
rows += [("cairn-clone-chain", d, f"cairn-chain-{d}") for d in chain_depths]
rows += [("qcow2-backing-chain", d, f"qcow2-chain-{d}") for d in chain_depths]
values = {name: iops(name) for _, _, name in rows}
base = {series: values[name] for series, depth, name in rows if depth == 0}
with open(csv_path, "w") as out:
    out.write("series,depth,iops_median,vs_depth0\n")
    print(f"{'series':20} {'depth':>6} {'4K randread IOPS':>17} {'vs depth 0':>11}")
    for series, depth, name in rows:
        value = values[name]
        out.write(f"{series},{depth},{value:.0f},{value / base[series]:.3f}\n")
        print(f"{series:20} {depth:6} {value:17.0f} {value / base[series]:11.2f}")
print(f"CSV: {csv_path}")
PY
