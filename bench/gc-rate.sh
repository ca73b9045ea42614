#!/usr/bin/env bash
# Fills a store in a sparse file through the engine (disks written whole, snapshotted, partly
# overwritten, snapshotted again), then runs the garbage collector on it and prints its rate in GB of
# blockstore per second (seed 003 §6.4; Parallax: 0.96 GB/s).
#
#   bench/gc-rate.sh                          16 GiB store, 80% full, 4 disks, 3 runs, in target/
#   bench/gc-rate.sh PATH [SIZE_GIB] [FILL] [DISKS] [RUNS]
#   KEEP=1 bench/gc-rate.sh ...               keep the store (a second run reuses it, skipping the fill)
#
# The store's page cache is dropped before the collections (posix_fadvise DONTNEED, no root needed),
# so the first run reads the metadata from the disk; the JVM is cold for it too.
#
# The fill writes SIZE_GIB * FILL of data: it needs that much free disk space, and takes a while.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../bin/lib/java.sh
source "$repo_root/bin/lib/java.sh"
cairn_find_java || exit 1

cd "$repo_root"
# shellcheck source=lib/classpath.sh
source bench/lib/classpath.sh
cairn_bench_classpath

store=${1:-target/gc-rate.cairn}
cleanup() {
    if [[ -z "${KEEP:-}" ]]; then
        rm -f "$store"
    fi
}
trap cleanup EXIT
run() {
    "$JAVA" -Xms2g -Xmx2g --enable-native-access=ALL-UNNAMED -cp "$classpath" io.cairn.bench.GcRate "$@"
}
size=${2:-16} fill=${3:-0.8} disks=${4:-4} runs=${5:-3}
if [[ ! -e "$store" ]]; then
    run "$store" "$size" "$fill" "$disks" 0      # fill only
fi
# Evict the store from the page cache (its pages are clean after the close), so the first collection
# reads its nodes from the disk as Parallax's did; later runs show the cached rate.
python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' \
    "$store" 2>/dev/null && echo "page cache of $store dropped" || echo "could not drop the page cache of $store"
run "$store" "$size" "$fill" "$disks" "$runs"
