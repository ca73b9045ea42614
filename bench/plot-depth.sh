#!/usr/bin/env bash
# Draws the CSV that bench/depth.sh writes as a PNG: 4 KiB random-read IOPS against chain depth for a
# Cairn clone chain and a qcow2 backing chain (one plot), and Cairn against the number of snapshots in a
# disk's history (second panel). Needs gnuplot (Debian: apt-get install -y gnuplot-nox); nothing else in
# the build or the tests does.
#
#   bench/plot-depth.sh                                  docs/img/depth.csv -> docs/img/depth.png
#   bench/plot-depth.sh target/depth.csv /tmp/depth.png
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
csv=${1:-$repo_root/docs/img/depth.csv}
png=${2:-$repo_root/docs/img/depth.png}
command -v gnuplot >/dev/null || { echo "plot-depth: gnuplot is not installed (apt-get install -y gnuplot-nox)" >&2; exit 1; }
[[ -r "$csv" ]] || { echo "plot-depth: no CSV at $csv (run bench/depth.sh first)" >&2; exit 1; }
head -n 1 "$csv" | grep -qx 'series,depth,iops_median,vs_depth0' \
    || { echo "plot-depth: $csv does not start with the header bench/depth.sh writes" >&2; exit 1; }

# One data file per series (gnuplot selects rows more simply this way), in thousands of IOPS.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for series in cairn-clone-chain qcow2-backing-chain cairn-snapshots; do
    awk -F, -v s="$series" '$1 == s { printf "%s %.1f\n", $2, $3 / 1000 }' "$csv" > "$tmp/$series.dat"
    [[ -s "$tmp/$series.dat" ]] || { echo "plot-depth: $csv has no rows for $series" >&2; exit 1; }
done

gnuplot <<GP
set terminal pngcairo size 1200,500 font "sans,11"
set output "$png"
set multiplot layout 1,2 title "4 KiB random reads through NBD, QD16 (medians; higher is better)"
set grid ytics
set ylabel "thousand IOPS"
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0
set key bottom left box opaque

set title "Reads at the end of a chain of clones / backing files"
set xlabel "chain depth (links)"
set xrange [-2:66]
set xtics (0, 8, 16, 32, 64)
plot "$tmp/cairn-clone-chain.dat" using 1:2 with linespoints lw 2 pt 7 ps 1.3 lc rgb "#1f77b4" title "Cairn: clone of a clone of ...", \
     "$tmp/qcow2-backing-chain.dat" using 1:2 with linespoints lw 2 pt 5 ps 1.3 lc rgb "#d62728" title "qcow2 under qemu-nbd: backing chain", \
     "$tmp/cairn-clone-chain.dat" using 1:2:(sprintf("%.0fk", \$2)) with labels offset 0,1.1 tc rgb "#1f77b4" notitle, \
     "$tmp/qcow2-backing-chain.dat" using 1:2:(sprintf("%.0fk", \$2)) with labels offset 0,-1.1 tc rgb "#d62728" notitle

set title "Reads of a disk with snapshots in its history (Cairn)"
set xlabel "snapshots taken of the disk"
set xrange [-0.5:2.5]
unset xtics
set xtics ("0" 0, "64" 1, "1000" 2)
set style fill solid 0.6
set boxwidth 0.5
unset key
plot "$tmp/cairn-snapshots.dat" using 0:2 with boxes lc rgb "#1f77b4" title "Cairn", \
     "$tmp/cairn-snapshots.dat" using 0:2:(sprintf("%.0fk", \$2)) with labels offset 0,1 notitle
unset multiplot
GP
echo "plot-depth: $png"
