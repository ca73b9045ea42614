#!/usr/bin/env bash
# Cost of open, list, snapshot, create and 4 KiB reads as a store grows to many VDIs, one VDI to many
# snapshots and one snapshot to many written clones (issue 7, target 5). See
# src/test/java/io/cairn/bench/ScaleBench.java for what each column is.
#
#   bench/scale.sh             sizes 1,000, 10,000 and 100,000, all three modes (several minutes)
#   QUICK=1 bench/scale.sh     sizes 1,000 and 5,000 (well under a minute)
#   SIZES=1000,30000 MODES=snapshots bench/scale.sh
#
# Stores are sparse files in target/, deleted at the end: up to about 1.5 GiB written (mode clones at 100,000
# about 1 GiB: 8 KiB of metadata per clone; past about 67,000 clones the golden image's leaves are at the
# largest reference count and are shared through one copy per 65,535 clones).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../bin/lib/java.sh
source "$repo_root/bin/lib/java.sh"
cairn_find_java || exit 1
cd "$repo_root"
# shellcheck source=lib/classpath.sh
source bench/lib/classpath.sh
cairn_bench_classpath
# The command line is timed too: build its jar if the sources are newer (bin/cairn would do it inside the timing).
bin/cairn --version >/dev/null

if [[ -n "${QUICK:-}" ]]; then
    sizes=${SIZES:-1000,5000}
else
    sizes=${SIZES:-1000,10000,100000}
fi
for mode in ${MODES:-vdis snapshots clones}; do
    store=target/scale-$mode.cairn
    rm -f "$store"
    "$JAVA" -Xms2g -Xmx2g --enable-native-access=ALL-UNNAMED -cp "$classpath" io.cairn.bench.ScaleBench \
        "$store" "$mode" "$sizes" bin/cairn
done
