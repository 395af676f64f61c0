#!/bin/sh
# simulate.sh -- speed and peak memory of `caimg simulate` on a 512x512 field:
# 2000 frames to an HDF5 movie with its truth, to a TIFF movie, and the
# truth alone (the part that is not pixels), on 1 and 2 threads; then 4x the
# frames to show that memory does not grow with T beyond the O(N*T) truth.
#   sh bench/simulate.sh [FRAMES [DIR]]      (default 2000 frames)
# Run from the build directory after `make`.
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
set -e
frames=${1:-2000}
dir=${2:-$(mktemp -d /tmp/caimg-bench-XXXXXX)}
b=$(pwd)
mkdir -p "$dir"
trap 'rm -f "$dir"/sim.h5 "$dir"/sim.tif "$dir"/truth.h5 "$dir"/*.stat' EXIT
run() {   # NAME ARGS...
    name=$1; shift
    "$b/bench/runstat" -o "$dir/$name.stat" "$b/caimg" simulate -q --size 512x512 "$@"
    read -r wall user sys rss st < "$dir/$name.stat"
    printf "%-34s %8.2f %10.1f %10.0f %12.1f\n" "$name" "$wall" "$user" \
        "$(echo "$fr / $wall" | bc -l)" "$rss"
    rm -f "$dir"/sim.h5 "$dir"/sim.tif "$dir"/truth.h5
}
echo "caimg simulate, 512x512, load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-34s %8s %10s %10s %12s\n" run seconds "cpu s" frames/s "peak RSS MB"
fr=$frames
run "h5 + truth, 2 threads"   --frames "$fr" -@ 2 -o "$dir/sim.h5" --truth "$dir/truth.h5"
run "h5 + truth, 1 thread"    --frames "$fr" -@ 1 -o "$dir/sim.h5" --truth "$dir/truth.h5"
run "tif, 2 threads"          --frames "$fr" -@ 2 -o "$dir/sim.tif"
run "truth only"              --frames "$fr" --truth "$dir/truth.h5"
run "hard preset, h5, 2 threads" --preset hard --frames "$fr" -@ 2 -o "$dir/sim.h5"
run "non-rigid + bidi, h5, 2 threads" --deform-sd 1 --bidi 2 --frames "$fr" -@ 2 -o "$dir/sim.h5"
fr=$((frames * 4))
run "4x frames, h5, 2 threads" --frames "$fr" -@ 2 -o "$dir/sim.h5"
