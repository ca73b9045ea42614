#!/usr/bin/env bash
# Fills a store in a sparse file through the engine (disks written whole, snapshotted, partly
# overwritten, snapshotted again), then runs the garbage collector on it and prints its rate in GB of
# blockstore per second (seed 003 §6.4; Parallax: 0.96 GB/s).
#
#   bench/gc-rate.sh                          16 GiB store, 80% full, 4 disks, 3 runs, in target/
#   bench/gc-rate.sh PATH [SIZE_GIB] [FILL] [DISKS] [RUNS]
#   KEEP=1 bench/gc-rate.sh ...               keep the store (a second run reuses it, skipping the fill)
#
# The fill writes SIZE_GIB * FILL of data: it needs that much free disk space, and takes a while.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../bin/lib/java.sh
source "$repo_root/bin/lib/java.sh"
cairn_find_java || exit 1

cd "$repo_root"
classpath_file=target/bench-classpath.txt
./mvnw -q -B -o test-compile dependency:build-classpath \
    -Dmdep.outputFile="$classpath_file" -Dmdep.includeScope=test >&2
classpath="target/test-classes:target/classes:$(cat "$classpath_file")"

store=${1:-target/gc-rate.cairn}
cleanup() {
    if [[ -z "${KEEP:-}" ]]; then
        rm -f "$store"
    fi
}
trap cleanup EXIT
"$JAVA" -Xms2g -Xmx2g --enable-native-access=ALL-UNNAMED -cp "$classpath" io.cairn.bench.GcRate "$store" "${@:2}"
