#!/bin/sh
# import.sh -- throughput and peak memory of `caimg import` on a >= 2 GB
# uint16 stack, beside `tiffcp` copying the same file, in the same run.
#   sh bench/import.sh [FRAMES [DIR]]     (default 4100 frames of 512x512 = 2.15 GB)
# Run from the build directory after `make && make check` (needs tests/mktiff).
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
set -e
frames=${1:-4100}
dir=${2:-$(mktemp -d /tmp/caimg-bench-XXXXXX)}
b=$(pwd)
mkdir -p "$dir"
trap 'rm -f "$dir"/big.tif "$dir"/copy.tif "$dir"/big.h5 "$dir"/*.stat' EXIT
echo "generating $frames frames of 512x512 uint16 in $dir ..."
"$b/tests/mktiff" -o "$dir/big.tif" -w 512 -h 512 -n "$frames" -t uint16 --bigtiff 0
size=$(stat -c %s "$dir/big.tif")
mb=$(echo "$size / 1000000" | bc -l)
sync
# Warm the page cache identically for both programs: read the file once.
cat "$dir/big.tif" > /dev/null
"$b/bench/runstat" -o "$dir/tiffcp.stat" tiffcp "$dir/big.tif" "$dir/copy.tif"
rm -f "$dir/copy.tif"
"$b/bench/runstat" -o "$dir/import.stat" "$b/caimg" import -q "$dir/big.tif" -o "$dir/big.h5"
printf "%-22s %10s %10s %12s\n" program seconds MB/s "peak RSS MB"
for p in tiffcp import; do
    read -r wall user sys rss st < "$dir/$p.stat"
    printf "%-22s %10.2f %10.0f %12.1f\n" "$p" "$wall" "$(echo "$mb / $wall" | bc -l)" "$rss"
done
echo "file: $(printf %.0f "$mb") MB, $frames frames"
