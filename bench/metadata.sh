#!/usr/bin/env bash
# Metadata overhead after a sequential fill and node-cache size for a 32 GiB working set (issue 7, target 4;
# Parallax: 64 MiB of node cache for 32 GiB). See src/test/java/io/cairn/bench/MetadataOverhead.java for
# what is measured and how the 32 GiB fill avoids writing 32 GiB (data runs are not written; the tree is real).
#
#   bench/metadata.sh                32 GiB VDI; node caches of 16, 32, 64 and 128 MiB; 2,000,000 reads each
#   QUICK=1 bench/metadata.sh        2 GiB VDI; caches of 1, 2, 4 and 8 MiB (the same ratios); 200,000 reads
#   bench/metadata.sh PATH VDI_GIB CACHE_MIB_LIST READS
#
# The store is a sparse file (metadata only: about 0.3% of VDI_GIB is written) in target/, deleted at the end.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../bin/lib/java.sh
source "$repo_root/bin/lib/java.sh"
cairn_find_java || exit 1
cd "$repo_root"
# shellcheck source=lib/classpath.sh
source bench/lib/classpath.sh
cairn_bench_classpath

if [[ $# -gt 0 ]]; then
    args=("$@")
elif [[ -n "${QUICK:-}" ]]; then
    args=(target/metadata.cairn 2 1,2,4,8 200000)
else
    args=(target/metadata.cairn 32 16,32,64,128 2000000)
fi
rm -f "${args[0]}"
"$JAVA" -Xms2g -Xmx2g --enable-native-access=ALL-UNNAMED -cp "$classpath" io.cairn.bench.MetadataOverhead "${args[@]}"
