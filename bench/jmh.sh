#!/usr/bin/env bash
# Builds the test classes and runs the JMH microbenchmarks (src/test/java/io/cairn/bench).
#
#   bench/jmh.sh                       every benchmark, short settings (about a minute per benchmark)
#   bench/jmh.sh TreeBenchmark.lookup  benchmarks whose name matches a regular expression
#   bench/jmh.sh -f 3 -wi 5 -i 10      any JMH options (they replace the short defaults)
#   bench/jmh.sh -h                    JMH's own help
#
# Short defaults: 1 fork, 2 warmup and 3 measured iterations of 1 s. Numbers from them are for
# spotting big changes; use longer runs (e.g. -f 3 -wi 5 -i 10 -r 5s) for anything finer.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../bin/lib/java.sh
source "$repo_root/bin/lib/java.sh"
cairn_find_java || exit 1

cd "$repo_root"
# shellcheck source=lib/classpath.sh
source bench/lib/classpath.sh
cairn_bench_classpath

options=("$@")
has_run_options=false
for option in "${options[@]+"${options[@]}"}"; do
    case $option in
        -f|-wi|-i|-w|-r|-bm|-tu|-bs) has_run_options=true ;;
    esac
done
if [[ $has_run_options == false ]]; then
    options=(-f 1 -wi 2 -i 3 -w 1s -r 1s "${options[@]+"${options[@]}"}")
fi

exec "$JAVA" -cp "$classpath" org.openjdk.jmh.Main "${options[@]}"
