#!/bin/sh
# pipeline.sh -- frames/s of the whole pipeline (import from TIFF, mc, roi,
# dff, deconv) on a 512x512 recording, with the time and peak memory of each
# stage, on 2 threads; the microscope records 30 frames/s, so the pipeline
# keeps up when the total rate is above that.
#   sh bench/pipeline.sh [FRAMES [DIR]]    (default 10000 frames; DIR needs ~11 GB)
# Run from the build directory after `make`.
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
set -e
frames=${1:-10000}
dir=${2:-$(mktemp -d /tmp/caimg-bench-XXXXXX)}
b=$(pwd)
th=${THREADS:-2}
mkdir -p "$dir"
trap 'rm -f "$dir"/rec.tif "$dir"/*.h5 "$dir"/*.stat' EXIT
echo "caimg pipeline, 512x512 uint16, $frames frames at 30 Hz ($(echo "$frames / 30" | bc) s of recording), $th threads"
echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$b/caimg" simulate -q -@ "$th" --size 512x512 --frames "$frames" --seed 1 -o "$dir/rec.tif" --truth "$dir/truth.h5"
cat "$dir/rec.tif" > /dev/null
total=0
printf "%-8s %9s %9s %12s\n" stage seconds frames/s "peak RSS MB"
stage() {   # NAME ARGS...
    name=$1; shift
    "$b/bench/runstat" -o "$dir/$name.stat" "$b/caimg" "$name" -q -@ "$th" "$@"
    read -r wall user sys rss st < "$dir/$name.stat"
    [ "$st" = 0 ] || { echo "caimg $name failed"; exit 1; }
    total=$(echo "$total + $wall" | bc -l)
    printf "%-8s %9.1f %9.0f %12.0f\n" "$name" "$wall" "$(echo "$frames / $wall" | bc -l)" "$rss"
}
stage import "$dir/rec.tif" -o "$dir/raw.h5"
stage mc "$dir/raw.h5" -o "$dir/mc.h5"
stage roi "$dir/mc.h5" -o "$dir/roi.h5"
stage dff "$dir/roi.h5" -o "$dir/dff.h5"
stage deconv "$dir/dff.h5" -o "$dir/spikes.h5"
printf "%-8s %9.1f %9.0f   (the microscope: 30 frames/s)\n" total "$total" "$(echo "$frames / $total" | bc -l)"
"$b/caimg" eval --truth "$dir/truth.h5" "$dir/mc.h5" "$dir/spikes.h5" |
    awk '$2 ~ /^(rms_error_px|f1|corr_mean)$/'
