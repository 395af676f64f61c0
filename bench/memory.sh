#!/bin/sh
# memory.sh -- peak memory of every streaming stage at two lengths of the
# same recording, to measure the rule "peak memory must not grow with the
# number of frames" (DESIGN.md).  A benchmark, not a test.
#   sh bench/memory.sh [SHORT LONG [SIZE [DIR]]]
#       (default 3000 and 12000 frames of 128x128; DIR a scratch directory)
# Run from the build directory after `make`.  The last column is the growth
# per 1000 frames between the two lengths.  mc, export and import stream
# frames and should stay within noise (about 1 MB); roi, dff and deconv
# hold whole traces or a binned movie by design (roi's is capped at 512 MB,
# caimg-roi(1)), so they grow until that cap.
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
set -e
short=${1:-3000}
long=${2:-12000}
size=${3:-128x128}
dir=${4:-$(mktemp -d /tmp/caimg-bench-XXXXXX)}
b=$(pwd)
mkdir -p "$dir"
trap 'rm -f "$dir"/*.h5 "$dir"/*.tif "$dir"/*.stat' EXIT
echo "caimg peak RSS, $size uint16, $short vs $long frames; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
run() {   # NAME N ARGS...: caimg NAME ARGS..., its peak RSS in MB on stdout
    name=$1 n=$2; shift 2
    "$b/bench/runstat" -o "$dir/$name.$n.stat" "$b/caimg" "$name" -q "$@"
    read -r wall user sys rss st < "$dir/$name.$n.stat"
    [ "$st" = 0 ] || { echo "caimg $name failed ($n frames)" >&2; exit 1; }
    echo "$rss"
}
for n in "$short" "$long"; do
    "$b/caimg" simulate -q --size "$size" --frames "$n" --seed 1 -o "$dir/m$n.h5"
    run mc "$n" "$dir/m$n.h5" -o "$dir/mc$n.h5" > "$dir/mc.$n"
    run export "$n" "$dir/m$n.h5" -o "$dir/m$n.tif" > "$dir/export.$n"
    run import "$n" "$dir/m$n.tif" -o "$dir/i$n.h5" > "$dir/import.$n"
    run roi "$n" "$dir/mc$n.h5" -o "$dir/roi$n.h5" > "$dir/roi.$n"
    run dff "$n" "$dir/roi$n.h5" -o "$dir/dff$n.h5" > "$dir/dff.$n"
    run deconv "$n" "$dir/dff$n.h5" -o "$dir/sp$n.h5" > "$dir/deconv.$n"
    rm -f "$dir"/m$n.h5 "$dir"/m$n.tif "$dir"/i$n.h5 "$dir"/mc$n.h5
done
printf "%-8s %12s %12s %16s\n" stage "MB, $short" "MB, $long" "MB/1000 frames"
for s in mc export import roi dff deconv; do
    a=$(cat "$dir/$s.$short") c=$(cat "$dir/$s.$long")
    printf "%-8s %12.1f %12.1f %16.2f\n" "$s" "$a" "$c" \
        "$(echo "($c - $a) * 1000 / ($long - $short)" | bc -l)"
done
rm -f "$dir"/mc.* "$dir"/export.* "$dir"/import.* "$dir"/roi.* "$dir"/dff.* "$dir"/deconv.*
