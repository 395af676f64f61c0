#!/bin/sh
# mc.sh -- speed, memory and accuracy of `caimg mc` on 512x512 uint16 movies
# (HDF5 in, HDF5 out), rigid and piecewise-rigid, on 1 and 2 threads, beside
# the time FFTW alone needs for one forward and one inverse transform of the
# same frames (the practical limit of FFT registration), in the same run;
# then peak memory for 1000 vs 10000 frames.
#   sh bench/mc.sh [FRAMES [DIR]]      (default 2000 frames; DIR a scratch directory)
# Run from the build directory after `make`.  Frames/s are overall: the
# whole command, template, FFTW planning and I/O included.
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
set -e
frames=${1:-2000}
dir=${2:-$(mktemp -d /tmp/caimg-bench-XXXXXX)}
b=$(pwd)
mkdir -p "$dir"
trap 'rm -f "$dir"/m*.h5 "$dir"/t*.h5 "$dir"/out.h5 "$dir"/*.stat' EXIT
sim() {   # FRAMES OUT [ARGS...]
    n=$1 o=$2; shift 2
    "$b/caimg" simulate -q --size 512x512 --frames "$n" --seed 1 -o "$o" "$@"
    cat "$o" > /dev/null    # warm the page cache the same way for every run
}
mc() {    # NAME MOVIE FRAMES ARGS...
    name=$1 mv=$2 n=$3; shift 3
    rm -f "$dir/out.h5"
    "$b/bench/runstat" -o "$dir/run.stat" "$b/caimg" mc -q "$@" "$mv" -o "$dir/out.h5"
    read -r wall user sys rss st < "$dir/run.stat"
    [ "$st" = 0 ] || { echo "caimg mc failed ($name)"; exit 1; }
    fps=$(echo "$n / $wall" | bc -l)
    printf "%-30s %8.2f %8.1f %10.0f %9.0f%% %11.0f\n" "$name" "$wall" "$user" "$fps" \
        "$(echo "100 * $fps / $lim" | bc -l)" "$rss"
}

echo "caimg mc, 512x512 uint16, $frames frames; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
sim "$frames" "$dir/m.h5" --truth "$dir/t.h5"
printf "%-30s %8s %8s %10s %10s %11s\n" run seconds "cpu s" frames/s "of FFTW" "peak RSS MB"
for th in 1 2; do
    "$b/bench/fftw_ref" "$dir/m.h5" "$th" > "$dir/fftw.$th"
    read -r n secs lim < "$dir/fftw.$th"
    printf "%-30s %8.2f %8s %10.0f %10s %11s\n" "FFTW r2c+c2r only, $th thr" "$secs" - "$lim" 100% -
    mc "rigid, $th thread(s)" "$dir/m.h5" "$frames" -@ "$th"
    mc "piecewise-rigid, $th thread(s)" "$dir/m.h5" "$frames" -@ "$th" --piecewise
done

echo
echo "accuracy (caimg eval against the simulation's truth)"
"$b/caimg" mc -q -@ 2 "$dir/m.h5" -o "$dir/out.h5"
"$b/caimg" eval --truth "$dir/t.h5" "$dir/out.h5" | grep -E "^motion +(rms|max)"
sim 500 "$dir/md.h5" --truth "$dir/td.h5" --deform-sd 1 --bidi 2
"$b/caimg" mc -q -@ 2 --piecewise "$dir/md.h5" -o "$dir/out.h5"
echo "500 frames, --deform-sd 1 --bidi 2, --piecewise:"
"$b/caimg" eval --truth "$dir/td.h5" "$dir/out.h5" | grep -E "^(motion|field|bidi) +(rms|max|error|estimated)"
sim 500 "$dir/mh.h5" --truth "$dir/th.h5" --preset hard
"$b/caimg" mc -q -@ 2 "$dir/mh.h5" -o "$dir/out.h5"
echo "500 frames, --preset hard (1.2 photons/px), rigid:"
"$b/caimg" eval --truth "$dir/th.h5" "$dir/out.h5" | grep -E "^motion +(rms|max)"
rm -f "$dir"/md.h5 "$dir"/td.h5 "$dir"/mh.h5 "$dir"/th.h5 "$dir"/t.h5

echo
echo "memory against length (rigid and piecewise-rigid, 2 threads)"
printf "%-30s %8s %8s %10s %10s %11s\n" run seconds "cpu s" frames/s "of FFTW" "peak RSS MB"
lim=$(cut -d' ' -f3 "$dir/fftw.2")
for n in 1000 10000; do
    rm -f "$dir/m.h5"
    sim "$n" "$dir/m.h5"
    mc "rigid, $n frames" "$dir/m.h5" "$n" -@ 2
    mc "piecewise-rigid, $n frames" "$dir/m.h5" "$n" -@ 2 --piecewise
done
